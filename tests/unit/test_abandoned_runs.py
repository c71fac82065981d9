"""A try killed with its process leaves its MLflow run marked running; the next try ends it."""

from __future__ import annotations

from pathlib import Path

from airloop.registry.tracking import configure, end_abandoned_runs, experiment_id
from airloop.settings import Settings


def test_the_next_try_ends_only_its_own_task_s_runs_left_running(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    client = configure(settings)
    exp = experiment_id(settings, "flights/training")
    task = {"airloop.run_id": "manual__1", "airloop.stage": "train"}
    killed = client.create_run(exp, tags=task).info.run_id  # its process died: still RUNNING
    other = client.create_run(exp, tags={**task, "airloop.run_id": "manual__2"}).info.run_id
    done = client.create_run(exp, tags=task).info.run_id
    client.set_terminated(done)

    assert end_abandoned_runs(settings, "flights/training", task) == [killed]
    run = client.get_run(killed)
    assert run.info.status == "KILLED"
    assert run.data.tags["airloop.ended_by"] == "the next try of its task"
    assert client.get_run(other).info.status == "RUNNING"  # another DAG run's: not touched
    assert client.get_run(done).info.status == "FINISHED"
    assert end_abandoned_runs(settings, "flights/training", task) == []
    assert end_abandoned_runs(settings, "no/such-experiment", task) == []
