"""The monitoring DAG: drift and live performance per interval, and the feedback loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from airloop.orchestration.assets import retrain_request
from airloop.orchestration.tasks import (
    dag_header,
    data_interval,
    run_lineage,
    run_stage,
    schedule_bounds,
    set_run_note,
)
from airloop.settings import get_settings
from airloop.usecase import UseCase, dag_id


@task
def check_drift(
    usecase: str,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
) -> dict[str, Any]:
    """Served features and scores against the serving version's training reference."""
    from airloop.monitoring.checks import check_drift as stage

    start, end = data_interval(data_interval_start, data_interval_end)
    return run_stage(stage, start, end, usecase)


@task
def check_performance(
    usecase: str,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
) -> dict[str, Any]:
    """Live metrics on the predictions whose labels had arrived by the interval end."""
    from airloop.monitoring.checks import check_performance as stage

    start, end = data_interval(data_interval_start, data_interval_end)
    return run_stage(stage, start, end, usecase)


@task
def decide_retraining(
    drift: dict[str, Any],
    performance: dict[str, Any],
    usecase: str,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
) -> dict[str, Any]:
    """Breaches through hysteresis, cooldown, de-duplication and the budget; every decision kept."""
    from airloop.monitoring.feedback import decide_retraining as stage
    from airloop.monitoring.records import DriftCheck, PerformanceCheck

    start, end = data_interval(data_interval_start, data_interval_end)
    return run_stage(
        stage,
        start,
        end,
        DriftCheck.from_dict(drift),
        PerformanceCheck.from_dict(performance),
        usecase,
    )


def request_retraining_task(asset: Asset) -> Any:
    """The task that publishes a decision's request as an event on ``asset``."""

    @task(task_id="request_retraining", outlets=[asset])
    def request_retraining(decision: dict[str, Any], outlet_events: Any = None) -> str:
        """Emit the Asset event that starts model_training; skipped (no event) otherwise."""
        from airloop.monitoring.records import Decision

        decided = Decision.from_dict(decision)
        if decided.request is None:
            raise AirflowSkipException(f"no retraining: {decided.action}")
        outlet_events[asset].extra = decided.request.to_dict()
        return decided.request.request_id

    return request_retraining


@task
def publish_report(
    drift: dict[str, Any],
    performance: dict[str, Any],
    decision: dict[str, Any],
    usecase: str,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
    dag_run: Any = None,
) -> dict[str, Any]:
    """The interval's report in MLflow and for Prometheus; its link in the run's note."""
    from airloop.monitoring.records import Decision, DriftCheck, PerformanceCheck
    from airloop.monitoring.report import publish_report as stage

    start, end = data_interval(data_interval_start, data_interval_end)
    published = run_stage(
        stage,
        start,
        end,
        DriftCheck.from_dict(drift),
        PerformanceCheck.from_dict(performance),
        Decision.from_dict(decision),
        run_lineage(),
        usecase,
    )
    set_run_note(dag_run, published["note"])
    return published


def build_monitoring(usecase: UseCase, ref: str, doc_md: str | None = None) -> DAG:
    """The DAG ``monitoring``: one run per data interval, one at a time."""
    start, end = schedule_bounds(usecase)
    request_retraining = request_retraining_task(retrain_request(usecase.name))

    @dag(
        dag_id=dag_id("monitoring", usecase, get_settings()),
        description=f"Drift and live performance of the served {usecase.name} model; retrain requests",
        doc_md=doc_md,
        schedule=CronDataIntervalTimetable(usecase.schedule, timezone="UTC"),
        start_date=start,
        end_date=end,
        # Hysteresis and cooldown read the decisions of earlier intervals: one at a time.
        max_active_runs=1,
        **dag_header(usecase, "monitoring"),
    )
    def monitoring() -> None:
        drift: Any = check_drift(usecase=ref)
        performance: Any = check_performance(usecase=ref)
        decision: Any = decide_retraining(drift, performance, usecase=ref)
        request_retraining(decision)
        publish_report(drift, performance, decision, usecase=ref)

    return monitoring()
