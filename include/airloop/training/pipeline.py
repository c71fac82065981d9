"""The training pipeline (D), one function per stage; the Airflow tasks and the CLI call these."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from airloop.data.intervals import as_utc
from airloop.registry import models as registry
from airloop.settings import Settings
from airloop.tracking import configure, experiment_id, experiment_name
from airloop.training import train as training
from airloop.training.checks import check_training_set
from airloop.training.dataset import build_training_set, load_training_set
from airloop.usecase import UseCase, resolve


def resolve_window(
    usecase: UseCase, start: datetime | None, end: datetime | None, params: dict[str, Any] | None
) -> tuple[datetime, datetime]:
    """The params' window when given (a manual run), else the ``training.window`` before ``end``."""
    params = params or {}
    if params.get("window_end"):
        hi = as_utc(datetime.fromisoformat(str(params["window_end"])))
    elif end is not None:
        hi = as_utc(end)
    else:
        raise ValueError("no window: give window_start and window_end")
    lo = (
        as_utc(datetime.fromisoformat(str(params["window_start"])))
        if params.get("window_start")
        else hi - usecase.training.window
    )
    if lo >= hi:
        raise ValueError(f"empty training window [{lo:%Y-%m-%d}, {hi:%Y-%m-%d})")
    return lo, hi


def prepare_training_set(
    start: datetime | None = None,
    end: datetime | None = None,
    params: dict[str, Any] | None = None,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    uc, st = resolve(usecase, settings)
    lo, hi = resolve_window(uc, start, end, params)
    return build_training_set(st, uc, lo, hi).as_dict()


def validate_training_set(
    training_set: dict[str, Any],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    uc, _ = resolve(usecase, settings)
    frame = load_training_set(training_set["uri"])
    return check_training_set(uc, frame, training_set["feature_columns"])


def proposed_config(settings: Settings, usecase: UseCase) -> dict[str, Any] | None:
    """The configuration the latest experiment proposed for this use case, if any."""
    import mlflow

    configure(settings)
    exp = experiment_id(settings, experiment_name(usecase.name, "experimentation"))
    runs = mlflow.search_runs(
        [exp],
        filter_string="tags.`airloop.proposal` = 'true'",
        order_by=["attributes.start_time DESC"],
        output_format="list",
        max_results=1,
    )
    if not runs:
        return None
    config = json.loads(runs[0].data.tags["airloop.proposed_config"])
    config["proposed_by"] = runs[0].info.run_id
    return config


def train_model(
    training_set: dict[str, Any],
    lineage: dict[str, Any],
    config: dict[str, Any] | None = None,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Train with the given config, else the latest proposal, else the use case's default."""
    uc, st = resolve(usecase, settings)
    chosen = config or proposed_config(st, uc) or {}
    lineage = {
        **lineage,
        "config_source": chosen.get("proposed_by", "given" if config else "usecase default"),
    }
    return training.train_and_log(
        st, uc, training_set, {k: v for k, v in chosen.items() if k != "proposed_by"}, lineage
    )


def evaluate_model(
    training_set: dict[str, Any],
    trained: dict[str, Any],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    uc, st = resolve(usecase, settings)
    champion = registry.champion_version(st, uc.training.model_name)
    uri = f"models:/{uc.training.model_name}@{registry.CHAMPION}" if champion else None
    result = training.evaluate_model(st, uc, training_set, trained["run_id"], uri)
    return {**result, "champion_version": champion}


def register_model(
    training_set: dict[str, Any],
    validation: dict[str, Any],
    trained: dict[str, Any],
    evaluation: dict[str, Any],
    lineage: dict[str, Any],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Gate, then register the challenger once per run with its full lineage."""
    uc, st = resolve(usecase, settings)
    decision = registry.gate(uc, evaluation, evaluation.get("champion_version"))
    tags = training.lineage_tags(
        {
            **lineage,
            "mlflow_run_id": trained["run_id"],
            "window_start": training_set["start"],
            "window_end": training_set["end"],
            "labels_as_of": training_set["as_of"],
            "feature_service": training_set["feature_service"],
            "feature_views": registry.feature_view_versions(st, uc),
            "training_set_digest": training_set["digest"],
            "training_set_uri": training_set["uri"],
            "validation": "passed" if validation.get("success") else "failed",
            "config": json.dumps(trained["config"], sort_keys=True),
            "gate": "passed"
            if decision["promote"]
            else "refused: " + "; ".join(decision["reasons"]),
            **{f"test_{k}": f"{v:.6f}" for k, v in evaluation["challenger"].items()},
        }
    )
    identity: dict[str, str] = {
        k: tags[k] for k in ("airloop.dag_id", "airloop.run_id") if k in tags
    }
    if not identity:
        identity = {"airloop.mlflow_run_id": trained["run_id"]}
    registered = registry.register(st, uc, trained["model_uri"], tags, identity)
    return {**registered, "decision": decision}


def promote_model(
    registered: dict[str, Any],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    uc, st = resolve(usecase, settings)
    return registry.promote(st, uc, registered["version"], registered["decision"])


def deploy_model(
    promotion: dict[str, Any],
    training_set: dict[str, Any],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    from airloop.serving.deploy import deploy

    uc, st = resolve(usecase, settings)
    return deploy(st, uc, promotion, training_set)


def run_training(
    window_start: str,
    window_end: str,
    config: dict[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Every stage of (D) in one process: ``airloop train`` and notebooks."""
    uc, st = resolve(usecase, settings)
    lineage = lineage or {"trigger": "cli"}
    ts = prepare_training_set(
        params={"window_start": window_start, "window_end": window_end}, usecase=uc, settings=st
    )
    validation = validate_training_set(ts, uc, st)
    trained = train_model(ts, lineage, config, uc, st)
    evaluation = evaluate_model(ts, trained, uc, st)
    registered = register_model(ts, validation, trained, evaluation, lineage, uc, st)
    promoted = promote_model(registered, uc, st)
    return {
        "training_set": ts,
        "trained": trained,
        "evaluation": evaluation,
        "registered": registered,
        "promotion": promoted,
    }
