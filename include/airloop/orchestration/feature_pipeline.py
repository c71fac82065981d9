"""The feature pipeline DAG (B), generated from the active use case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, dag, task

from airloop.orchestration.tasks import dag_header, run_stage
from airloop.settings import get_settings
from airloop.usecase import UseCase, load_usecase

STAGES = "airloop.features.pipeline"


def schedule_bounds(usecase: UseCase) -> tuple[datetime, datetime | None]:
    """When the DAG's intervals start and, for a replayed data set, where its data ends.

    A replay has no data after its window, so the DAG ends there and an unpaused DAG does not
    schedule runs for days that will never land. ``AIRLOOP_REPLAY_END`` moves the end.
    """
    if usecase.replay is None:
        return datetime(2024, 1, 1, tzinfo=UTC), None
    start = datetime.combine(usecase.replay.start, datetime.min.time(), UTC)
    end_day = get_settings().replay_end or usecase.replay.end
    return start, datetime.combine(end_day, datetime.min.time(), UTC) - timedelta(seconds=1)


def build_feature_pipeline(doc_md: str | None = None) -> DAG:
    usecase = load_usecase(get_settings().usecase)
    name = usecase.name
    start, end = schedule_bounds(usecase)

    @dag(
        dag_id="feature_pipeline",
        description=f"Raw {name} data per interval → validation gate → features → Feast",
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
        @task
        def extract_partition(
            data_interval_start: datetime | None = None, data_interval_end: datetime | None = None
        ) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:extract_partition",
                start=data_interval_start,
                end=data_interval_end,
                usecase=name,
            )

        @task
        def validate_partition(
            extracted: dict[str, Any],
            data_interval_start: datetime | None = None,
            data_interval_end: datetime | None = None,
        ) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:validate_partition",
                start=data_interval_start,
                end=data_interval_end,
                manifest=extracted["manifest"],
                usecase=name,
            )

        @task
        def build_offline_features(
            extracted: dict[str, Any],
            data_interval_start: datetime | None = None,
            data_interval_end: datetime | None = None,
        ) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:build_offline_features",
                start=data_interval_start,
                end=data_interval_end,
                manifest=extracted["manifest"],
                usecase=name,
            )

        # One writer at a time: the online store and the registry's watermark are shared.
        @task(pool="airloop_online_store")
        def materialize_online(
            data_interval_start: datetime | None = None, data_interval_end: datetime | None = None
        ) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:materialize_online",
                start=data_interval_start,
                end=data_interval_end,
                usecase=name,
            )

        extracted: Any = extract_partition()
        validated = validate_partition(extracted)
        built = build_offline_features(extracted)
        validated >> built >> materialize_online()

    return feature_pipeline()
