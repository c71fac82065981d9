"""The training pipeline (D), one function per stage; the Airflow tasks and the CLI call these.

build_training_set → validate_training_set → train_model → evaluate_model → register_model →
promote_model. Deploying to the running service is serving's step (``airloop.serving.deploy``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from airloop.core.records import Record
from airloop.registry.models import (
    Promotion,
    Registration,
    champion_to_beat,
    feature_view_versions,
    gate,
    promote,
    register,
)
from airloop.registry.tracking import configure, experiment_id, experiment_name
from airloop.settings import Settings
from airloop.training.checks import TrainingSetCheck, check_training_set
from airloop.training.dataset import (
    TrainingSet,
    load_training_set,
    resolve_window,
    retrieve_training_set,
)
from airloop.training.train import (
    IDENTITY_TAGS,
    Evaluation,
    TrainedModel,
    evaluate_run,
    lineage_tags,
    train_and_log,
)
from airloop.usecase import UseCase, resolve


class Approval(Record):
    """A person's answer at the approval step (Airflow's human-in-the-loop task)."""

    approved: bool
    by: str


class TrainingRun(Record):
    """Every stage of (D) run in one process (``airloop train``)."""

    training_set: TrainingSet
    trained: TrainedModel
    evaluation: Evaluation
    registered: Registration
    promotion: Promotion


def build_training_set(
    start: datetime | None = None,
    end: datetime | None = None,
    params: dict[str, Any] | None = None,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> TrainingSet:
    """Point-in-time correct rows of the window (the params', else the one ending at ``end``)."""
    uc, st = resolve(usecase, settings)
    lo, hi = resolve_window(uc, start, end, params)
    return retrieve_training_set(st, uc, lo, hi)


def validate_training_set(
    training_set: TrainingSet,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> TrainingSetCheck:
    """The training-set gate: label balance, missing features, ranges."""
    uc, _ = resolve(usecase, settings)
    frame = load_training_set(training_set.uri, uc.training.max_rows)
    return check_training_set(uc, frame, training_set.feature_columns)


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
    training_set: TrainingSet,
    lineage: dict[str, Any],
    config: dict[str, Any] | None = None,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> TrainedModel:
    """Train with the given config, else the latest proposal, else the use case's default."""
    uc, st = resolve(usecase, settings)
    chosen = config or proposed_config(st, uc) or {}
    lineage = {
        **lineage,
        "config_source": chosen.get("proposed_by", "given" if config else "usecase default"),
    }
    return train_and_log(
        st, uc, training_set, {k: v for k, v in chosen.items() if k != "proposed_by"}, lineage
    )


def evaluate_model(
    training_set: TrainingSet,
    trained: TrainedModel,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> Evaluation:
    """The new model and the current champion on the same held-out, later time slice (on a
    rerun after this run's own promotion, the champion it replaced)."""
    uc, st = resolve(usecase, settings)
    champion = champion_to_beat(st, uc, trained.run_id)
    return evaluate_run(st, uc, training_set, trained.run_id, champion)


def register_model(
    training_set: TrainingSet,
    validation: TrainingSetCheck,
    trained: TrainedModel,
    evaluation: Evaluation,
    lineage: dict[str, Any],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> Registration:
    """Gate, then register the challenger once per run with its full lineage."""
    uc, st = resolve(usecase, settings)
    decision = gate(
        uc,
        evaluation.challenger,
        evaluation.champion,
        evaluation.champion_version,
        evaluation.champion_error,
    )
    tags = lineage_tags(
        {
            **lineage,
            "mlflow_run_id": trained.run_id,
            "window_start": training_set.start,
            "window_end": training_set.end,
            "labels_as_of": training_set.as_of,
            "feature_service": training_set.feature_service,
            "feature_views": feature_view_versions(st, uc),
            "training_set_digest": training_set.digest,
            "training_set_uri": training_set.uri,
            "validation": "passed" if validation.success else "failed",
            "config": json.dumps(trained.config.to_dict(), sort_keys=True),
            "gate": "passed" if decision.promote else "refused: " + "; ".join(decision.reasons),
            "evaluation_rows": evaluation.test_rows,
            "evaluation_window": " to ".join(evaluation.test_window),
            **{f"test_{k}": f"{v:.6f}" for k, v in evaluation.challenger.items() if v is not None},
        }
    )
    identity: dict[str, str] = {k: tags[k] for k in IDENTITY_TAGS if k in tags}
    if not identity:
        identity = {"airloop.mlflow_run_id": trained.run_id}
    return register(st, uc, trained.model_uri, tags, identity, decision)


def promote_model(
    registered: Registration,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
    approval: Approval | None = None,
) -> Promotion:
    """``champion`` moves to the new version when the gate passed and, where the use case asks
    for one, a person approved (the old one becomes ``previous``); either way the decision's
    evidence is kept."""
    uc, st = resolve(usecase, settings)
    if approval is None:
        return promote(st, uc, registered)
    if approval.approved:
        return promote(st, uc, registered, approved_by=f"{approval.by} (approval step)")
    return promote(st, uc, registered, rejected_by=approval.by)


def run_training(
    window_start: str,
    window_end: str,
    config: dict[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> TrainingRun:
    """Every stage of (D) but the deploy, in one process: ``airloop train`` and notebooks."""
    uc, st = resolve(usecase, settings)
    lineage = lineage or {"trigger": "cli"}
    training_set = build_training_set(
        params={"window_start": window_start, "window_end": window_end}, usecase=uc, settings=st
    )
    validation = validate_training_set(training_set, uc, st)
    trained = train_model(training_set, lineage, config, uc, st)
    evaluation = evaluate_model(training_set, trained, uc, st)
    registered = register_model(training_set, validation, trained, evaluation, lineage, uc, st)
    return TrainingRun(
        training_set=training_set,
        trained=trained,
        evaluation=evaluation,
        registered=registered,
        promotion=promote_model(registered, uc, st),
    )
