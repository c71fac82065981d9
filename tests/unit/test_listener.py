"""The task-metadata listener's own decisions: which tasks it records, and what a try adds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from airloop.metadata.store import MetadataStore
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
