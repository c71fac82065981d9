from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.traffic import FIRST_FLIGHT


def day(d: int) -> datetime:
    return datetime(2013, 1, d, tzinfo=UTC)


@pytest.fixture(scope="session")
def landed(airflow_db, flights):
    """Real flights for 1-9 January 2013 in the session home's landing zone."""
    from airloop.data.replay import land_window
    from airloop.features.store import apply_definitions

    land_window(flights, airflow_db, date(2013, 1, 1), date(2013, 1, 10))
    apply_definitions(airflow_db, flights)
    return airflow_db


def load_dag(dag_id: str) -> Any:
    """A DAG parsed from its file in dags/, as the dag-processor would."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / f"{dag_id}.py"))
    assert not bag.import_errors
    return bag.dags[dag_id]


@pytest.fixture(scope="session")
def feature_dag(landed):
    return load_dag("feature_pipeline")


def run_interval(dag: Any, d: int) -> Any:
    """A real Airflow run of the interval [day d, day d+1) (dag.test: real tasks, real metadata DB).

    A manual run's data interval is the last complete one before its logical date, hence d + 1.
    """
    run = dag.test(logical_date=day(d + 1))
    assert run.data_interval_start == day(d), run.data_interval_start
    return run


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def store_snapshot(settings: Any, usecase: Any) -> dict[str, Any]:
    """Digest of every offline partition and every online row: equal snapshots, equal stores."""
    from airloop.features.offline import offline_root

    offline = {
        str(p.relative_to(offline_root(settings, usecase))): hashlib.sha256(
            p.read_bytes()
        ).hexdigest()
        for p in sorted(offline_root(settings, usecase).rglob("*.parquet"))
    }
    online: dict[str, list[tuple[Any, ...]]] = {}
    with sqlite3.connect(settings.online_store_path) as conn:
        for view in usecase.feature_views:
            table = f"{usecase.name}_{view.name}"
            online[view.name] = conn.execute(
                f'SELECT entity_key, feature_name, value, event_ts FROM "{table}" ORDER BY 1, 2'
            ).fetchall()
    return {"offline": offline, "online": online}


def landing_file(settings: Any, usecase: Any, source: str, d: int) -> Path:
    from airloop.data.landing import landing_path

    return landing_path(settings, usecase, source, day(d))


@pytest.fixture(scope="session")
def features(landed, flights):
    """The feature pipeline has filled Feast for 1-8 January (in-process where not yet run)."""
    from airloop.features.offline import partition_file
    from airloop.features.pipeline import run_interval

    for d in range(1, 9):
        if not partition_file(landed, flights, "_events", day(d)).exists():
            run_interval(day(d), day(d + 1), flights, landed)
    return landed


KNOWN_FLIGHT = FIRST_FLIGHT


def online_values_for(
    settings: Any, usecase: Any, entity: dict[str, str] | None = None
) -> dict[str, list[Any]]:
    """The online features of one flight's entities (by default UA, EWR, EWR-IAH, N14228)."""
    from airloop.features.store import feature_store

    store = feature_store(settings, usecase)
    return store.get_online_features(
        features=store.get_feature_service("flight_delay_v1"),
        entity_rows=[entity or KNOWN_FLIGHT],
        full_feature_names=True,
    ).to_dict()


def last_landed_temp(settings: Any, day_file: str, origin: str = "EWR") -> float:
    import pandas as pd

    raw = pd.read_csv(settings.landing_root("flights") / "weather" / day_file)
    return float(raw[raw["origin"] == origin].sort_values("time_hour").iloc[-1]["temp"])


CHAMPION_WINDOW = ("2013-01-01", "2013-01-09")


@pytest.fixture(scope="session")
def champion(features, flights):
    """A registered champion trained on 1-8 January (the gate's verdict aside: tests need one)."""
    from airloop.registry.models import describe_champion
    from airloop.training.pipeline import run_training

    if describe_champion(features, flights) is None:
        result = run_training(*CHAMPION_WINDOW, None, {"trigger": "test"}, flights, features)
        if not result.promotion.promoted:
            from airloop.registry.tracking import configure

            configure(features).set_registered_model_alias(
                "flight_delay", "champion", result.registered.version
            )
    found = describe_champion(features, flights)
    assert found is not None
    return found


def clear_and_rerun(dag: Any, run: Any) -> Any:
    """``airflow tasks clear <dag> -s D -e D --yes`` for the run's logical date, then that same
    run driven to its end as the scheduler would drive it: the same run id, every task a new try.

    The clear is Airflow's own command, called in this process; running the cleared run takes
    the loop of ``dag.test()`` (which itself would delete the run and make a new one), on the
    existing run instead: no scheduler, API server or executor needed.
    """
    from airflow.cli import cli_parser
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task  # dag.test()'s own runner of one task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    logical = run.logical_date.isoformat()
    args = cli_parser.get_parser().parse_args(
        ["tasks", "clear", dag.dag_id, "-s", logical, "-e", logical, "--yes"]
    )
    args.func(args)
    with create_session() as session:
        dr = session.scalar(
            select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run.run_id)
        )
        assert dr is not None and dr.state == DagRunState.QUEUED, "the clear queued the run"
        dr.dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
        dr.set_state(DagRunState.RUNNING)  # the scheduler starts a queued run
        session.commit()
        idle = 0
        while dr.state == DagRunState.RUNNING:
            session.expire_all()
            schedulable, _ = dr.update_state(session=session)
            for ti in schedulable:
                ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            scheduled = [
                ti
                for ti in dr.get_task_instances(session=session)
                if ti.state == TaskInstanceState.SCHEDULED
            ]
            for ti in scheduled:
                _run_task(ti=ti, task=dag.task_dict[ti.task_id])
            idle = 0 if scheduled else idle + 1
            assert idle < 3, f"nothing left to run, and the run is not done: {task_states(dr)}"
    return dr
