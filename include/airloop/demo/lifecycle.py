"""The life of a model, interval by interval: bootstrap to a first champion, then serve and monitor.

Bootstrap: the feature pipeline over the first intervals, an experiment, a first champion.
Then each monitored interval (a day for flights, a month for a monthly use case): its
features, its events sent to the serving API by a replay client, and the monitoring DAG; when
monitoring opens a retrain request, the scheduler starts ``model_training`` from the Asset
event and the loop waits for its gate decision before the next interval, so the next
interval's traffic meets the new champion. ``model_training``'s timetable runs too: where one of
its intervals ends within a monitored interval, that run is made (unless a retraining on the
same data was just made) and waited for the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from airloop.core.files import read_json, write_json
from airloop.core.periods import Interval, to_utc
from airloop.core.polling import WaitTimeout, wait_until
from airloop.core.stopwatch import Stopwatch
from airloop.demo.growth import store_figures
from airloop.demo.traffic import Traffic, clock_step, send_interval
from airloop.metadata.ledger import FeedbackLedger
from airloop.monitoring.checks import interval_dir
from airloop.registry.evidence import history, version_label
from airloop.registry.models import describe_champion
from airloop.runtime.airflow_cli import ONLINE_STORE_POOL
from airloop.runtime.api import TERMINAL, ApiClient
from airloop.runtime.failures import (
    describe_failed_run,
    failed_tasks,
    land_command,
    quarantine_report,
    rerun_command,
)
from airloop.runtime.services import Services
from airloop.settings import Settings
from airloop.usecase import UseCase, dag_id

Echo = Callable[[str], None]
MONITORED = "airloop demo: monitored interval"
CALLS = "monitored: the replay's calls to Airflow"  # between the phases: pool, queueing, runs
SCHEDULED = "airloop demo: model_training's timetable"
DECISION_POLL_SECONDS = 0.1  # reads a local file: cheap, unlike a call to the api-server
RUN_CHECK_SECONDS = 2.0  # how often the wait for a decision asks whether the run failed


class LifecycleError(RuntimeError):
    """A run of the replay failed; the message names the DAG, the run, the failed tasks with
    their errors, and what to do next."""


@dataclass
class Timeline:
    """What happened, in order: the events the summary, the HTML timeline and the tests read."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def add(self, day: date | None, kind: str, detail: str, **data: Any) -> None:
        """Record an event of a (data) day, with when it happened (wall clock)."""
        self.events.append(
            {
                "day": day.isoformat() if day else None,
                "kind": kind,
                "detail": detail,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                **data,
            }
        )

    def save(self, path: Path) -> Path:
        """The events as JSON."""
        return write_json(path, self.events)


class Lifecycle:
    """Drives the replay's runs through Airflow and records what happened on a timeline."""

    def __init__(
        self,
        settings: Settings,
        usecase: UseCase,
        client: ApiClient,
        services: Services,
        echo: Echo = print,
        step: timedelta | None = None,
        stopwatch: Stopwatch | None = None,
    ) -> None:
        self.settings = settings
        self.usecase = usecase
        self.client = client
        self.services = services
        self.echo = echo
        self.timeline = Timeline()
        self.stopwatch = stopwatch or Stopwatch()
        self.stores: dict[str, dict[str, Any]] = {}  # sizes and lookup time: start and end
        self.served = Traffic()  # every monitored interval's traffic, added up
        self.step = step or clock_step(usecase)  # the traffic's slices, each at its own clock
        self.ledger = FeedbackLedger(settings.monitoring_root(usecase.name))
        self.reporting: str | None = None  # the monitoring run whose report may still be going

    # -- runs ---------------------------------------------------------------------------------
    def dag(self, name: str) -> str:
        """The id of this use case's DAG ``name`` (one Airflow may run several use cases)."""
        return dag_id(name, self.usecase, self.settings)

    def _wait(self, dag_id: str, run_id: str, timeout: float = 1800.0) -> dict[str, Any]:
        done = self.client.wait_for_run(dag_id, run_id, self.services.check_alive, timeout)
        if done["state"] != "success":
            raise LifecycleError(self.why(dag_id, done))
        return done

    def why(self, dag_id: str, run: dict[str, Any]) -> str:
        """Why a run failed, said while the stack still runs (the demo stops it next): each
        failed task's error from its log, where the log is, and for a feature pipeline
        interval the quarantine report and the commands that run it again."""
        failures = failed_tasks(self.client, dag_id, run["dag_run_id"])
        quarantine = rerun = land = None
        if dag_id == self.dag("feature_pipeline") and run.get("data_interval_start"):
            start = to_utc(run["data_interval_start"])
            quarantine = quarantine_report(self.settings, self.usecase.name, start)
            rerun = rerun_command(self.usecase.cadence, start)
            land = land_command(self.usecase.cadence, start)
        return describe_failed_run(dag_id, run, failures, quarantine, rerun, land)

    def _wait_for_tasks(self, dag_id: str, run_id: str) -> None:
        """The run's tasks, each to its success: its work is done (the scheduler marks the
        run itself at its next loop). A failed task fails the wait as a failed run does."""
        if not self.client.wait_for_tasks(dag_id, run_id, self.services.check_alive, 1800.0):
            self._wait(dag_id, run_id)  # raises, naming the failed tasks

    def run(self, dag_id: str, conf: dict[str, Any], note: str | None = None) -> dict[str, Any]:
        """Trigger one run by hand and wait for its success."""
        created = self.client.trigger(dag_id, conf, note=note)
        return self._wait(dag_id, created["dag_run_id"])

    def features(self, intervals: list[Interval]) -> None:
        """Queue one run per interval (the DAG runs them one at a time, in order); wait for all."""
        runs = self.client.queue_intervals(
            self.dag("feature_pipeline"), intervals, "airloop demo: bootstrap"
        )
        for i, ((lo, _), created) in enumerate(zip(intervals, runs, strict=True), 1):
            self._wait(self.dag("feature_pipeline"), created["dag_run_id"])
            self.echo(f"  [{i}/{len(intervals)}] features {self.usecase.cadence.label(lo)}")
        self.timeline.add(
            intervals[0][0].date(),
            "ingest",
            f"{len(intervals)} intervals through the feature pipeline",
        )

    def _asset_runs(self) -> set[str]:
        runs = self.client.dag_runs(self.dag("model_training"))
        return {r["dag_run_id"] for r in runs if r.get("run_type") == "asset_triggered"}

    def _wait_for_retraining(self, before: set[str], timeout: float = 180.0) -> dict[str, Any]:
        """The model_training run the scheduler opened from the retrain request's Asset event."""
        try:
            new: set[str] = wait_until(
                lambda: (self._asset_runs() - before) or None,
                timeout=timeout,
                what="an asset-triggered model_training run after the retrain request",
                on_tick=self.services.check_alive,
            )
        except WaitTimeout as exc:
            raise LifecycleError(str(exc)) from None
        run_id = sorted(new)[0]
        done = self.client.wait_for_run(
            self.dag("model_training"), run_id, self.services.check_alive, 1800.0
        )
        return {"run_id": run_id, "state": done["state"]}

    # -- the stages of the life ---------------------------------------------------------------
    def bootstrap(self, intervals: list[Interval], trials: int) -> None:
        """Features for these intervals, an experiment, and a first champion that serves."""
        first, split = intervals[0][0], intervals[-1][1]
        self.echo(f"feature pipeline over {first:%Y-%m-%d} .. {split:%Y-%m-%d} (exclusive)")
        with self.stopwatch.phase("bootstrap: feature pipeline"):
            self.features(intervals)
        # The DAGs' params are dates (the Trigger form's date picker): the window in whole days.
        window = {"window_start": f"{first:%Y-%m-%d}", "window_end": f"{split:%Y-%m-%d}"}
        if trials > 0:
            self.echo(f"experiment: {trials} trials in parallel, tracked in MLflow")
            with self.stopwatch.phase("bootstrap: experiment"):
                self.run(self.dag("experimentation"), {**window, "n_trials": trials})
            self.timeline.add(split.date(), "experiment", f"{trials} trials")
        self.echo("model_training: train, evaluate, gate, register, promote, deploy")
        with self.stopwatch.phase("bootstrap: first champion"):
            self.run(self.dag("model_training"), window, note="airloop demo: first champion")
        champion = describe_champion(self.settings, self.usecase)
        if champion is None:
            raise LifecycleError("model_training finished without a champion (see its gate)")
        self.timeline.add(
            split.date(),
            "champion",
            f"v{champion['version']} promoted and serving",
            version=champion["version"],
            metrics=champion["metrics"],
        )

    def monitored_intervals(self, intervals: list[Interval]) -> None:
        """Serve and monitor each interval. What does not wait for the model overlaps: the next
        interval's features are built while this one is served and monitored, and its report
        is published while the next one is served."""
        if not intervals:
            return
        [features] = self.client.queue_intervals(
            self.dag("feature_pipeline"), intervals[:1], MONITORED
        )
        for i, interval in enumerate(intervals):
            with self.stopwatch.phase("monitored: waiting for the interval's features"):
                self._wait_for_tasks(self.dag("feature_pipeline"), features["dag_run_id"])
            if i == 0:
                self.stores["start"] = self._store_figures(interval)
            following = intervals[i + 1] if i + 1 < len(intervals) else None
            features = self.monitored_interval(interval, following)
        self._wait_for_report()
        self.stores["end"] = self._store_figures(intervals[-1])

    @contextmanager
    def holding_online_store(self) -> Iterator[None]:
        """The replay's clock writes the online store while an interval is served, so the
        feature pipeline's writer (the pool's one task at a time) waits: the pool is closed
        for that while, and opened again to the size it had, however the serving ends."""
        with self.stopwatch.phase(CALLS):
            slots = self.client.pool_slots(ONLINE_STORE_POOL)
            self.client.set_pool_slots(ONLINE_STORE_POOL, 0)
        try:
            yield
        finally:
            with self.stopwatch.phase(CALLS):
                self.client.set_pool_slots(ONLINE_STORE_POOL, slots)

    def _wait_for_report(self) -> None:
        """The last monitoring run, whose report may still be being published, to its end."""
        if self.reporting is not None:
            with self.stopwatch.phase("monitored: the previous interval's report"):
                self._wait(self.dag("monitoring"), self.reporting)
            self.reporting = None

    def _wait_for_decision(self, run_id: str, start: datetime, since: datetime) -> dict[str, Any]:
        """The decision the monitoring run records for the interval at ``start``, read from the
        ledger as soon as it is there (the run's report is published after it); the run itself
        is asked about every few seconds, so a failed one stops the wait."""
        dag = self.dag("monitoring")
        asked = time.monotonic()

        def decided() -> dict[str, Any] | None:
            nonlocal asked
            found = self.ledger.decision_for(start)
            if found is not None and datetime.fromisoformat(found["decided_at"]) >= since:
                return found
            if time.monotonic() - asked >= RUN_CHECK_SECONDS:
                asked = time.monotonic()
                if self.client.dag_run(dag, run_id)["state"] in TERMINAL:
                    self._wait(dag, run_id)  # raises for a failed run
                    found = self.ledger.decision_for(start)
                    if found is None:
                        raise LifecycleError(f"{dag} run {run_id} recorded no decision")
                    return found
            return None

        try:
            decision: dict[str, Any] = wait_until(
                decided,
                timeout=1800.0,
                what=f"the decision of {dag} run {run_id}",
                interval=DECISION_POLL_SECONDS,
                on_tick=self.services.check_alive,
            )
        except WaitTimeout as exc:
            raise LifecycleError(str(exc)) from None
        return decision

    def _store_figures(self, interval: Interval) -> dict[str, Any]:
        with self.stopwatch.phase("measuring the stores"):
            figures = store_figures(self.settings, self.usecase, *interval)
        return {"interval": interval[0].isoformat(), **figures}

    def monitored_interval(self, interval: Interval, following: Interval | None = None) -> Any:
        """The interval's features are in: serve its events, monitor it, follow a retrain request.

        Returns the run of the next interval's features, queued when serving starts.
        """
        lo, hi = interval
        day = lo.date()
        with self.holding_online_store():
            # The next interval's features are validated and built while this one is served;
            # their materialisation waits for the pool, so the replay's clock writes alone.
            with self.stopwatch.phase(CALLS):
                next_features = (
                    self.client.queue_intervals(
                        self.dag("feature_pipeline"), [following], MONITORED
                    )[0]
                    if following is not None
                    else None
                )
            with self.stopwatch.phase("monitored: serving the interval's events"):
                traffic = send_interval(self.settings, self.usecase, lo, hi, step=self.step)
        self.served.add(traffic)
        self._wait_for_report()  # one monitoring run at a time: the previous one's report
        with self.stopwatch.phase(CALLS):
            before = self._asset_runs()
            since = datetime.now(UTC)
            [monitoring] = self.client.queue_intervals(
                self.dag("monitoring"), [interval], MONITORED
            )
        with self.stopwatch.phase("monitored: monitoring decision"):
            decision = self._wait_for_decision(monitoring["dag_run_id"], lo, since)
        self.reporting = monitoring["dag_run_id"]
        line = self._describe(lo, traffic, decision)
        if decision.get("breach"):
            checks = ", ".join(r["check"] for r in decision.get("reasons", []))
            self.timeline.add(
                day, "drift", f"{checks}: {decision['action']}", detail_text=decision.get("detail")
            )
        if decision.get("action") != "requested":
            self.echo(line)
            self.scheduled_training(interval)
            return next_features
        self.timeline.add(day, "retrain", f"request {decision['request_id']} opened")
        self.echo(line + "  → retraining")
        with self.stopwatch.phase("monitored: retraining run"):
            outcome = self._wait_for_retraining(before)
        request = self.ledger.request(decision["request_id"]) or {}
        result = (request.get("outcome") or {}).get("result", outcome["state"])
        version = (request.get("outcome") or {}).get("version")
        kind = "promoted" if result == "promoted" else "gate"
        self.timeline.add(
            day,
            kind,
            f"{version_label(version)}: {result}",
            run_id=outcome["run_id"],
            version=version,
        )
        self.echo(
            f"             model_training ({outcome['run_id']}): {version_label(version)} {result}"
        )
        return next_features

    def scheduled_training(self, interval: Interval) -> None:
        """The run of ``model_training``'s timetable whose interval ends within this one, made
        as the scheduler makes it (that data interval; its window ends there) and followed to
        its gate decision, so the next interval's traffic meets what it decided. A retraining
        this interval already opened was trained on the same data or later: it stands for it."""
        due = self.usecase.training_cadence.ending_within(*interval)
        if due is None:
            return
        dag = self.dag("model_training")
        with self.stopwatch.phase("monitored: scheduled training run"):
            [created] = self.client.queue_intervals(dag, [due], SCHEDULED)
            run_id = created["dag_run_id"]
            done = self.client.wait_for_run(dag, run_id, self.services.check_alive, 1800.0)
        decided = [
            event for event in history(self.settings, self.usecase) if event.run_id == run_id
        ]
        if decided:
            event = decided[-1]
            kind = "promoted" if event.kind == "promoted" else "gate"
            what = f"v{event.version}: {event.kind}"
            version: str | None = event.version
        else:  # failed before the gate: the champion stays
            kind, what, version = "failed", f"{done['state']} before a decision", None
        self.timeline.add(
            interval[0].date(),
            kind,
            f"{what} (scheduled training on the interval to {due[1]:%Y-%m-%d})",
            run_id=run_id,
            version=version,
            trigger="schedule",
        )
        self.echo(f"             model_training ({run_id}, on its timetable): {what}")

    def _describe(self, start: datetime, traffic: Traffic, decision: dict[str, Any]) -> str:
        folder = interval_dir(self.settings, self.usecase, start)
        drift = read_json(folder / "drift.json")
        perf = read_json(folder / "performance.json")
        data = drift.get("data") or {}
        share = data.get("share_drifted")
        pred = (drift.get("prediction") or {}).get("score")
        metric = perf.get("metric")
        live = (perf.get("live") or {}).get(metric) if metric else None
        parts = [
            f"  {self.usecase.cadence.label(start)}",
            f"served {traffic.predicted:>5} (v{','.join(traffic.versions) or '-'})"
            + (f", refused {traffic.refused} ({traffic.refusal})" if traffic.refused else ""),
            f"drifting {share:.0%}" if share is not None else "drifting  -",
            f"pred PSI {pred:.2f}" if pred is not None else "pred PSI  -",
            f"live {metric} {live:.3f}" if live is not None else "live  -",
            f"{decision.get('action', '?')}"
            + (f" ({decision['detail']})" if decision.get("detail") else ""),
        ]
        return "  ".join(parts)


__all__ = ["Lifecycle", "LifecycleError", "Timeline"]
