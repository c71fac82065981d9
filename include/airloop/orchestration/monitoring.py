"""The monitoring DAG: drift and live performance per interval, and the feedback loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetAlias, CronDataIntervalTimetable, dag, task

from airloop.orchestration.assets import retrain_request, retrain_requests
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


def check_interval_task(alias: AssetAlias, asset: Asset) -> Any:
    """The task that checks an interval and, when the decision opens a request, emits it as an
    event on ``asset`` (through ``alias``: an interval that opens none emits nothing, with no
    skipped task to run for it)."""

    @task(task_id="check_interval", outlets=[alias])
    def check_interval(
        usecase: str,
        data_interval_start: datetime | None = None,
        data_interval_end: datetime | None = None,
        outlet_events: Any = None,
    ) -> dict[str, Any]:
        """Drift and live performance of the interval; the retraining decision; its request."""
        from airloop.monitoring.pipeline import check_interval as stage
        from airloop.monitoring.records import IntervalChecked

        start, end = data_interval(data_interval_start, data_interval_end)
        checked = run_stage(stage, start, end, usecase)
        request = IntervalChecked.from_dict(checked).decision.request
        if request is not None:
            outlet_events[alias].add(asset, extra=request.to_dict())
        return checked

    return check_interval


@task
def publish_report(
    checked: dict[str, Any],
    usecase: str,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
    dag_run: Any = None,
) -> dict[str, Any]:
    """The interval's report in MLflow and for Prometheus; its link in the run's note."""
    from airloop.monitoring.records import IntervalChecked
    from airloop.monitoring.report import publish_report as stage

    start, end = data_interval(data_interval_start, data_interval_end)
    interval = IntervalChecked.from_dict(checked)
    published = run_stage(
        stage,
        start,
        end,
        interval.drift,
        interval.performance,
        interval.decision,
        run_lineage(),
        usecase,
    )
    set_run_note(dag_run, published["note"])
    return published


def build_monitoring(usecase: UseCase, ref: str, doc_md: str | None = None) -> DAG:
    """The DAG ``monitoring``: one run per data interval, one at a time."""
    start, end = schedule_bounds(usecase)
    request = retrain_request(usecase.name)
    check_interval = check_interval_task(retrain_requests(usecase.name), request)

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
        checked: Any = check_interval(usecase=ref)
        publish_report(checked, usecase=ref)

    return monitoring()
