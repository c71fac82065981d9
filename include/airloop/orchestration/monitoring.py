"""The monitoring DAG: drift and live performance per interval, and the feedback loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from airloop.orchestration.assets import retrain_request
from airloop.orchestration.feature_pipeline import schedule_bounds
from airloop.orchestration.tasks import dag_header, run_lineage, run_stage
from airloop.settings import get_settings
from airloop.usecase import load_usecase

STAGES = "airloop.monitoring.monitor"


def build_monitoring(doc_md: str | None = None) -> DAG:
    usecase = load_usecase(get_settings().usecase)
    name = usecase.name
    start, end = schedule_bounds(usecase)
    request_asset = retrain_request(name)

    @dag(
        dag_id="monitoring",
        description=f"Drift and live performance of the served {name} model; retrain requests",
        doc_md=doc_md,
        schedule=CronDataIntervalTimetable(usecase.schedule, timezone="UTC"),
        start_date=start,
        end_date=end,
        # Hysteresis and cooldown read the decisions of earlier intervals: one at a time.
        max_active_runs=1,
        **dag_header(usecase, "monitoring"),
    )
    def monitoring() -> None:
        @task
        def check_drift(
            data_interval_start: datetime | None = None, data_interval_end: datetime | None = None
        ) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:check_drift",
                start=data_interval_start,
                end=data_interval_end,
                usecase=name,
            )

        @task
        def check_performance(
            data_interval_start: datetime | None = None, data_interval_end: datetime | None = None
        ) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:check_performance",
                start=data_interval_start,
                end=data_interval_end,
                usecase=name,
            )

        @task
        def decide_retraining(
            drift: dict[str, Any],
            performance: dict[str, Any],
            data_interval_start: datetime | None = None,
            data_interval_end: datetime | None = None,
        ) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:decide_retraining",
                start=data_interval_start,
                end=data_interval_end,
                drift=drift,
                performance=performance,
                usecase=name,
            )

        @task(outlets=[request_asset])
        def request_retraining(decision: dict[str, Any], outlet_events: Any = None) -> str:
            """Emit the Asset event that starts model_training; skipped (no event) otherwise."""
            request = decision.get("request")
            if not request:
                raise AirflowSkipException(f"no retraining: {decision['action']}")
            outlet_events[request_asset].extra = request
            return str(request["request_id"])

        @task
        def publish_report(
            drift: dict[str, Any],
            performance: dict[str, Any],
            decision: dict[str, Any],
            data_interval_start: datetime | None = None,
            data_interval_end: datetime | None = None,
            dag_run: Any = None,
        ) -> dict[str, Any]:
            published = run_stage(
                "airloop.monitoring.report:publish_report",
                start=data_interval_start,
                end=data_interval_end,
                drift=drift,
                performance=performance,
                decision=decision,
                lineage=run_lineage(),
                usecase=name,
            )
            link_report(dag_run, published, decision)
            return published

        drift: Any = check_drift()
        performance: Any = check_performance()
        decision: Any = decide_retraining(drift, performance)
        request_retraining(decision)
        publish_report(drift, performance, decision)

    return monitoring()


def link_report(dag_run: Any, published: dict[str, Any], decision: dict[str, Any]) -> None:
    """Put the report's MLflow link and the decision in the run's note (shown in the Airflow UI).

    Best effort: it needs the API's credentials, which the embedded profile has; elsewhere the
    link stays in the task's return value and log.
    """
    import logging

    from airloop.orchestration.runtime import ApiClient

    settings = get_settings()
    url = (
        f"http://127.0.0.1:{settings.mlflow_ui_port}/#/experiments/"
        f"{published['mlflow_experiment_id']}/runs/{published['mlflow_run_id']}"
    )
    note = (
        f"**{decision['action']}**"
        + (f": {decision['detail']}" if decision.get("detail") else "")
        + f"\n\n[Monitoring report in MLflow]({url}) · `{published['report_uri']}`"
    )
    logging.getLogger(__name__).info("monitoring report: %s", url)
    try:
        ApiClient(settings).set_note(dag_run.dag_id, dag_run.run_id, note)
    except Exception as exc:  # the note is a convenience; the report is published either way
        logging.getLogger(__name__).warning("could not set the run note: %s", exc)
