"""Airflow's public REST API (v2) as airloop drives it: runs by interval, waits, notes.

Everything goes through the API, so the same code drives the embedded stack and a remote
production deployment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airloop.core.http import HttpError, reason_of, request_json, status_line
from airloop.core.periods import to_utc
from airloop.core.polling import WaitTimeout, wait_until
from airloop.runtime.airflow_cli import AirflowError
from airloop.settings import Settings

TERMINAL = {"success", "failed"}
DONE_TASK_STATES = {"success", "skipped"}
# A task instance waiting for, or at, work: what a stack that stops must not leave behind.
ACTIVE_TASK_STATES = (
    "scheduled", "queued", "running", "restarting", "up_for_retry", "up_for_reschedule", "deferred",
    "awaiting_input",
)  # fmt: skip
IDEMPOTENT = {"GET", "PATCH", "PUT", "DELETE"}
BUSY_SECONDS = 60.0  # how long a busy server's 500 is tried again


def admin_password(settings: Settings) -> str | None:
    """The admin's password: the secret (production), else the one the api-server generated."""
    if settings.airflow_admin_password is not None:
        return settings.airflow_admin_password.get_secret_value()
    path = settings.admin_passwords_file
    if not path.exists():
        return None
    password: str | None = json.loads(path.read_text()).get(settings.airflow_admin_user)
    return password


class ApiRefused(AirflowError):
    """Airflow's API answered and refused the request (a 4xx): the stack is up, and the request,
    or the state it found, is the problem. ``status`` and ``reason`` are the API's own."""

    def __init__(self, message: str, status: int, body: Any) -> None:
        super().__init__(message)
        self.status, self.body, self.reason = status, body, reason_of(body)

    @classmethod
    def of(cls, error: HttpError, base: str) -> ApiRefused:
        """The refusal as the API said it, on the path it was asked."""
        path = error.url.removeprefix(base)
        said = f"HTTP {status_line(error.status)}: {reason_of(error.body)}"
        return cls(f"Airflow refused {error.method} {path}: {said}", error.status, error.body)


@dataclass(frozen=True)
class QueuedRun:
    """A run an interval was given: ``how`` says whether it was ``triggered`` (new),
    ``cleared`` (it had run: its tasks run again) or ``unfinished`` (queued or running
    already: it runs as it is)."""

    interval: tuple[datetime, datetime]
    run: dict[str, Any]
    how: str

    @property
    def run_id(self) -> str:
        """The run's id."""
        run_id: str = self.run["dag_run_id"]
        return run_id


class ApiClient:
    """Airflow's REST API, authenticated with the simple auth manager's admin."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = settings.api_base_url
        self._token: str | None = None

    def _request(
        self, method: str, path: str, body: Any = None, auth: bool = True, again: bool = False
    ) -> Any:
        """One call. A server error is tried again for up to :data:`BUSY_SECONDS` where asking
        twice cannot do anything twice: a read, a PATCH, or a call that says so (``again``).
        The embedded SQLite database, busy with the scheduler's writes, answers 500."""
        url = self.base + path
        retry = again or method in IDEMPOTENT
        answer: dict[str, Any] = {}

        def answered() -> bool:
            try:
                answer["body"] = request_json(
                    method, url, body, token=self.token() if auth else None
                )
            except HttpError as exc:
                if exc.refused:
                    raise ApiRefused.of(exc, self.base) from None
                if not retry or exc.status < 500:
                    raise AirflowError(str(exc)) from None
                answer["error"] = exc
                return False
            return True

        try:
            wait_until(answered, timeout=BUSY_SECONDS, what=f"{method} {url}", interval=0.2)
        except WaitTimeout:
            raise AirflowError(str(answer["error"])) from None
        return answer["body"]

    def token(self) -> str:
        """A JWT for the admin, fetched once."""
        if self._token is None:
            password = admin_password(self.settings)
            if password is None:
                raise AirflowError("no admin password yet: is the api-server running?")
            out = self._request(
                "POST",
                "/auth/token",
                {"username": self.settings.airflow_admin_user, "password": password},
                auth=False,
            )
            self._token = out["access_token"]
        return self._token

    def healthy(self) -> bool:
        """Whether the metadata DB and the scheduler report healthy."""
        try:
            health = self._request("GET", "/api/v2/monitor/health", auth=False)
        except (OSError, AirflowError):
            return False
        return health.get("metadatabase", {}).get("status") == "healthy" and (
            health.get("scheduler", {}).get("status") == "healthy"
        )

    def _wait(
        self,
        check: Callable[[], Any],
        what: str,
        timeout: float,
        on_tick: Callable[[], None] | None,
        interval: float = 1.0,
    ) -> Any:
        try:
            return wait_until(check, timeout=timeout, what=what, on_tick=on_tick, interval=interval)
        except WaitTimeout as exc:
            raise AirflowError(str(exc)) from None

    def wait_healthy(
        self, on_tick: Callable[[], None] | None = None, timeout: float = 180.0
    ) -> None:
        """Wait until Airflow is healthy and its admin can log in."""
        self._wait(
            lambda: self.healthy() and admin_password(self.settings) is not None,
            f"Airflow healthy (see {self.settings.logs_dir})",
            timeout,
            on_tick,
        )

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG as the API describes it, or None while it is not parsed yet."""
        try:
            answer: dict[str, Any] = self._request("GET", f"/api/v2/dags/{dag_id}")
        except ApiRefused as exc:
            if exc.status == 404:
                return None
            raise
        return answer

    def wait_for_dag(
        self, dag_id: str, on_tick: Callable[[], None] | None = None, timeout: float = 180.0
    ) -> dict[str, Any]:
        """Wait until the dag-processor has parsed a DAG."""
        dag: dict[str, Any] = self._wait(
            lambda: self.dag(dag_id),
            f"DAG {dag_id!r} parsed (see the dag-processor log)",
            timeout,
            on_tick,
        )
        return dag

    def dag_runs(self, dag_id: str, **filters: str) -> list[dict[str, Any]]:
        """A DAG's runs (up to 1,000), filtered by the API's query parameters."""
        query = "&".join(f"{k}={v}" for k, v in {"limit": "1000", **filters}.items())
        runs: list[dict[str, Any]] = self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns?{query}")[
            "dag_runs"
        ]
        return runs

    def trigger(
        self,
        dag_id: str,
        conf: dict[str, Any] | None = None,
        interval: tuple[datetime, datetime] | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """A manual run; with ``interval`` it owns exactly that data interval, like a scheduled run."""
        # Due now, to the second: on SQLite the scheduler starts a queued run once its
        # run_after is at or before CURRENT_TIMESTAMP, which has no fraction of a second, so a
        # run due at 12:00:00.4 waited until 12:00:01 (half a second a run, on average). A
        # run of an interval that has ended is due since its end, as a scheduled run is.
        due = datetime.now(UTC).replace(microsecond=0)
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if interval is not None:
            body["logical_date"] = interval[0].isoformat()
            body["data_interval_start"] = interval[0].isoformat()
            body["data_interval_end"] = interval[1].isoformat()
            due = min(due, interval[1].astimezone(UTC))
        body["run_after"] = due.isoformat()
        if note:
            body["note"] = note
        # The run's id is chosen here, in Airflow's own form, so that a POST tried again after
        # a server error finds the run its first try made instead of a conflict.
        body["dag_run_id"] = f"manual__{datetime.now(UTC).isoformat()}"
        try:
            run: dict[str, Any] = self._request(
                "POST", f"/api/v2/dags/{dag_id}/dagRuns", body, again=True
            )
        except ApiRefused as exc:
            if exc.status != 409:
                raise
            try:
                return self.dag_run(dag_id, body["dag_run_id"])
            except ApiRefused:  # not this trigger's: another run owns that interval
                raise self._conflict(exc, dag_id, interval) from None
        return run

    def _conflict(
        self, refused: ApiRefused, dag_id: str, interval: tuple[datetime, datetime] | None
    ) -> ApiRefused:
        """A 409 on a trigger, said as what it is: the run that already owns the interval."""
        if interval is None:
            return refused
        try:
            owner = self.runs_of(dag_id, [interval]).get(to_utc(interval[0]))
        except (AirflowError, OSError):  # the refusal as it came is still the news
            owner = None
        if owner is None:
            return refused
        message = (
            f"{dag_id} already has a run of the interval {interval_text(interval)}"
            f" ({owner['dag_run_id']}, {owner['state']}): Airflow keeps one run per logical"
            f" date (HTTP {status_line(refused.status)}: {refused.reason}). `airloop backfill`"
            " clears such a run and runs it again."
        )
        return ApiRefused(message, refused.status, refused.body)

    def runs_of(
        self, dag_id: str, intervals: list[tuple[datetime, datetime]]
    ) -> dict[datetime, dict[str, Any]]:
        """The DAG's existing runs of these intervals, by the interval's start (a run owns the
        interval its logical date starts)."""
        lo = min(start for start, _ in intervals)
        hi = max(end for _, end in intervals)
        wanted = {to_utc(start) for start, _ in intervals}
        found: dict[datetime, dict[str, Any]] = {}
        for run in self.dag_runs(
            dag_id, logical_date_gte=api_time(lo), logical_date_lt=api_time(hi)
        ):
            if run.get("logical_date"):
                start = to_utc(run["logical_date"])
                if start in wanted:
                    found[start] = run
        return found

    def clear_run(self, dag_id: str, run_id: str, note: str | None = None) -> dict[str, Any]:
        """Clear a run: every task instance of it runs again, the run is queued (Airflow's
        ``POST .../dagRuns/{id}/clear``; ``dry_run`` defaults to true there, so it is said)."""
        body: dict[str, Any] = {"dry_run": False, "only_failed": False}
        if note:
            body["note"] = note
        run: dict[str, Any] = self._request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/clear", body
        )
        return run

    def queue_intervals(
        self, dag_id: str, intervals: list[tuple[datetime, datetime]], note: str
    ) -> list[dict[str, Any]]:
        """One run per data interval, each owning exactly that interval, in order.

        Runs rather than Airflow's backfill API: 3.3 can mark a backfill complete while its
        last run is still queued and then never schedule it (apache/airflow#68721).
        """
        return [self.trigger(dag_id, interval=interval, note=note) for interval in intervals]

    def rerun_intervals(
        self, dag_id: str, intervals: list[tuple[datetime, datetime]], note: str
    ) -> list[QueuedRun]:
        """Each interval run (again): a new run where it has none, its finished run cleared
        (so it runs again), its queued or running run left to run as it is."""
        existing = self.runs_of(dag_id, intervals)
        queued = []
        for interval in intervals:
            run = existing.get(to_utc(interval[0]))
            if run is None:
                queued.append(
                    QueuedRun(
                        interval, self.trigger(dag_id, interval=interval, note=note), "triggered"
                    )
                )
            elif run["state"] in TERMINAL:
                queued.append(
                    QueuedRun(interval, self.clear_run(dag_id, run["dag_run_id"], note), "cleared")
                )
            else:
                queued.append(QueuedRun(interval, run, "unfinished"))
        return queued

    def set_note(self, dag_id: str, run_id: str, note: str) -> None:
        """The run's note, shown in the Airflow UI (Markdown)."""
        self._request("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", {"note": note})

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One run as the API describes it."""
        run: dict[str, Any] = self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return run

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        on_tick: Callable[[], None] | None = None,
        timeout: float = 900.0,
    ) -> dict[str, Any]:
        """Poll one run until it succeeds or fails."""

        def finished() -> dict[str, Any] | None:
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in TERMINAL else None

        run: dict[str, Any] = self._wait(
            finished, f"{dag_id} run {run_id} finished", timeout, on_tick, interval=0.25
        )
        return run

    def wait_for_tasks(
        self,
        dag_id: str,
        run_id: str,
        on_tick: Callable[[], None] | None = None,
        timeout: float = 900.0,
    ) -> bool:
        """Poll one run's tasks until each has succeeded or was skipped (True), or one failed
        (False). A task reports its own end; the run is marked done at the scheduler's next
        loop after the last one (a nap, 0.25 s, later), which this does not wait for."""

        def finished() -> str | None:
            tasks = self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
            states = {t["state"] for t in tasks["task_instances"]}
            if states & {"failed", "upstream_failed"}:
                return "failed"
            return "done" if states and states <= DONE_TASK_STATES else None

        outcome = self._wait(finished, f"{dag_id} run {run_id}'s tasks", timeout, on_tick, 0.25)
        return outcome == "done"

    def wait_for_window(
        self,
        dag_id: str,
        intervals: list[tuple[datetime, datetime]],
        on_progress: Callable[[str], None],
        on_tick: Callable[[], None] | None = None,
        stall_seconds: float = 600.0,
    ) -> list[dict[str, Any]]:
        """Poll the runs of these intervals until all finish; give up when none moves.

        ``on_progress`` hears each change of the run states. Returns the runs as last seen.
        """
        expected = len(intervals)
        first, last = intervals[0][0], intervals[-1][1]
        lo, hi = api_time(first), api_time(last)
        seen: dict[str, Any] = {"runs": [], "states": None}

        def states() -> tuple[tuple[str, int], ...]:
            runs = [
                r
                for r in self.dag_runs(dag_id, logical_date_gte=lo, logical_date_lt=hi)
                if r.get("logical_date")
            ]
            counts: dict[str, int] = {}
            for run in runs:
                counts[run["state"]] = counts.get(run["state"], 0) + 1
            seen["runs"] = runs
            return tuple(sorted(counts.items()))

        def all_done() -> bool:
            now = states()
            counts = dict(now)
            done = counts.get("success", 0) + counts.get("failed", 0)
            if now != seen["states"]:
                seen["states"] = now
                on_progress(f"[{done}/{expected}] " + ", ".join(f"{k} {v}" for k, v in now))
            return len(seen["runs"]) >= expected and done >= expected

        try:
            wait_until(
                all_done,
                timeout=stall_seconds,
                what=f"{dag_id} runs of {first} .. {last}",
                interval=2.0,
                on_tick=on_tick,
                progress=lambda: seen["states"],
            )
        except WaitTimeout:
            on_progress(
                f"no progress for {stall_seconds:.0f}s; stopping the wait (see the Airflow UI)"
            )
        runs: list[dict[str, Any]] = seen["runs"]
        return runs

    def pool_slots(self, pool: str) -> int:
        """How many task instances of the pool may run at once."""
        found: dict[str, Any] = self._request("GET", f"/api/v2/pools/{pool}")
        return int(found["slots"])

    def set_pool_slots(self, pool: str, slots: int) -> None:
        """Resize a pool: with 0 slots its tasks wait, scheduled, until it has some again."""
        found: dict[str, Any] = self._request("GET", f"/api/v2/pools/{pool}")
        body = {"pool": pool, "slots": slots, "include_deferred": found["include_deferred"]}
        self._request("PATCH", f"/api/v2/pools/{pool}?update_mask=slots", body)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> dict[str, Any]:
        """One try's log as the API reads it (JSON: ``content``, a list of structured events,
        each with its ``event`` text; the event of a task that raised carries ``error_detail``)."""
        log: dict[str, Any] = self._request(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
            "?full_content=true",
        )
        return log

    def unfinished_runs(self, dag_ids: list[str]) -> list[dict[str, Any]]:
        """The runs of these DAGs that are queued or running."""
        return [
            run
            for dag_id in dag_ids
            for run in self._request(
                "GET", f"/api/v2/dags/{dag_id}/dagRuns?state=queued&state=running&limit=1000"
            )["dag_runs"]
        ]

    def active_task_instances(self, dag_ids: list[str]) -> list[dict[str, Any]]:
        """The task instances of these DAGs that are not finished: waiting or at work."""
        query = "&".join(f"state={s}" for s in ACTIVE_TASK_STATES)
        return [
            ti
            for dag_id in dag_ids
            for ti in self._request(
                "GET", f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances?{query}&limit=1000"
            )["task_instances"]
        ]

    def fail_unfinished_runs(self, dag_ids: list[str], note: str) -> list[dict[str, Any]]:
        """Mark every queued or running run of these DAGs failed, before the stack stops:
        Airflow then marks their running task instances failed and the waiting ones skipped,
        so none is left ``running`` in its database for a scheduler that is gone. Returns the
        runs it stopped."""
        stopped = self.unfinished_runs(dag_ids)
        for run in stopped:
            self._request(
                "PATCH",
                f"/api/v2/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}",
                {"state": "failed", "note": note},
            )
        return stopped

    def task_instances(
        self, dag_id: str, run_id: str, state: str | None = None
    ) -> list[dict[str, Any]]:
        """The task instances of a run (those in ``state``, if given)."""
        query = f"?state={state}" if state else "?limit=1000"
        out = self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances{query}")
        tasks: list[dict[str, Any]] = out["task_instances"]
        return tasks

    def failed_tasks(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The task instances of a run that failed."""
        return self.task_instances(dag_id, run_id, "failed")


def api_time(moment: datetime) -> str:
    """A moment as a query parameter: UTC with ``Z`` (a ``+`` would have to be escaped)."""
    return f"{to_utc(moment):%Y-%m-%dT%H:%M:%S}Z"


def interval_text(interval: tuple[datetime, datetime]) -> str:
    """``2013-01-02T00:00Z .. 2013-01-03T00:00Z``."""
    return " .. ".join(f"{to_utc(t):%Y-%m-%dT%H:%MZ}" for t in interval)


__all__ = ["AirflowError", "ApiClient", "ApiRefused", "QueuedRun", "admin_password"]
