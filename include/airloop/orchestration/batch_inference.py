"""The batch inference DAG: per interval, the champion scores the interval's events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, dag, task

from airloop.orchestration.feature_pipeline import schedule_bounds
from airloop.orchestration.tasks import dag_header, run_stage
from airloop.settings import get_settings
from airloop.usecase import load_usecase


def build_batch_inference(doc_md: str | None = None) -> DAG:
    usecase = load_usecase(get_settings().usecase)
    name = usecase.name
    start, end = schedule_bounds(usecase)
    predictions = Asset(name=f"{name}_batch_predictions", uri=f"airloop://{name}/batch-predictions")

    @dag(
        dag_id="batch_inference",
        description=f"The {name} champion scores each interval's events in batch",
        doc_md=doc_md,
        schedule=CronDataIntervalTimetable(usecase.schedule, timezone="UTC"),
        start_date=start,
        end_date=end,
        max_active_runs=2,
        **dag_header(usecase, "serving"),
    )
    def batch_inference() -> None:
        @task(outlets=[predictions])
        def score_interval(
            data_interval_start: datetime | None = None, data_interval_end: datetime | None = None
        ) -> dict[str, Any]:
            return run_stage(
                "airloop.serving.batch:score_interval",
                start=data_interval_start,
                end=data_interval_end,
                usecase=name,
            )

        score_interval()

    return batch_inference()
