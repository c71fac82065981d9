"""Airflow's scheduler killed (``kill -9``, with every process it started) while a task instance
of a ``model_training`` run is running, on the production topology of this tier.

The test does not start the scheduler again: the tier runs under ``airloop up``, whose
supervisor (``airloop.runtime.services.Services.watch``, a check every 2 s) finds it gone and
starts it again, as it would in a deployment. On this topology a task runs in a Celery worker,
outside the scheduler's processes: the running task keeps its heartbeat (to the api-server) and
ends by itself, and the new scheduler, reading the run's state from the metadata database,
schedules the rest. Then the whole history: the DAG run succeeded; none of its task instances
is left waiting or at work (``queued``, ``running``, ...: nothing stays ``running`` past the
tier's 30 s heartbeat timeout); each ran once, so the scheduler's death cost no retry; the run
made exactly one model version, with its lineage, from one finished MLflow run of its training;
the champion alias points at a ready version.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from airloop.core.polling import wait_until
from airloop.runtime.api import ACTIVE_TASK_STATES
from tests.conftest import descendants, running
from tests.production.conftest import FIRST_WINDOW
from tests.production.history import champion_ready, run_version
from tests.production.processes import scheduler_of

pytestmark = pytest.mark.production
CATCH_SECONDS = 600  # for train_model to be seen running
RESTART_SECONDS = 60  # for the supervisor to start the scheduler again (it checks every 2 s)


def test_a_scheduler_killed_mid_run_is_restarted_and_the_run_completes_once(
    stack: Any, client: Any, first_training: dict[str, Any], settings: Any
) -> None:
    run = client.trigger("model_training", FIRST_WINDOW, note="production tier: scheduler killed")
    run_id = run["dag_run_id"]

    def train_model() -> dict[str, Any]:
        tis = client.task_instances("model_training", run_id)
        return next(ti for ti in tis if ti["task_id"] == "train_model")

    def caught_running() -> dict[str, Any] | None:
        ti = train_model()
        assert ti["state"] in (None, "scheduled", "queued", "running"), ti
        return ti if ti["state"] == "running" and ti["hostname"] else None

    caught = wait_until(
        caught_running, timeout=CATCH_SECONDS, what="train_model running", interval=0.1
    )
    scheduler = scheduler_of(stack.pid)
    assert scheduler is not None, f"no airflow scheduler under airloop up ({stack.pid})"
    doomed = {scheduler} | descendants(scheduler)
    for pid in doomed:
        os.kill(pid, signal.SIGKILL)
    killed_at, killed_wall = time.monotonic(), datetime.now(UTC)
    wait_until(
        lambda: not any(running(p) for p in doomed),
        timeout=30,
        what=f"the killed scheduler's processes {sorted(doomed)} gone",
        interval=0.1,
    )
    # airloop up's supervisor starts it again: a new scheduler process, and the line naming it.
    restarted = wait_until(
        lambda: (pid := scheduler_of(stack.pid)) not in (None, scheduler) and pid,
        timeout=RESTART_SECONDS,
        what="airloop up starting the scheduler again",
        interval=0.2,
    )
    restarted_after = time.monotonic() - killed_at
    note = "airloop: Airflow's scheduler exited with code -9; starting it again"
    assert note in (settings.logs_dir / "scheduler.log").read_text(errors="replace")

    finished = client.wait_for_run("model_training", run_id, timeout=600)
    recovered = time.monotonic() - killed_at
    assert finished["state"] == "success", client.failed_tasks("model_training", run_id)

    # Nothing left waiting or at work; every task once (the kill cost no retry); the task
    # caught running was running when the scheduler died, and ended by itself.
    tis = client.task_instances("model_training", run_id)
    left = [(ti["task_id"], ti["state"]) for ti in tis if ti["state"] in ACTIVE_TASK_STATES]
    assert not left, left
    assert {ti["state"] for ti in tis} <= {"success", "skipped"}, tis
    assert [ti["task_id"] for ti in tis if ti["try_number"] != 1] == [], tis
    trained = train_model()
    assert trained["state"] == "success", trained
    ended = datetime.fromisoformat(trained["end_date"])
    assert ended > killed_wall, f"train_model ended at {ended}, before the kill ({killed_wall})"

    # What one run writes: one version with its lineage, from one finished training run.
    version, runs = run_version(settings, run_id)
    statuses = sorted(r.info.status for r in runs)
    assert statuses == ["FINISHED"], statuses
    assert champion_ready(settings)

    def took(run: dict[str, Any]) -> float:
        spent = datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
        return spent.total_seconds()

    print(
        f"\nthe scheduler killed with {len(doomed)} process(es) while train_model ran on"
        f" {caught['hostname'].split('.')[0]}: started again by airloop up after"
        f" {restarted_after:.1f} s (pid {restarted}); train_model ended"
        f" {(ended - killed_wall).total_seconds():.1f} s after the kill, on its first try;"
        f" the run succeeded {recovered:.0f} s after the kill, one version (v{version.version});"
        f" the run took {took(finished):.0f} s, the tier's first training {took(first_training):.0f} s"
    )
