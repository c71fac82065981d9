"""A task lost between its queueing and a worker, with the scheduler that queued it killed:
the production topology of this tier sends it again and the run completes once.

The scheduler marks a task instance ``queued`` in Airflow's database, then its Celery executor
sends the task to the broker; a scheduler killed between the two leaves a queued task that no
worker will ever receive. The test makes that state, deterministically: both Celery workers are
paused (``SIGSTOP``: they take nothing from the broker), a ``model_training`` run is triggered,
and once its first task is ``queued`` the scheduler is killed (``kill -9``) and the broker's
queue emptied, so the task's message is gone; then the workers go on (``SIGCONT``).
``airloop up`` starts the scheduler again; the new one finds the dead one's queued task
(``[scheduler] orphaned_tasks_check_interval``, 60 s as airloop sets it): one whose Celery id
was recorded is adopted and, once queued longer than ``[scheduler] task_queued_timeout``
(:data:`QUEUED_TIMEOUT`, shortened for this tier from Airflow's 600 s), revoked and sent again;
one without is reset and scheduled again. Then the whole history: the run succeeded, the lost
task included; no task instance is left waiting or at work; one model version with its lineage
from one finished MLflow run.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from airloop.core.polling import wait_until
from airloop.runtime.api import ACTIVE_TASK_STATES
from tests.conftest import descendants, running
from tests.production.conftest import FIRST_WINDOW, QUEUED_TIMEOUT
from tests.production.history import run_version
from tests.production.processes import scheduler_of, workers_of

pytestmark = pytest.mark.production
FIRST_TASK = "build_training_set"


def signal_groups(pids: dict[str, int], sig: signal.Signals) -> None:
    for pid in pids.values():
        os.killpg(pid, sig)


def test_a_task_lost_between_queued_and_its_worker_is_sent_again_once(
    stack: Any, client: Any, first_training: dict[str, Any], settings: Any, databases: Any
) -> None:
    import redis
    from sqlalchemy import create_engine, text

    workers = workers_of(stack.pid)
    assert set(workers) == {"worker-1", "worker-2"}, workers
    signal_groups(workers, signal.SIGSTOP)
    try:
        run = client.trigger("model_training", FIRST_WINDOW, note="production tier: a lost send")
        run_id = run["dag_run_id"]

        def first_task() -> dict[str, Any]:
            tis = client.task_instances("model_training", run_id)
            return next(ti for ti in tis if ti["task_id"] == FIRST_TASK)

        wait_until(
            lambda: first_task()["state"] == "queued",
            timeout=300,
            what=f"{FIRST_TASK} queued",
            interval=0.2,
        )
        # The executor sends the task just after queueing it: once it is in the broker (the
        # queue's lists, one per priority: "default", "default\x06\x163", ...), the
        # scheduler is killed and the message dropped, as if it had died before sending.
        broker = redis.Redis(host="127.0.0.1", port=6379, db=databases["broker_db"])

        def queued_messages() -> list[bytes]:
            return [k for k in broker.scan_iter(b"default*") if broker.type(k) == b"list"]

        keys = wait_until(
            lambda: queued_messages() or None, timeout=60, what="the task's message in the broker"
        )
        scheduler = scheduler_of(stack.pid)
        assert scheduler is not None, f"no airflow scheduler under airloop up ({stack.pid})"
        doomed = {scheduler} | descendants(scheduler)
        for pid in doomed:
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        lost = sum(broker.llen(k) for k in keys)
        broker.delete(*keys)
    finally:
        signal_groups(workers, signal.SIGCONT)
    assert lost >= 1, "the task's message was not in the broker's queue"

    finished = client.wait_for_run("model_training", run_id, timeout=600)
    recovered = time.monotonic() - killed_at
    assert finished["state"] == "success", client.failed_tasks("model_training", run_id)
    tis = client.task_instances("model_training", run_id)
    left = [(ti["task_id"], ti["state"]) for ti in tis if ti["state"] in ACTIVE_TASK_STATES]
    assert not left, left
    assert {ti["state"] for ti in tis} <= {"success", "skipped"}, tis

    engine = create_engine(settings.airflow_db_conn)
    with engine.connect() as conn:
        events = (
            conn.execute(
                text("SELECT event FROM log WHERE run_id = :run AND task_id = :task"),
                {"run": run_id, "task": FIRST_TASK},
            )
            .scalars()
            .all()
        )
    engine.dispose()
    # Which way it came back: adopted by the new scheduler (the dead one had recorded the
    # Celery task's id) and sent again once stuck in queued; or reset as an orphan and
    # scheduled again (it had not yet).
    how = (
        f"sent again after task_queued_timeout ({QUEUED_TIMEOUT} s)"
        if "stuck in queued reschedule" in events
        else "reset as the dead scheduler's orphan and scheduled again"
    )
    [lost_task] = [ti for ti in tis if ti["task_id"] == FIRST_TASK]
    assert lost_task["state"] == "success", lost_task

    version, runs = run_version(settings, run_id)
    statuses = sorted(r.info.status for r in runs)
    assert statuses == ["FINISHED"], statuses
    assert all(running(pid) for pid in workers.values()), "a paused worker did not go on"
    print(
        f"\n{FIRST_TASK} queued, the scheduler killed and its message ({lost} in the queue)"
        f" lost: {how}; the run succeeded {recovered:.0f} s after the kill, one version"
        f" (v{version.version})"
    )
