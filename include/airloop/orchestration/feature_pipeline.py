"""The feature pipeline DAG (B), generated from the active use case."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, dag, task

from airloop.orchestration.tasks import (
    dag_header,
    data_interval,
    run_lineage,
    run_stage,
    schedule_bounds,
)
from airloop.runtime.airflow_cli import ONLINE_STORE_POOL
from airloop.settings import get_settings
from airloop.usecase import UseCase, dag_id


@task
def validate_partition(
    usecase: str,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
) -> dict[str, Any]:
    """Snapshot the landed files with their digests; the Great Expectations gate on them. A
    failure quarantines the partition and fails the run."""
    from airloop.features.pipeline import validate_partition as stage

    start, end = data_interval(data_interval_start, data_interval_end)
    return run_stage(stage, start, end, usecase)


@task
def build_offline_features(
    validated: dict[str, Any],
    usecase: str,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
) -> dict[str, Any]:
    """Clean, transform, compute point-in-time features; publish this interval's partitions."""
    from airloop.features.pipeline import Validated
    from airloop.features.pipeline import build_offline_features as stage

    start, end = data_interval(data_interval_start, data_interval_end)
    return run_stage(stage, start, end, Validated.from_dict(validated), usecase, run=run_lineage())


# One writer at a time: the online store and the registry's watermark are shared.
@task(pool=ONLINE_STORE_POOL)
def materialize_online(
    usecase: str,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
) -> dict[str, Any]:
    """Load the interval's window into the Feast online store."""
    from airloop.features.pipeline import materialize_online as stage

    start, end = data_interval(data_interval_start, data_interval_end)
    return run_stage(stage, start, end, usecase)


def build_feature_pipeline(usecase: UseCase, ref: str, doc_md: str | None = None) -> DAG:
    """The DAG ``feature_pipeline``: one run per data interval, one interval at a time."""
    start, end = schedule_bounds(usecase)

    @dag(
        dag_id=dag_id("feature_pipeline", usecase, get_settings()),
        description=f"Raw {usecase.name} data per interval → validation gate → features → Feast",
        doc_md=doc_md,
        # Data intervals, not trigger times: each run owns [start, end) of the source's data.
        schedule=CronDataIntervalTimetable(usecase.schedule, timezone="UTC"),
        start_date=start,
        end_date=end,
        # Rolling features read the labels earlier intervals published: one interval at a time.
        max_active_runs=1,
        **dag_header(usecase, "features"),
    )
    def feature_pipeline() -> None:
        validated: Any = validate_partition(usecase=ref)
        build_offline_features(validated, usecase=ref) >> materialize_online(usecase=ref)

    return feature_pipeline()
