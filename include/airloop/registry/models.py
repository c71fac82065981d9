"""The MLflow model registry: gate, idempotent registration with lineage, aliases.

Promotion uses aliases, not stages: ``challenger`` is the newest registered version,
``champion`` the one that serves, ``previous`` the champion it replaced.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airloop.settings import Settings
from airloop.tracking import configure
from airloop.training.metrics import is_better, metric
from airloop.usecase import UseCase

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"


def gate(
    usecase: UseCase, evaluation: dict[str, Any], champion_version: str | None
) -> dict[str, Any]:
    """Promote only if the use case's floors hold and the champion is not beaten by the margin."""
    reasons: list[str] = []
    challenger = evaluation["challenger"]
    for name, floor in usecase.gates.minimum.items():
        value = challenger.get(name)
        if value is None or not value >= floor:
            reasons.append(f"{name} {value:.4f} is below the minimum {floor}")
    for name, ceiling in usecase.gates.maximum.items():
        value = challenger.get(name)
        if value is None or not value <= ceiling:
            reasons.append(f"{name} {value:.4f} is above the maximum {ceiling}")
    primary = usecase.metrics[0]
    champion = evaluation.get("champion")
    if champion is not None:
        margin = usecase.gates.max_regression
        if not is_better(primary, usecase.task, challenger[primary], champion[primary], margin):
            direction = "below" if metric(primary, usecase.task).higher_is_better else "above"
            reasons.append(
                f"{primary} {challenger[primary]:.4f} is {direction} champion v{champion_version}'s "
                f"{champion[primary]:.4f} by more than {margin}"
            )
    elif champion_version is not None and evaluation.get("champion_error"):
        reasons.append(
            f"the champion v{champion_version} could not be scored: {evaluation['champion_error']}"
        )
    return {"promote": not reasons, "reasons": reasons, "primary_metric": primary}


def champion_version(settings: Settings, model_name: str, alias: str = CHAMPION) -> str | None:
    client = configure(settings)
    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except Exception:
        return None


def register(
    settings: Settings,
    usecase: UseCase,
    model_uri: str,
    tags: dict[str, str],
    identity: dict[str, str],
) -> dict[str, Any]:
    """Register the model once per pipeline run: a retry finds the version it already made."""
    import mlflow

    client = configure(settings)
    name = usecase.training.model_name
    filters = " and ".join(f"tags.`{k}` = '{v}'" for k, v in identity.items())
    existing = client.search_model_versions(f"name = '{name}' and {filters}")
    if existing:
        version = existing[0]
        log.info("model %s v%s already registered for this run", name, version.version)
    else:
        try:
            client.get_registered_model(name)
        except Exception:
            client.create_registered_model(
                name,
                tags={"airloop.usecase": usecase.name},
                description=usecase.description.strip(),
            )
        version = mlflow.register_model(model_uri, name, tags={**tags, **identity})
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return {"name": name, "version": str(version.version), "created": not existing}


def promote(
    settings: Settings, usecase: UseCase, version: str, decision: dict[str, Any]
) -> dict[str, Any]:
    """Move ``champion`` to the version when the gate passed; otherwise record why not."""
    client = configure(settings)
    name = usecase.training.model_name
    current = champion_version(settings, name)
    mv = client.get_model_version(name, version)
    if not decision["promote"]:
        why = "; ".join(decision["reasons"])
        client.set_model_version_tag(
            name, version, "airloop.promotion", f"not promoted, because {why}"
        )
        if mv.run_id:
            client.set_tag(mv.run_id, "airloop.promotion", f"not promoted, because {why}")
        log.info("%s v%s not promoted, because %s", name, version, why)
        return {"promoted": False, "champion": current, "reasons": decision["reasons"]}
    if current == version:
        return {
            "promoted": True,
            "champion": version,
            "previous": champion_version(settings, name, PREVIOUS),
        }
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS, current)
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(
        name,
        version,
        "airloop.promotion",
        f"promoted, replacing v{current}" if current else "promoted, first champion",
    )
    if mv.run_id:
        client.set_tag(mv.run_id, "airloop.promotion", "promoted")
    return {"promoted": True, "champion": version, "previous": current}


def describe_champion(settings: Settings, usecase: UseCase) -> dict[str, Any] | None:
    """The champion's name, version, metrics and lineage, for status and the demo summary."""
    client = configure(settings)
    name = usecase.training.model_name
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except Exception:
        return None
    run = client.get_run(mv.run_id)
    aliases = {}
    for alias in (CHAMPION, CHALLENGER, PREVIOUS):
        aliases[alias] = champion_version(settings, name, alias)
    return {
        "name": name,
        "version": str(mv.version),
        "run_id": mv.run_id,
        "aliases": aliases,
        "metrics": {k: v for k, v in run.data.metrics.items() if k.startswith("test_")},
        "lineage": {
            k.removeprefix("airloop."): v for k, v in mv.tags.items() if k.startswith("airloop.")
        },
    }


def feature_view_versions(settings: Settings, usecase: UseCase) -> str:
    """Each service view's definition digest, so a version pins the features it was trained on."""
    import hashlib

    from airloop.features.store import feature_store

    store = feature_store(settings, usecase)
    versions = {}
    for view in usecase.service_views:
        spec = store.get_feature_view(view.name).to_proto().spec
        versions[view.name] = hashlib.sha256(
            spec.SerializeToString(deterministic=True)
        ).hexdigest()[:12]
    return json.dumps(versions, sort_keys=True)


def rollback(settings: Settings, usecase: UseCase, reason: str, who: str) -> dict[str, Any]:
    """Put ``previous`` back as ``champion``, recording who did it and why on both versions."""
    from datetime import UTC, datetime

    client = configure(settings)
    name = usecase.training.model_name
    current = champion_version(settings, name)
    previous = champion_version(settings, name, PREVIOUS)
    if previous is None:
        raise RollbackError(
            f"{name} has no 'previous' version to roll back to (champion is v{current})"
        )
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.delete_registered_model_alias(name, PREVIOUS)
    note = f"{stamp} by {who}: {reason}"
    if current is not None:
        client.set_model_version_tag(name, current, "airloop.rolled_back", note)
    client.set_model_version_tag(name, previous, "airloop.restored", note)
    log.warning("%s rolled back from v%s to v%s: %s", name, current, previous, note)
    return {"model": name, "from": current, "to": previous, "who": who, "reason": reason}


class RollbackError(RuntimeError):
    """Nothing to roll back to."""
