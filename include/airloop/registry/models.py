"""The MLflow model registry: gate, idempotent registration with lineage, aliases.

Promotion uses aliases, not stages: ``challenger`` is the newest registered version,
``champion`` the one that serves, ``previous`` the champion it replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from airloop.catalog import is_better, metric
from airloop.core.errors import PermanentError
from airloop.core.records import Number, Record
from airloop.registry.evidence import drift_state, history, record_event
from airloop.registry.tracking import configure
from airloop.settings import Settings
from airloop.usecase import UseCase

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"


class NoChampionError(PermanentError, LookupError):
    """The model has no version with the alias a step needs; the message says how to make one."""


class RollbackError(PermanentError, RuntimeError):
    """Nothing to roll back to."""


class GateDecision(Record):
    """The gate's verdict on a challenger, every rule it broke, and the figures it weighed."""

    promote: bool
    reasons: list[str]  # each names its metric first, then the rule that decided
    primary_metric: str
    notes: list[str] = []  # bounds broken by both, not held against the challenger
    challenger: dict[str, Number] = {}
    champion: dict[str, Number] | None = None
    champion_version: str | None = None


class Registration(Record):
    """The model version a run registered (``created`` False: an earlier try had made it)."""

    name: str
    version: str
    created: bool
    decision: GateDecision


class Promotion(Record):
    """Where ``champion`` points after the gate's decision, and why it did not move."""

    promoted: bool
    champion: str | None
    previous: str | None = None
    reasons: list[str] = []


class Rollback(Record):
    """``champion`` moved back to ``previous`` by hand or by a failed deploy."""

    model: str
    from_version: str | None
    to_version: str
    who: str
    reason: str


def _figure(value: float | None) -> str:
    return "missing" if value is None else f"{value:.4f}"


def gate(
    usecase: UseCase,
    challenger: dict[str, Number],
    champion: dict[str, Number] | None,
    champion_version: str | None,
    champion_error: str | None = None,
) -> GateDecision:
    """Promote a challenger no worse than the champion, within the safety net of the bounds.

    ``challenger`` and ``champion`` are metrics on the same held-out rows; a metric that could
    not be computed (None) breaks any rule about it. The relative rule: on each metric of
    ``gates.compare``, the challenger may trail the champion by ``max_regression``. The
    absolute rule: the floors and ceilings, except one the champion breaks too while the
    challenger is no worse there (then a note, not a reason). Each reason names the metric,
    the rule and both figures.
    """
    spec = usecase.gates
    tolerance = spec.max_regression
    reasons: list[str] = []
    notes: list[str] = []
    who = f"champion v{champion_version}"

    def no_worse(name: str) -> bool:
        mine, theirs = challenger.get(name), (champion or {}).get(name)
        return (
            mine is not None
            and theirs is not None
            and is_better(name, usecase.task, mine, theirs, tolerance.allowed(theirs))
        )

    bounds = [(n, v, "minimum", "below") for n, v in spec.minimum.items()]
    bounds += [(n, v, "maximum", "above") for n, v in spec.maximum.items()]
    for name, bound, kind, side in bounds:
        value = challenger.get(name)
        holds = value is not None and (value >= bound if kind == "minimum" else value <= bound)
        if holds:
            continue
        theirs = (champion or {}).get(name)
        broken = (
            f"{name} {_figure(value)} is {side} the {kind} {bound}"
            if value is not None
            else f"{name} could not be computed on the test rows (one class only, or too few "
            f"rows; a longer window holds both), so it cannot be held to the {kind} {bound}"
        )
        champion_breaks = theirs is not None and not (
            theirs >= bound if kind == "minimum" else theirs <= bound
        )
        if champion is not None and champion_breaks and no_worse(name):
            notes.append(f"{broken}, as is {who}'s {_figure(theirs)} on the same rows")
        elif champion is not None:
            reasons.append(f"{broken} (absolute rule; {who}: {_figure(theirs)})")
        else:
            reasons.append(f"{broken} (absolute rule)")
    primary = usecase.metrics[0]
    if champion is not None:
        for name in spec.compare or [primary]:
            if not no_worse(name):
                mine, theirs = challenger.get(name), champion.get(name)
                side = "below" if metric(name, usecase.task).higher_is_better else "above"
                reasons.append(
                    f"{name} {_figure(mine)} is {side} {who}'s {_figure(theirs)} on the same rows"
                    f" by more than {tolerance} (relative rule)"
                )
    elif champion_version is not None and champion_error:
        reasons.append(f"the champion v{champion_version} could not be scored: {champion_error}")
    return GateDecision(
        promote=not reasons,
        reasons=reasons,
        primary_metric=primary,
        challenger=challenger,
        champion=champion,
        champion_version=champion_version,
        notes=notes,
    )


# What MLflow answers for a model or an alias that does not exist (any other error: the
# registry did not answer).
NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


class RegistryUnreachable(RuntimeError):
    """The registry did not answer (as opposed to: it answered that there is no such alias).
    Never read as "no champion": a gate that did would promote without comparing."""


def alias_version(settings: Settings, model_name: str, alias: str = CHAMPION) -> str | None:
    """The version an alias points at, or None when the model or the alias does not exist;
    :class:`RegistryUnreachable` when the registry does not answer."""
    from mlflow.exceptions import MlflowException

    try:
        client = configure(settings)
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND_CODES:
            return None
        raise RegistryUnreachable(
            f"the model registry ({settings.tracking_uri}) did not answer for"
            f" {model_name}@{alias}: {str(exc).splitlines()[0][:300]}"
        ) from exc
    except Exception as exc:  # the store's own errors (a database, a socket)
        raise RegistryUnreachable(
            f"the model registry ({settings.tracking_uri}) did not answer for"
            f" {model_name}@{alias}: {type(exc).__name__}: {exc}"[:400]
        ) from exc


def champion_to_beat(settings: Settings, usecase: UseCase, mlflow_run_id: str) -> str | None:
    """The champion a training run's model is evaluated against: the current one; or, when the
    run's own version already is the champion (its evaluate task cleared and run again after
    its promotion), the champion that promotion replaced, so that the rerun compares what the
    first try compared, never the model with itself."""
    name = usecase.training.model_name
    current = alias_version(settings, name)
    if current is None or configure(settings).get_model_version(name, current).run_id != (
        mlflow_run_id
    ):
        return current
    promoted = [
        e for e in history(settings, usecase) if (e.kind, e.version) == ("promoted", current)
    ]
    return promoted[0].champion_before if promoted else None


def require_champion(settings: Settings, usecase: UseCase) -> str:
    """The champion's version; without one, an error that says how to get one."""
    name = usecase.training.model_name
    version = alias_version(settings, name)
    if version is None:
        raise NoChampionError(
            f"{name} has no {CHAMPION}: train and promote a model first "
            "(the model_training DAG, or `airloop train`)"
        )
    return version


def register(
    settings: Settings,
    usecase: UseCase,
    model_uri: str,
    tags: dict[str, str],
    identity: dict[str, str],
    decision: GateDecision,
) -> Registration:
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
        except Exception:  # not registered yet
            client.create_registered_model(
                name,
                tags={"airloop.usecase": usecase.name},
                description=usecase.description.strip(),
            )
        version = mlflow.register_model(model_uri, name, tags={**tags, **identity})
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return Registration(
        name=name, version=str(version.version), created=not existing, decision=decision
    )


def promote(
    settings: Settings,
    usecase: UseCase,
    registration: Registration,
    approved_by: str = "the gate",
    rejected_by: str | None = None,
) -> Promotion:
    """Move ``champion`` to the version when the gate passed and no person rejected it;
    otherwise record why not.

    Either way one evidence record is kept (:mod:`airloop.registry.evidence`); a retry finds
    the alias already moved and the record already written.
    """
    client = configure(settings)
    name, version, decision = (
        usecase.training.model_name,
        registration.version,
        registration.decision,
    )
    current = alias_version(settings, name)
    mv = client.get_model_version(name, version)
    if rejected_by is not None and decision.promote:
        why = f"rejected by {rejected_by} at the approval step"
        client.set_model_version_tag(name, version, "airloop.promotion", f"not promoted, {why}")
        _record_decision(settings, usecase, mv, decision, "rejected", current, why, rejected_by)
        return Promotion(promoted=False, champion=current, reasons=[why])
    if not decision.promote:
        why = "; ".join(decision.reasons)
        client.set_model_version_tag(
            name, version, "airloop.promotion", f"not promoted, because {why}"
        )
        if mv.run_id:
            client.set_tag(mv.run_id, "airloop.promotion", f"not promoted, because {why}")
        log.info("%s v%s not promoted, because %s", name, version, why)
        _record_decision(settings, usecase, mv, decision, "refused", current, why, approved_by)
        return Promotion(promoted=False, champion=current, reasons=decision.reasons)
    if current == version:
        previous = alias_version(settings, name, PREVIOUS)
        _record_decision(settings, usecase, mv, decision, "promoted", previous, "", approved_by)
        return Promotion(promoted=True, champion=version, previous=previous)
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS, current)
    client.set_registered_model_alias(name, CHAMPION, version)
    note = f"promoted, replacing v{current}" if current else "promoted, first champion"
    if decision.notes:  # bounds both broke: say why they did not stop it
        note += "; not held against it: " + "; ".join(decision.notes)
    client.set_model_version_tag(name, version, "airloop.promotion", note)
    if mv.run_id:
        client.set_tag(mv.run_id, "airloop.promotion", "promoted")
    _record_decision(settings, usecase, mv, decision, "promoted", current, note, approved_by)
    return Promotion(promoted=True, champion=version, previous=current)


def _record_decision(
    settings: Settings,
    usecase: UseCase,
    mv: Any,
    decision: GateDecision,
    kind: str,
    before: str | None,
    reason: str,
    approved_by: str,
) -> None:
    """The evidence of a promotion, refusal or rejection: the gate's figures, and the lineage
    the version carries. Only a promotion moves the champion (to this version)."""
    after = str(mv.version) if kind == "promoted" else before
    tags = {k.removeprefix("airloop."): v for k, v in mv.tags.items() if k.startswith("airloop.")}
    effective = tags.get("window_end") or datetime.now(UTC).isoformat()
    record_event(
        settings,
        usecase,
        kind=kind,
        version=str(mv.version),
        champion_before=before,
        champion_after=after,
        effective_at=datetime.fromisoformat(effective).astimezone(UTC),
        actor=approved_by,
        reason=reason or tags.get("gate", ""),
        dag_id=tags.get("dag_id"),
        run_id=tags.get("run_id"),
        evidence={
            "validation": tags.get("validation"),
            "gate": decision.model_dump(include={"promote", "reasons", "primary_metric"}),
            "evaluation": {
                "rows": "the same held-out, later time slice for both",
                "test_rows": tags.get("evaluation_rows"),
                "test_window": tags.get("evaluation_window"),
                **decision.model_dump(include={"challenger", "champion", "champion_version"}),
            },
            "drift": drift_state(settings, usecase),
            "trigger": {
                "trigger": tags.get("trigger"),
                "dag_id": tags.get("dag_id"),
                "run_id": tags.get("run_id"),
                "retrain_request": tags.get("retrain_request"),
                "reason": _reason(tags.get("retrain_reason")),
            },
            "training": {
                "window": [tags.get("window_start"), tags.get("window_end")],
                "training_set_digest": tags.get("training_set_digest"),
                "mlflow_run_id": mv.run_id,
                "git_commit": tags.get("git_commit"),
            },
            "approved_by": approved_by,
        },
    )


def _reason(tag: str | None) -> Any:
    """A retrain request's reasons from its tag; the text itself if it is not JSON (a tag
    written before reasons were kept to a tag's size, cut short)."""
    if tag is None:
        return None
    try:
        return json.loads(tag)
    except ValueError:
        return tag


def describe_champion(settings: Settings, usecase: UseCase) -> dict[str, Any] | None:
    """The champion's name, version, metrics and lineage, for status and the demo summary."""
    client = configure(settings)
    name = usecase.training.model_name
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except Exception:  # no model, or no champion yet
        return None
    run = client.get_run(mv.run_id)
    return {
        "name": name,
        "version": str(mv.version),
        "run_id": mv.run_id,
        "aliases": {a: alias_version(settings, name, a) for a in (CHAMPION, CHALLENGER, PREVIOUS)},
        "metrics": {k: v for k, v in run.data.metrics.items() if k.startswith("test_")},
        "lineage": {
            k.removeprefix("airloop."): v for k, v in mv.tags.items() if k.startswith("airloop.")
        },
    }


def feature_view_versions(settings: Settings, usecase: UseCase, located: bool = True) -> str:
    """Each service view's definition digest, so a version pins the features it was trained on.

    ``located=False`` leaves out where the view's offline files are (the home's path), so two
    homes' definitions compare equal when only their locations differ (``airloop ci``).
    """
    from airloop.features.store import feature_store

    store = feature_store(settings, usecase)
    versions = {}
    for view in usecase.service_views:
        spec = store.get_feature_view(view.name).to_proto().spec
        # The definition only: not when it was (re)applied, nor Feast's own version counter.
        spec.batch_source.ClearField("meta")
        spec.ClearField("version")
        if not located:
            spec.batch_source.file_options.ClearField("uri")
        versions[view.name] = hashlib.sha256(
            spec.SerializeToString(deterministic=True)
        ).hexdigest()[:12]
    return json.dumps(versions, sort_keys=True)


def rollback(
    settings: Settings,
    usecase: UseCase,
    reason: str,
    who: str,
    effective_at: datetime | None = None,
    run: dict[str, Any] | None = None,
) -> Rollback:
    """Put ``previous`` back as ``champion``, recording who did it and why on both versions
    and in the history (effective now, or at the given time of the data it was decided on)."""
    client = configure(settings)
    name = usecase.training.model_name
    current = alias_version(settings, name)
    previous = alias_version(settings, name, PREVIOUS)
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
    record_event(
        settings,
        usecase,
        kind="rolled_back",
        version=previous,
        champion_before=current,
        champion_after=previous,
        effective_at=effective_at or datetime.now(UTC),
        actor=who,
        reason=reason,
        dag_id=(run or {}).get("dag_id"),
        run_id=(run or {}).get("run_id"),
        evidence={
            "from_version": current,
            "to_version": previous,
            "drift": drift_state(settings, usecase),
        },
    )
    return Rollback(model=name, from_version=current, to_version=previous, who=who, reason=reason)
