"""The task-metadata listener's own decisions: which tasks it records, what a try adds, and
parallel trials' links to their MLflow runs, none lost (the metadata store's lock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from airloop.metadata.store import LockTimeout, MetadataStore, _engine
from airloop.orchestration import listener
from airloop.settings import Settings


def task_instance(tags: set[str], task_id: str = "t") -> Any:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    run = SimpleNamespace(
        conf={"window_end": "2013-01-09"},
        run_type=SimpleNamespace(value="manual"),
        data_interval_start=start,
        data_interval_end=start + timedelta(days=1),
    )
    return SimpleNamespace(
        dag_id="some_dag",
        run_id="manual__1",
        task_id=task_id,
        map_index=-1,
        try_number=1,
        start_date=start,
        end_date=start + timedelta(seconds=3),
        hostname="worker-1",
        state="failed",
        task=SimpleNamespace(dag=SimpleNamespace(tags=tags), executor=None),
        get_template_context=lambda: {"dag_run": run, "params": {"window_end": None}},
    )


@pytest.fixture
def store(tmp_path, monkeypatch) -> MetadataStore:
    settings = Settings(home=tmp_path)
    monkeypatch.setattr("airloop.settings.get_settings", lambda: settings)
    return MetadataStore(settings)


def test_only_airloops_dags_are_recorded(store) -> None:
    listener.on_task_instance_running(None, task_instance({"etl"}))
    listener.on_task_instance_success(None, task_instance({"etl"}))
    assert store.task_runs() == []
    listener.on_task_instance_running(None, task_instance({"airloop", "usecase:flights"}))
    assert [r["state"] for r in store.task_runs()] == ["running"]


def test_a_failed_try_keeps_its_error_duration_and_usecase(store) -> None:
    ti = task_instance({"airloop", "usecase:flights"})
    listener.on_task_instance_running(None, ti)
    listener.on_task_instance_failed(None, ti, error=ValueError("the window is empty"))
    (row,) = store.task_runs("some_dag", "manual__1")
    assert row["state"] == "failed" and row["error"] == "the window is empty"
    assert row["duration"] == 3.0 and row["usecase"] == "flights" and row["hostname"] == "worker-1"
    assert row["conf"] == {"conf": {"window_end": "2013-01-09"}, "params": {"window_end": None}}
    assert row["run_type"] == "manual" and row["executor"]


def test_a_recording_failure_never_fails_the_task(tmp_path, monkeypatch, caplog) -> None:
    broken = Settings(
        home=tmp_path, metadata_db_url="postgresql+psycopg2://nobody@127.0.0.1:1/none"
    )
    monkeypatch.setattr("airloop.settings.get_settings", lambda: broken)
    ti = task_instance({"airloop"})
    listener.on_task_instance_running(None, ti)  # no exception
    listener.on_task_instance_success(None, ti)
    assert "airloop could not record" in caplog.text


# Parallel trials' links --------------------------------------------------------------------
TRIALS = 6
USER_NOTE = "Started by hand: try the deeper trees."


class RacingApi:
    """Airflow's API as far as one DAG run's note goes, where each reader of the note waits
    until every linker has read it (or 0.2 s): the interleaving that lost links, forced. With
    a read-modify-write under a lock, a reader is alone and just waits out the 0.2 s."""

    def __init__(self, linkers: int) -> None:
        self.note = USER_NOTE
        self.linkers, self.reads, self.writes = linkers, 0, 0
        self.changed = threading.Condition()

    def __call__(self, settings: Settings) -> RacingApi:  # stands in for ApiClient(settings)
        return self

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        with self.changed:
            note = self.note
            self.reads += 1
            self.changed.notify_all()
            self.changed.wait_for(lambda: self.reads >= self.linkers, timeout=0.2)
        return {"dag_id": dag_id, "dag_run_id": run_id, "note": note}

    def set_note(self, dag_id: str, run_id: str, note: str) -> None:
        with self.changed:
            self.note = note
            self.writes += 1


def run_trials(store: MetadataStore, monkeypatch, api: RacingApi) -> dict[str, list[str]]:
    """``TRIALS`` trial tasks of one DAG run finishing at once, each in its own thread, each
    with two MLflow runs, through the listener's real hooks; the MLflow runs by trial."""
    monkeypatch.setattr("airloop.runtime.api.ApiClient", api)
    mine = threading.local()
    monkeypatch.setattr("airloop.registry.tracking.touched_runs", lambda: list(mine.runs))
    runs = {f"trial_{i}": [f"{i:02d}{'a' * 30}", f"{i:02d}{'b' * 30}"] for i in range(TRIALS)}
    start = threading.Barrier(TRIALS)

    def trial(task_id: str) -> None:
        ti = task_instance({"airloop", "usecase:flights"}, task_id)
        listener.on_task_instance_running(None, ti)
        mine.runs = runs[task_id]
        start.wait()
        listener.on_task_instance_success(None, ti)

    threads = [threading.Thread(target=trial, args=(task_id,)) for task_id in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return runs


def test_parallel_trials_lose_none_of_their_links(store, monkeypatch, caplog) -> None:
    api = RacingApi(TRIALS)
    runs = run_trials(store, monkeypatch, api)
    assert "could not" not in caplog.text
    head, links = api.note.split(f"\n\n{listener.NOTE_HEADING}\n")
    assert head == USER_NOTE  # the user's own note stays on top
    found = {
        (line.split(":")[0].removeprefix("- "), line.split("[")[1].split("]")[0])
        for line in links.splitlines()
    }
    assert found == {(task_id, run_id) for task_id, ids in runs.items() for run_id in ids}
    assert len(links.splitlines()) == 2 * TRIALS  # each once
    recorded = {r["task_id"]: r["mlflow_run_ids"] for r in store.task_runs("some_dag")}
    assert recorded == runs


def test_a_link_a_linker_failed_to_write_comes_back_with_the_next(store, monkeypatch) -> None:
    api = RacingApi(1)
    monkeypatch.setattr("airloop.runtime.api.ApiClient", api)
    first = task_instance({"airloop"}, "trial_0")
    listener.on_task_instance_running(None, first)
    store.update_task(listener._key(first), mlflow_run_ids=["lost" + "0" * 28])  # never linked
    second = task_instance({"airloop"}, "trial_1")
    listener.link_mlflow_runs(second, ["kept" + "1" * 28])
    assert api.writes == 1
    assert "- trial_0: [lost" in api.note and "- trial_1: [kept" in api.note
    listener.link_mlflow_runs(second, ["kept" + "1" * 28])
    assert api.writes == 1  # nothing new: the note is not written again


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, tmp_path) -> Iterator[MetadataStore]:
    """The metadata store on both of its databases: SQLite (embedded) and PostgreSQL
    (production: a database of its own on the machine's server, dropped afterwards)."""
    if request.param == "sqlite":
        yield MetadataStore(Settings(home=tmp_path))
        return
    from tests.support import throwaway_databases

    with throwaway_databases("locks", ["metadata"]) as pg:
        url = pg.url("metadata")
        try:
            yield MetadataStore(Settings(home=tmp_path, metadata_db_url=url))
        finally:
            _engine(url).dispose()


def test_the_lock_lets_one_holder_at_a_time_change_a_value(any_store: MetadataStore) -> None:
    """Read, wait for the others to read too (or 0.2 s), write back plus one: without the lock
    every holder would write 1; under it, the count is the number of holders."""
    api = RacingApi(TRIALS)  # its note is the shared value
    api.note = "0"

    def add_one() -> None:
        with any_store.lock("counter"):
            value = int(api.dag_run("d", "r")["note"])
            api.set_note("d", "r", str(value + 1))

    threads = [threading.Thread(target=add_one) for _ in range(TRIALS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert api.note == str(TRIALS)


def test_a_dead_holders_lock_is_taken_once_its_lease_ends(any_store: MetadataStore) -> None:
    dead = any_store.lock("note", lease=1.0)
    dead.__enter__()  # and never leaves: its process was killed
    began = time.monotonic()
    with (
        pytest.raises(LockTimeout, match=r"the lock 'note' stayed taken for 0 s"),
        any_store.lock("note", wait=0.2),
    ):
        pass
    with any_store.lock("note", wait=10.0):
        waited = time.monotonic() - began
    assert 0.2 < waited < 10.0
    with any_store.lock("note", wait=0.0):  # released: taken at once
        pass
