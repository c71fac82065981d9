"""A Celery worker killed (``kill -9``, with every process it started) while it runs
``train_model``, on the production topology of this tier.

Nobody is left to report the task's end: Airflow finds the task instance's heartbeat gone
(``[scheduler] task_instance_heartbeat_timeout``, shortened for this tier), fails that try and
runs the next one on a live worker; ``airloop up`` starts the killed worker again. Then the
whole history: the DAG run succeeded, the run made exactly one model version, with its
lineage, the killed try's MLflow run was ended by the next try (never left running), and the
champion alias points at a version of the model.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import descendants, running
from tests.production.conftest import FIRST_WINDOW
from tests.production.history import champion_ready, run_version
from tests.production.processes import worker_of
from tests.support import wait_for

pytestmark = pytest.mark.production
CATCH_SECONDS = 600  # for train_model to be seen running


def test_a_worker_killed_during_train_model_is_survived_with_one_version(
    stack: Any, client: Any, first_training: dict[str, Any], settings: Any
) -> None:
    run = client.trigger("model_training", FIRST_WINDOW, note="production tier: a worker killed")
    run_id = run["dag_run_id"]

    def train_model() -> dict[str, Any]:
        tis = client.task_instances("model_training", run_id)
        return next(ti for ti in tis if ti["task_id"] == "train_model")

    deadline = time.monotonic() + CATCH_SECONDS
    caught = train_model()
    while not (caught["state"] == "running" and caught["hostname"]):
        assert caught["state"] in (None, "scheduled", "queued", "running"), caught
        assert time.monotonic() < deadline, f"train_model never seen running: {caught}"
        time.sleep(0.1)
        caught = train_model()
    hostname = caught["hostname"].split(".")[0]
    doomed = worker_of(stack.pid, caught["pid"])
    for pid in doomed:
        os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: not any(running(p) for p in doomed), f"{hostname} still running", 30)

    finished = client.wait_for_run("model_training", run_id, timeout=600)
    recovered = time.monotonic() - killed_at
    assert finished["state"] == "success", client.failed_tasks("model_training", run_id)
    retried = train_model()
    assert retried["state"] == "success" and retried["try_number"] == 2, retried

    # Exactly one version for the run, with its lineage; the killed try's MLflow run ended.
    version, runs = run_version(settings, run_id)
    statuses = sorted(r.info.status for r in runs)
    assert statuses in (["FINISHED"], ["FINISHED", "KILLED"]), statuses
    assert all(
        r.data.tags.get("airloop.ended_by") == "the next try of its task"
        for r in runs
        if r.info.status == "KILLED"
    )
    assert champion_ready(settings)
    # airloop up started the killed worker again, under the same name.
    names = [Path(f"/proc/{p}/cmdline").read_bytes() for p in descendants(stack.pid) if running(p)]
    assert any(hostname.encode() in name for name in names), f"{hostname} was not started again"
    print(
        f"\n{hostname} killed with {len(doomed)} processes while running train_model: the run"
        f" succeeded {recovered:.0f} s later (try 2 on {retried['hostname'].split('.')[0]}),"
        f" one version (v{version.version}), MLflow runs of the task: {statuses}"
    )
