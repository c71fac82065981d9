"""The training pipeline DAG (D): train → evaluate → gate → register → promote."""

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
from airflow.sdk.exceptions import AirflowFailException

from airloop.orchestration.assets import retrain_request
from airloop.orchestration.feature_pipeline import schedule_bounds
from airloop.orchestration.tasks import dag_header, run_lineage, run_stage, triggering_request
from airloop.settings import get_settings
from airloop.usecase import load_usecase

STAGES = "airloop.training.pipeline"


def build_model_training(doc_md: str | None = None) -> DAG:
    usecase = load_usecase(get_settings().usecase)
    name = usecase.name
    start, end = schedule_bounds(usecase)

    @dag(
        dag_id="model_training",
        description=f"Train, evaluate, gate, register and promote the {name} model",
        doc_md=doc_md,
        # On its time schedule, and whenever monitoring publishes a retrain request.
        schedule=AssetOrTimeSchedule(
            timetable=CronDataIntervalTimetable(usecase.training.schedule, timezone="UTC"),
            assets=[retrain_request(name)],
        ),
        start_date=start,
        end_date=end,
        max_active_runs=1,
        **dag_header(usecase, "training"),
        params={
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
                description='{"family": ..., "params": {...}}; empty: the latest experiment proposal, else the use case default',
            ),
        },
    )
    def model_training() -> None:
        @task
        def build_training_set(
            params: dict[str, Any] | None = None,
            data_interval_start: datetime | None = None,
            data_interval_end: datetime | None = None,
        ) -> dict[str, Any]:
            window = dict(params or {})
            request = triggering_request()
            if request and not window.get("window_end"):
                # A retrain request names the monitored interval; train on data up to its end.
                window["window_end"] = request["interval_end"]
            return run_stage(
                f"{STAGES}:prepare_training_set",
                start=data_interval_start,
                end=data_interval_end,
                params=window,
                usecase=name,
            )

        @task
        def validate_training_set(training_set: dict[str, Any]) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:validate_training_set", training_set=training_set, usecase=name
            )

        @task
        def train_model(
            training_set: dict[str, Any],
            validation: dict[str, Any],
            params: dict[str, Any] | None = None,
        ) -> dict[str, Any]:
            config = dict((params or {}).get("config") or {}) or None
            return run_stage(
                f"{STAGES}:train_model",
                training_set=training_set,
                lineage=run_lineage(),
                config=config,
                usecase=name,
            )

        @task
        def evaluate_model(training_set: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:evaluate_model", training_set=training_set, trained=trained, usecase=name
            )

        @task
        def register_model(
            training_set: dict[str, Any],
            validation: dict[str, Any],
            trained: dict[str, Any],
            evaluation: dict[str, Any],
        ) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:register_model",
                training_set=training_set,
                validation=validation,
                trained=trained,
                evaluation=evaluation,
                lineage=run_lineage(),
                usecase=name,
            )

        @task
        def promote_model(registered: dict[str, Any]) -> dict[str, Any]:
            return run_stage(f"{STAGES}:promote_model", registered=registered, usecase=name)

        @task
        def deploy_model(promotion: dict[str, Any], training_set: dict[str, Any]) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:deploy_model",
                promotion=promotion,
                training_set=training_set,
                usecase=name,
            )

        training_set: Any = build_training_set()
        validation: Any = validate_training_set(training_set)
        trained: Any = train_model(training_set, validation)
        evaluation: Any = evaluate_model(training_set, trained)
        registered: Any = register_model(training_set, validation, trained, evaluation)
        promotion: Any = promote_model(registered)
        deployed: Any = deploy_model(promotion, training_set)

        @task(trigger_rule=TriggerRule.ALL_DONE)
        def close_retrain_request(ti: Any = None) -> dict[str, Any] | None:
            """Record on the request how its training ended; a failed run still fails here."""
            request = triggering_request()
            outcome = run_stage(
                "airloop.monitoring.monitor:training_outcome",
                registered=ti.xcom_pull(task_ids="register_model"),
                promotion=ti.xcom_pull(task_ids="promote_model"),
                deploy=ti.xcom_pull(task_ids="deploy_model"),
                dag_run_id=ti.run_id,
            )
            closed = run_stage(
                "airloop.monitoring.monitor:close_request",
                request_id=(request or {}).get("request_id"),
                outcome=outcome,
                usecase=name,
            )
            if outcome["result"] == "failed":
                raise AirflowFailException("training did not finish; see the failed task above")
            return closed

        deployed >> close_retrain_request()

    return model_training()
