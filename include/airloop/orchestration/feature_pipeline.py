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


# The pool's slots are the writers the stores allow at once (Settings.online_writers): one with
# SQLite and the registry file, more with Redis and the SQL registry.
@task(pool=ONLINE_STORE_POOL, map_index_template="{{ feature_views }}")
def materialize_online(
    views: list[str],
    usecase: str,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
) -> dict[str, Any]:
    """Load the interval's window of these feature views into the Feast online store."""
    from airflow.sdk import get_current_context

    from airloop.features.pipeline import materialize_online as stage

    get_current_context()["feature_views"] = ", ".join(views)  # type: ignore[typeddict-unknown-key]
    start, end = data_interval(data_interval_start, data_interval_end)
    return run_stage(stage, start, end, usecase, views=views)


def writer_groups(views: list[str], writers: int) -> list[list[str]]:
    """The feature views dealt in turn to at most ``writers`` groups, one task each.

    Dealt in the use case's order, not balanced by size: the views' costs are known only once
    they run, and a view's cost follows its rows, which the order does not tell.
    """
    count = max(1, min(writers, len(views)))
    return [views[i::count] for i in range(count)]


def build_feature_pipeline(usecase: UseCase, ref: str, doc_md: str | None = None) -> DAG:
    """The DAG ``feature_pipeline``: one run per data interval, one interval at a time."""
    start, end = schedule_bounds(usecase)
    settings = get_settings()

    @dag(
        dag_id=dag_id("feature_pipeline", usecase, settings),
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
        groups = writer_groups([v.name for v in usecase.feature_views], settings.online_writers)
        published = build_offline_features(validated, usecase=ref)
        published >> materialize_online.partial(usecase=ref).expand(views=groups)

    return feature_pipeline()
