"""Task metadata (P7, C7): every task instance of airloop's DAGs, in the metadata database.

Registered by the airloop plugin (``plugins/airloop_plugin.py``), so it fires in the process
that runs the task, under any executor and under ``dag.test()``. Only DAGs tagged ``airloop``
are recorded. A task that wrote to MLflow gets those run ids on its record, and its DAG run's
note links to them, so each Airflow run and its MLflow runs point at each other (parallel
tasks' links are added one task at a time, under a lock held in the metadata database).
Recording is best effort: a failure is logged and never fails the task.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from datetime import UTC, datetime
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)
AIRLOOP_TAG = "airloop"
USECASE_TAG = "usecase:"
NOTE_HEADING = "**MLflow runs**"


def is_airloop_task(ti: Any) -> bool:
    """Whether the task belongs to one of airloop's DAGs (tagged ``airloop``)."""
    dag = getattr(getattr(ti, "task", None), "dag", None)
    return AIRLOOP_TAG in (getattr(dag, "tags", None) or ())


def _key(ti: Any) -> dict[str, Any]:
    map_index = getattr(ti, "map_index", -1)
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": -1 if map_index is None else int(map_index),
        "try_number": int(getattr(ti, "try_number", 0) or 0),
    }


def _executor(ti: Any) -> str:
    from airflow.configuration import conf

    return getattr(getattr(ti, "task", None), "executor", None) or conf.get("core", "executor")


def task_started(ti: Any) -> dict[str, Any]:
    """The record of a try that just started: who, where, with which conf and interval."""
    context = ti.get_template_context()
    run = context.get("dag_run")
    tags = getattr(ti.task.dag, "tags", None) or ()
    usecase = next((t.removeprefix(USECASE_TAG) for t in tags if t.startswith(USECASE_TAG)), None)
    run_type = getattr(run, "run_type", None)
    return {
        **_key(ti),
        "usecase": usecase,
        "state": "running",
        "start_date": getattr(ti, "start_date", None) or datetime.now(UTC),
        "hostname": getattr(ti, "hostname", None) or socket.getfqdn(),
        "executor": _executor(ti),
        "run_type": str(getattr(run_type, "value", run_type)) if run_type else None,
        "conf": {
            "conf": dict(getattr(run, "conf", None) or {}),
            "params": {k: context["params"][k] for k in context.get("params") or {}},
        },
        "data_interval_start": getattr(run, "data_interval_start", None),
        "data_interval_end": getattr(run, "data_interval_end", None),
    }


def task_finished(ti: Any, state: str, error: Any = None) -> dict[str, Any]:
    """What the end of a try adds: state, end, duration and the MLflow runs it wrote to."""
    from airloop.registry.tracking import touched_runs

    end = getattr(ti, "end_date", None) or datetime.now(UTC)
    start = getattr(ti, "start_date", None)
    return {
        "state": state,
        "end_date": end,
        "duration": (end - start).total_seconds() if start else None,
        "mlflow_run_ids": touched_runs(),
        "error": None if error is None else str(error)[:4000],
    }


def _store() -> Any:
    from airloop.metadata.store import MetadataStore
    from airloop.settings import get_settings

    return MetadataStore(get_settings())


def link_mlflow_runs(ti: Any, run_ids: list[str]) -> None:
    """Add the task's MLflow runs to its DAG run's note, below any note already there.

    Parallel tasks of one run (an experiment's trials) finish together, and a note is read,
    changed and written back through Airflow's API: two at once would each write the note
    they read plus their own links, and the last would erase the other's. So the change is
    made under the run's lock in the metadata database, and it adds every MLflow run the
    metadata store records for the DAG run (this task's included) that the note lacks: a link
    an earlier linker failed to write comes back too.
    """
    from airloop.runtime.api import ApiClient
    from airloop.settings import get_settings

    settings = get_settings()
    api = ApiClient(settings)
    store = _store()
    with store.lock(note_lock(ti.dag_id, ti.run_id)):
        recorded = [
            (row["task_id"], run_id)
            for row in store.task_runs(ti.dag_id, ti.run_id)
            for run_id in row["mlflow_run_ids"] or ()
        ]
        wanted = dict.fromkeys([*recorded, *((ti.task_id, run_id) for run_id in run_ids)])
        note = api.dag_run(ti.dag_id, ti.run_id).get("note") or ""
        lines = [
            f"- {task_id}: [{run_id}]({settings.mlflow_ui_url}/#/runs/{run_id})"
            for task_id, run_id in wanted
            if run_id not in note
        ]
        if not lines:
            return
        if NOTE_HEADING not in note:
            note = f"{note}\n\n{NOTE_HEADING}" if note else NOTE_HEADING
        api.set_note(ti.dag_id, ti.run_id, "\n".join([note, *lines]))


def note_lock(dag_id: str, run_id: str) -> str:
    """The lock of a DAG run's note: one name per run, short enough for any run id."""
    digest = hashlib.sha256(f"{dag_id}\0{run_id}".encode()).hexdigest()[:40]
    return f"dag-run-note:{digest}"


def _finish(ti: Any, state: str, error: Any = None) -> None:
    if not is_airloop_task(ti):
        return
    try:
        row = task_finished(ti, state, error)
        _store().update_task(_key(ti), **row)
    except Exception as exc:  # never fail the task for its metadata
        log.warning("airloop could not record the end of %s: %s", ti.task_id, exc)
        return
    if row["mlflow_run_ids"]:
        try:
            link_mlflow_runs(ti, row["mlflow_run_ids"])
        except Exception as exc:  # the link is in the metadata record either way
            log.warning("airloop could not link the MLflow runs in the run's note: %s", exc)


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    """A try started: record it (and start the list of MLflow runs it writes to)."""
    if not is_airloop_task(task_instance):
        return
    from airloop.registry.tracking import forget_runs

    forget_runs()
    try:
        _store().record_task(task_started(task_instance))
    except Exception as exc:  # never fail the task for its metadata
        log.warning("airloop could not record %s: %s", task_instance.task_id, exc)


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    """A try succeeded."""
    _finish(task_instance, "success")


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any = None) -> None:
    """A try failed (or will be retried)."""
    _finish(task_instance, str(getattr(task_instance, "state", None) or "failed"), error)


@hookimpl
def on_task_instance_skipped(previous_state: Any, task_instance: Any) -> None:
    """A try was skipped (a rejected approval, a short-circuit)."""
    _finish(task_instance, "skipped")
