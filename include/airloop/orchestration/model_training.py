"""The training pipeline DAG (D): train → evaluate → gate → register → promote → deploy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import (
    DAG,
    AssetOrTimeSchedule,
    CronDataIntervalTimetable,
    Param,
    TriggerRule,
    dag,
    task,
)

from airloop.catalog import family_names
from airloop.orchestration.assets import retrain_request
from airloop.orchestration.tasks import (
    dag_header,
    lineage_of,
    run_lineage,
    run_stage,
    schedule_bounds,
    triggering_request,
)
from airloop.settings import Settings, get_settings
from airloop.usecase import UseCase, dag_id


def training_params(usecase: UseCase) -> dict[str, Param]:
    """The Trigger form: an explicit window and configuration, each optional; the schemas
    refuse what they can say (types, a family not of the use case's task), and
    :func:`~airloop.usecase.run_params.check_training_params` the rest, at the first task."""
    return {
        "window_start": Param(
            None,
            type=["null", "string"],
            format="date",
            description="First day of the training window (default: the interval end minus training.window)",
        ),
        "window_end": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Day after the window (default: the data interval end)",
        ),
        "config": Param(
            {},
            type="object",
            properties={
                "family": {"type": "string", "enum": family_names(usecase.task)},
                "params": {"type": "object"},
            },
            additionalProperties=False,
            description='{"family": ..., "params": {...}}; empty: the latest experiment proposal, else the use case default',
        ),
    }


@task
def build_training_set(
    usecase: str,
    params: dict[str, Any] | None = None,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
) -> dict[str, Any]:
    """Point-in-time correct rows of the window; a retrain request's window ends at its interval."""
    from airloop.training.pipeline import build_training_set as stage
    from airloop.usecase import resolve
    from airloop.usecase.run_params import check_training_params

    window = dict(params or {})
    run_stage(check_training_params, window, resolve(usecase, None)[0])  # before any work
    request = triggering_request()
    if request and not window.get("window_end"):
        window["window_end"] = request["interval_end"]
    return run_stage(stage, data_interval_start, data_interval_end, window, usecase)


@task
def validate_training_set(training_set: dict[str, Any], usecase: str) -> dict[str, Any]:
    """Great Expectations on the training set: label balance, missing features, ranges."""
    from airloop.training.dataset import TrainingSet
    from airloop.training.pipeline import validate_training_set as stage

    return run_stage(stage, TrainingSet.from_dict(training_set), usecase)


@task
def train_model(
    training_set: dict[str, Any],
    validation: dict[str, Any],
    usecase: str,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The given config, else the latest experiment's proposal, else the use case's default."""
    from airloop.training.dataset import TrainingSet
    from airloop.training.pipeline import train_model as stage

    config = dict((params or {}).get("config") or {}) or None
    return run_stage(stage, TrainingSet.from_dict(training_set), run_lineage(), config, usecase)


@task
def evaluate_model(
    training_set: dict[str, Any], trained: dict[str, Any], usecase: str
) -> dict[str, Any]:
    """The new model and the champion on the same held-out, later time slice."""
    from airloop.training.dataset import TrainingSet
    from airloop.training.pipeline import evaluate_model as stage
    from airloop.training.train import TrainedModel

    return run_stage(
        stage, TrainingSet.from_dict(training_set), TrainedModel.from_dict(trained), usecase
    )


@task
def register_model(
    training_set: dict[str, Any],
    validation: dict[str, Any],
    trained: dict[str, Any],
    evaluation: dict[str, Any],
    usecase: str,
) -> dict[str, Any]:
    """The gate, then one model version per run with its lineage, alias ``challenger``."""
    from airloop.training.checks import TrainingSetCheck
    from airloop.training.dataset import TrainingSet
    from airloop.training.pipeline import register_model as stage
    from airloop.training.train import Evaluation, TrainedModel

    return run_stage(
        stage,
        TrainingSet.from_dict(training_set),
        TrainingSetCheck.from_dict(validation),
        TrainedModel.from_dict(trained),
        Evaluation.from_dict(evaluation),
        run_lineage(),
        usecase,
    )


APPROVAL_TASK = "approve_promotion"


@task
def promote_model(registered: dict[str, Any], usecase: str, ti: Any = None) -> dict[str, Any]:
    """``champion`` moves to the new version when the gate passed (and, where the use case asks,
    a person approved); else the version says why not."""
    from airloop.registry.models import Registration
    from airloop.training.pipeline import promote_model as stage

    answer = ti.xcom_pull(task_ids=APPROVAL_TASK) if ti is not None else None
    return run_stage(
        stage, Registration.from_dict(registered), usecase, approval=approval_of(answer)
    )


def approval_of(answer: dict[str, Any] | None) -> Any:
    """The approval step's answer (Airflow's HITL payload) as the stage's record, if asked."""
    from airloop.training.pipeline import Approval

    if not answer:
        return None
    user = answer.get("responded_by_user") or {}
    return Approval(
        approved="Approve" in (answer.get("chosen_options") or []),
        by=str(user.get("name") or user.get("id") or "unknown"),
    )


APPROVAL_BODY = """\
{% set r = ti.xcom_pull(task_ids='register_model') %}\
**{{ r.name }} v{{ r.version }}**: the gate {{ 'passed' if r.decision.promote else 'refused it' }}.
{% for reason in r.decision.reasons %}
- {{ reason }}{% endfor %}

| metric | challenger | champion v{{ r.decision.champion_version }} |
|---|---|---|
{% for k, v in r.decision.challenger.items() %}| {{ k }} | {{ v }} | \
{{ (r.decision.champion or {}).get(k) }} |
{% endfor %}
Approve to make it champion; reject to keep the champion. Either answer is recorded with the
version's promotion evidence."""


def approval_step(usecase: UseCase) -> Any:
    """Airflow's human-in-the-loop task: a person approves or rejects the promotion in the UI."""
    from airflow.providers.standard.operators.hitl import HITLOperator

    return HITLOperator(
        task_id=APPROVAL_TASK,
        subject=f"Promote the new {usecase.training.model_name} version to champion?",
        body=APPROVAL_BODY,
        options=["Approve", "Reject"],
        response_timeout=timeout.longest if (timeout := usecase.gates.approval_timeout) else None,
    )


@task
def deploy_model(
    promotion: dict[str, Any], training_set: dict[str, Any], usecase: str
) -> dict[str, Any]:
    """The running service loads the new champion and is smoke-tested; rolled back on failure."""
    from airloop.registry.models import Promotion
    from airloop.serving.deploy import deploy_model as stage
    from airloop.training.dataset import TrainingSet

    return run_stage(
        stage, Promotion.from_dict(promotion), TrainingSet.from_dict(training_set), usecase
    )


@task(trigger_rule=TriggerRule.ALL_DONE)
def close_retrain_request(usecase: str, ti: Any = None) -> dict[str, Any]:
    """Record on the request how its training ended; a failed run still fails here."""
    from airloop.monitoring.outcome import close_retrain_request as stage
    from airloop.registry.models import Promotion, Registration
    from airloop.serving.deploy import Deployment

    registered, promotion, deployment = (
        ti.xcom_pull(task_ids=name) for name in ("register_model", "promote_model", "deploy_model")
    )
    return run_stage(
        stage,
        (triggering_request() or {}).get("request_id"),
        Registration.from_dict(registered) if registered else None,
        Promotion.from_dict(promotion) if promotion else None,
        Deployment.from_dict(deployment) if deployment else None,
        ti.run_id,
        usecase,
    )


def train_in_container(settings: Settings, ref: str) -> Any:
    """The train step in the training image (AIRLOOP_TRAINING_IMAGE), with the arguments the
    local task passes: the training set's record, the run's lineage, the form's config."""
    from airloop.orchestration.containers import StageInContainer

    return StageInContainer(
        task_id="train_model",
        settings=settings,
        stage=[
            "train-model",
            "--training-set",
            "{{ ti.xcom_pull(task_ids='build_training_set') | tojson }}",
            "--lineage",
            "{{ airloop_lineage(dag_run, triggering_asset_events) | tojson }}",
            "--config",
            "{{ (params.config or {}) | tojson }}",
            "--usecase",
            ref,
        ],
    )


def build_model_training(usecase: UseCase, ref: str, doc_md: str | None = None) -> DAG:
    """The DAG ``model_training``: on its timetable, by hand, and on every retrain request.

    With AIRLOOP_TRAINING_IMAGE set, the train step runs in that image (C5).
    """
    start, end = schedule_bounds(usecase)
    settings = get_settings()

    @dag(
        dag_id=dag_id("model_training", usecase, get_settings()),
        description=f"Train, evaluate, gate, register and promote the {usecase.name} model",
        doc_md=doc_md,
        # On its time schedule, and whenever monitoring publishes a retrain request.
        schedule=AssetOrTimeSchedule(
            timetable=CronDataIntervalTimetable(usecase.training.schedule, timezone="UTC"),
            assets=[retrain_request(usecase.name)],
        ),
        start_date=start,
        end_date=end,
        max_active_runs=1,
        **dag_header(usecase, "training"),
        params=training_params(usecase),
        user_defined_macros={"airloop_lineage": lineage_of},
    )
    def model_training() -> None:
        training_set: Any = build_training_set(usecase=ref)
        validation: Any = validate_training_set(training_set, usecase=ref)
        trained: Any
        if settings.training_image:
            container = train_in_container(settings, ref)
            [training_set, validation] >> container
            trained = container.output
        else:
            trained = train_model(training_set, validation, usecase=ref)
        evaluation: Any = evaluate_model(training_set, trained, usecase=ref)
        registered: Any = register_model(training_set, validation, trained, evaluation, usecase=ref)
        promotion: Any = promote_model(registered, usecase=ref)
        if usecase.gates.require_approval:
            registered >> approval_step(usecase) >> promotion
        deployed: Any = deploy_model(promotion, training_set, usecase=ref)
        deployed >> close_retrain_request(usecase=ref)

    return model_training()
