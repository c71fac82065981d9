"""The batch inference DAG: per interval, the champion scores the interval's events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, dag, task

from airloop.orchestration.assets import batch_predictions
from airloop.orchestration.tasks import (
    dag_header,
    data_interval,
    run_stage,
    schedule_bounds,
)
from airloop.settings import get_settings
from airloop.usecase import UseCase, dag_id


@task
def score_interval(
    usecase: str,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
) -> dict[str, Any]:
    """Point-in-time features of the interval's events, scored by the champion; overwrites."""
    from airloop.serving.batch import score_interval as stage

    start, end = data_interval(data_interval_start, data_interval_end)
    return run_stage(stage, start, end, usecase)


def build_batch_inference(usecase: UseCase, ref: str, doc_md: str | None = None) -> DAG:
    """The DAG ``batch_inference``: each success updates the batch-predictions Asset."""
    start, end = schedule_bounds(usecase)
    predictions = batch_predictions(usecase.name)
    settings = get_settings()

    @dag(
        dag_id=dag_id("batch_inference", usecase, get_settings()),
        description=f"The {usecase.name} champion scores each interval's events in batch",
        doc_md=doc_md,
        schedule=CronDataIntervalTimetable(usecase.schedule, timezone="UTC"),
        start_date=start,
        end_date=end,
        max_active_runs=2,
        **dag_header(usecase, "serving"),
    )
    def batch_inference() -> None:
        if settings.training_image:  # the same stage in the training image (C5)
            from airloop.orchestration.containers import StageInContainer

            StageInContainer(
                task_id="score_interval",
                settings=settings,
                outlets=[predictions],
                stage=[
                    "score-interval",
                    "--start",
                    "{{ data_interval_start.isoformat() }}",
                    "--end",
                    "{{ data_interval_end.isoformat() }}",
                    "--usecase",
                    ref,
                ],
            )
        else:
            score_interval.override(outlets=[predictions])(usecase=ref)

    return batch_inference()
