"""MLflow's stores, built before the executor forks: tasks reuse them, never a connection."""

from __future__ import annotations

import os
from pathlib import Path

from airloop.registry.tracking import experiment_id, open_stores
from airloop.settings import Settings


def test_nothing_is_built_before_the_tracking_database_exists(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "h")
    assert open_stores(settings) is False
    assert not (settings.mlflow_dir / "mlflow.db").exists()


def test_a_forked_process_uses_the_stores_with_connections_of_its_own(tmp_path: Path) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    settings = Settings(home=tmp_path / "h")
    created = experiment_id(settings, "stores")  # the database, as `airloop setup` leaves it
    assert open_stores(settings) is True
    engine = SqlAlchemyStore._engine_map[settings.tracking_uri]
    assert engine.pool.checkedout() == 0 and engine.pool.checkedin() == 0
    child = os.fork()
    if child == 0:  # a task: the same experiment through the store built before the fork
        os._exit(0 if experiment_id(settings, "stores") == created else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert experiment_id(settings, "stores") == created  # and the parent goes on with its own
