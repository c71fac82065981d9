"""Why a run failed, in words a person can act on: each failed task's own error (read from its
log through Airflow's API), where its full log is on disk, and for a partition the validation
gate refused, where the quarantine report is and what to do next.

The Airflow UI may be gone by the time someone reads this (``airloop demo`` stops its stack), so
everything needed is in the message itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from airloop.core.periods import Cadence, to_utc
from airloop.quality.gate import quarantine_folder
from airloop.runtime.airflow_cli import AirflowError
from airloop.runtime.api import ApiClient
from airloop.settings import Settings

LOG_TAIL = 5  # events of a log shown when it holds no exception
GATE_ERROR = "ValidationFailed"  # the exception the validation gate raises (quality.gate)


@dataclass(frozen=True)
class TaskFailure:
    """One failed task instance: its error as raised (``None`` when its log could not be read
    or holds none), the exception types in its chain, the last events of its log, and where
    the log file is."""

    task_id: str
    try_number: int
    error: str | None = None
    types: tuple[str, ...] = ()
    tail: tuple[str, ...] = ()
    log_file: str | None = None

    @property
    def gate(self) -> bool:
        """Whether the validation gate refused the partition."""
        return GATE_ERROR in self.types


def failure_from_log(task_id: str, try_number: int, log: dict[str, Any]) -> TaskFailure:
    """What a task's log (the API's JSON answer) says about its failure.

    The event logged when the task raised carries ``error_detail``: the exception, then its
    causes, each with ``exc_type`` and ``exc_value``. Airflow's ``AirflowFailException`` wraps
    airloop's own error with the same message, so repeated messages are said once, under the
    innermost type (``ValidationFailed``, not the wrapper).
    """
    events = [e for e in log.get("content") or [] if isinstance(e, dict)]
    failed = [e for e in events if e.get("error_detail")]
    error: str | None = None
    types: tuple[str, ...] = ()
    if failed:
        chain = [d for d in failed[-1]["error_detail"] if isinstance(d, dict)]
        types = tuple(str(d.get("exc_type", "")) for d in chain)
        said: list[tuple[str, str]] = []
        for detail in chain:
            kind, value = str(detail.get("exc_type", "")), str(detail.get("exc_value", ""))
            if said and said[-1][1] == value:
                said[-1] = (kind, value)
            else:
                said.append((kind, value))
        error = "\ncaused by ".join(f"{kind}: {value}" for kind, value in said)
    return TaskFailure(
        task_id=task_id,
        try_number=try_number,
        error=error,
        types=types,
        tail=tuple(_tail(events)),
        log_file=_log_file(events),
    )


def _tail(events: list[dict[str, Any]]) -> list[str]:
    """The last events of the log that say something (not Airflow's ``::group::`` markers)."""
    said = [
        f"{e.get('level', '')} {e['event']}".strip()
        for e in events
        if isinstance(e.get("event"), str) and not e["event"].startswith("::")
    ]
    return said[-LOG_TAIL:]


def _log_file(events: list[dict[str, Any]]) -> str | None:
    """The file the log was read from: the API names it in its first group of events."""
    for event in events[:5]:
        text = event.get("event")
        if isinstance(text, str) and text.startswith("/") and text.endswith(".log"):
            return text
    return None


def failed_tasks(client: ApiClient, dag_id: str, run_id: str) -> list[TaskFailure]:
    """Each failed task of a run, with what its log says (its name alone when the log cannot
    be read: the failure is still reported)."""
    failures = []
    for ti in client.failed_tasks(dag_id, run_id):
        task_id, try_number = ti["task_id"], int(ti.get("try_number") or 1)
        try:
            log = client.task_log(dag_id, run_id, task_id, try_number)
        except (AirflowError, OSError):
            failures.append(TaskFailure(task_id, try_number))
            continue
        failures.append(failure_from_log(task_id, try_number, log))
    return failures


def quarantine_report(settings: Settings, usecase: str, start: datetime) -> Path | None:
    """The gate's report on the partition of the interval at ``start``, when it quarantined it
    (``quarantine/<use case>/<partition>/report.json``, as ``quality.gate`` writes it)."""
    report = quarantine_folder(settings, usecase, start) / "report.json"
    return report if report.is_file() else None


def describe_failed_run(
    dag_id: str,
    run: dict[str, Any],
    failures: list[TaskFailure],
    quarantine: Path | None = None,
    rerun: str | None = None,
    land: str | None = None,
) -> str:
    """A failed run for a person: which run and interval, each failed task with its error (or
    its log's last lines), where its log is, the quarantine report when the gate refused the
    partition, and what to do next. ``rerun`` is the command that runs the interval again,
    ``land`` the one that lands its data again (the gate moved it to the quarantine)."""
    interval = _interval(run)
    lines = [f"{dag_id} run {run['dag_run_id']}{interval} {run.get('state', 'failed')}"]
    if not failures:
        lines.append("  no task failed: the run itself was marked failed (see Airflow's log)")
    for failure in failures:
        head = f"  {failure.task_id} (try {failure.try_number})"
        if failure.error is not None:
            lines.append(f"{head} failed with {_indent(failure.error)}")
        elif failure.tail:
            lines.append(f"{head} failed; the end of its log:")
            lines += [f"      {line}" for line in failure.tail]
        else:
            lines.append(f"{head} failed; its log could not be read")
        if failure.log_file:
            lines.append(f"    its log: {failure.log_file}")
    gate = any(f.gate for f in failures)
    if quarantine is not None and (gate or all(f.error is None for f in failures)):
        lines.append(f"quarantine report: {quarantine}")
        docs = quarantine.parent / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
        if docs.is_file():
            lines.append(f"Data Docs:         {docs}")
        steps = ["fix the data (the report names each failed check)"]
        steps += [f"land it again: {land}"] if land else []
        steps += [f"run the interval again: {rerun}"] if rerun else []
        lines.append("next: " + "; then ".join(steps))
    elif rerun:
        lines.append(f"next: fix the cause above, then run the interval again: {rerun}")
    return "\n".join(lines)


def rerun_command(cadence: Cadence, start: datetime) -> str:
    """The command that clears and reruns the feature pipeline of one interval."""
    return f"`airloop backfill --start {cadence.label(start)} --intervals 1` (with `airloop up`)"


def land_command(cadence: Cadence, start: datetime) -> str:
    """The command that lands the replay's data of one interval again."""
    return f"`airloop land --start {cadence.label(start)} --intervals 1`"


def _interval(run: dict[str, Any]) -> str:
    start, end = run.get("data_interval_start"), run.get("data_interval_end")
    if not start or not end:
        return ""
    return f" (interval {to_utc(start):%Y-%m-%d %H:%M} .. {to_utc(end):%Y-%m-%d %H:%M} UTC)"


def _indent(text: str) -> str:
    return text.replace("\n", "\n      ")


__all__ = [
    "TaskFailure",
    "describe_failed_run",
    "failed_tasks",
    "failure_from_log",
    "land_command",
    "quarantine_report",
    "rerun_command",
]
