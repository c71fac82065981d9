"""Airflow's own metadata database losing every connection, over and over, while a
``model_training`` run works, on the production topology of this tier.

Every connection to the tier's Airflow database but the test's own is ended with
``pg_terminate_backend`` every :data:`TERMINATE_EVERY` seconds for :data:`FAULT_SECONDS`,
from the moment the run starts: the scheduler's, the api-server's (the execution API the
tasks report through), the dag-processor's, the triggerer's and the Celery result backend's.
Airflow's components must reconnect (SQLAlchemy's pre-ping, the scheduler's retries; a
component that dies is started again by ``airloop up``'s supervisor). Then the whole history:
the run succeeded; no task instance is left waiting or at work; the run made exactly one model
version, with its lineage, from one finished MLflow run of its training; the champion alias
points at a ready version; and ``airloop up`` is still up.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from airloop.core.polling import wait_until
from airloop.runtime.api import ACTIVE_TASK_STATES
from tests.production.conftest import FIRST_WINDOW
from tests.production.history import champion_ready, run_version
from tests.support import pg_admin_engine

pytestmark = pytest.mark.production
FAULT_SECONDS = 20.0  # the faults go on this long from the run's start
TERMINATE_EVERY = 0.5  # seconds between two rounds of pg_terminate_backend


def terminate_all(database: str) -> int:
    """End every session on the database but this one; how many there were."""
    from sqlalchemy import text

    engine = pg_admin_engine()
    try:
        with engine.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            ).scalar_one()
    finally:
        engine.dispose()
    return int(ended)


def test_airflows_database_losing_its_connections_mid_run_leaves_one_of_everything(
    stack: Any, client: Any, first_training: dict[str, Any], settings: Any, databases: Any
) -> None:
    database = databases["names"]["airflow"]
    run = client.trigger("model_training", FIRST_WINDOW, note="production tier: Airflow DB faults")
    run_id = run["dag_run_id"]
    rounds: list[int] = []
    done = threading.Event()

    def inject() -> None:
        ends = time.monotonic() + FAULT_SECONDS
        while time.monotonic() < ends and not done.is_set():
            rounds.append(terminate_all(database))
            time.sleep(TERMINATE_EVERY)

    began = time.monotonic()
    faults = threading.Thread(target=inject, name="pg_terminate_backend")
    faults.start()
    try:
        # The client itself goes through the api-server, which loses its connections too: its
        # answers may fail while the faults last, so the wait is for the run's end after them.
        faults.join()
        finished = wait_until(
            lambda: _finished(client, run_id), timeout=600, what="the run's end", interval=1
        )
    finally:
        done.set()
        faults.join()
    recovered = time.monotonic() - began
    assert sum(rounds) > 0, "no connection of Airflow's was ever ended: the fault did nothing"
    assert finished["state"] == "success", client.failed_tasks("model_training", run_id)

    tis = client.task_instances("model_training", run_id)
    left = [(ti["task_id"], ti["state"]) for ti in tis if ti["state"] in ACTIVE_TASK_STATES]
    assert not left, left
    assert {ti["state"] for ti in tis} <= {"success", "skipped"}, tis
    retried = sorted(ti["task_id"] for ti in tis if ti["try_number"] > 1)

    version, runs = run_version(settings, run_id)
    statuses = sorted(r.info.status for r in runs)
    assert statuses in (["FINISHED"], ["FINISHED", "KILLED"]), statuses
    assert champion_ready(settings)
    assert stack.poll() is None, "airloop up ended under the database faults"
    restarted = [
        line
        for log in sorted(settings.logs_dir.glob("*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if "starting it again" in line
    ]
    print(
        f"\n{len(rounds)} rounds of pg_terminate_backend on Airflow's database over"
        f" {FAULT_SECONDS:.0f} s ended {sum(rounds)} connections; the run succeeded"
        f" {recovered:.0f} s after the faults began, one version (v{version.version}),"
        f" tasks tried again: {retried or 'none'}; MLflow runs of the task: {statuses};"
        f" components started again by airloop up (whole tier so far): {len(restarted)}"
    )


def _finished(client: Any, run_id: str) -> dict[str, Any] | None:
    """The run once it has ended; None while it works or while the API cannot answer."""
    from airloop.core.http import HttpError

    try:
        run: dict[str, Any] = client.dag_run("model_training", run_id)
    except (HttpError, OSError):
        return None
    return run if run["state"] in ("success", "failed") else None
