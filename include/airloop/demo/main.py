"""``airloop demo``: set up, land the replay's window, start the servers, live the model's life.

Everything the CLI needs to run the main job, so the command itself only parses options and
prints. The servers stop whichever way the demo ends.
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from airloop.core.columns import EVENT_ID, EVENTS_TABLE
from airloop.core.files import write_json
from airloop.core.periods import Interval
from airloop.core.stopwatch import Stopwatch
from airloop.data.replay import land_window
from airloop.demo.lifecycle import Echo, Lifecycle, LifecycleError
from airloop.demo.traffic import Traffic
from airloop.features.offline import read_partitions
from airloop.monitoring.report.history import at_target, history_frame
from airloop.monitoring.report.timeline import render_timeline
from airloop.runtime.airflow_cli import AirflowError
from airloop.runtime.api import ApiClient
from airloop.runtime.services import Services, topology
from airloop.runtime.stack import set_up_home, wait_until_ready
from airloop.serving.client import call_service
from airloop.settings import Settings
from airloop.status import collect_status
from airloop.usecase import UseCase

DEMO_DAGS = ("feature_pipeline", "experimentation", "model_training", "monitoring")  # per use case


class DemoStopped(RuntimeError):
    """The replay stopped before its end; the message says where and why."""


@dataclass(frozen=True)
class DemoWindow:
    """The demo's intervals: a first champion trained on ``bootstrap``, then ``monitored``."""

    bootstrap: list[Interval]
    monitored: list[Interval]

    @property
    def first(self) -> datetime:
        """Where the replay starts."""
        return self.bootstrap[0][0]

    @property
    def split(self) -> datetime:
        """Where the first champion's training window ends and serving begins."""
        return self.bootstrap[-1][1]

    @property
    def last(self) -> datetime:
        """Where the replay ends (exclusive)."""
        return self.monitored[-1][1] if self.monitored else self.split


def run_demo(
    settings: Settings, usecase: UseCase, window: DemoWindow, trials: int, echo: Echo
) -> dict[str, Any]:
    """The whole main job; returns what airloop holds at its end (read while the servers still
    run, so the champion comes from a tracking server too). Raises DemoStopped with the reason."""
    stopwatch = Stopwatch()
    began = time.monotonic()
    echo(
        f"1/5 setting up the home (Airflow DB, Feast registry, MLflow; {settings.profile} profile)"
    )
    with stopwatch.phase("setting up the home"):
        set_up_home(settings, usecase)
    echo("2/5 landing raw partitions (replay of the data set)")
    with stopwatch.phase("landing the replay's partitions"):
        land_window(usecase, settings, window.first, window.last)
    components = topology(settings)
    echo(f"3/5 starting {', '.join(components)}")
    with Services(settings, components) as services:
        life = Lifecycle(
            settings, usecase, ApiClient(settings), services, echo=echo, stopwatch=stopwatch
        )
        try:
            with stopwatch.phase("starting the servers"):
                wait_until_ready(
                    settings, life.client, services, [life.dag(name) for name in DEMO_DAGS]
                )
            echo("4/5 the first champion")
            life.bootstrap(window.bootstrap, trials)
            show_predictions(settings, usecase, window.bootstrap[-1], echo)
            echo(
                f"5/5 serving and monitoring, {usecase.cadence.name} interval by interval"
                " (retraining when monitoring asks)"
            )
            life.monitored_intervals(window.monitored)
            state = collect_status(settings, usecase)
        except (LifecycleError, AirflowError) as exc:
            raise DemoStopped(str(exc)) from None
        finally:
            stop_unfinished(life.client, [life.dag(name) for name in DEMO_DAGS], echo)
            reports = settings.reports_root(usecase.name)
            life.timeline.save(reports / "timeline.json")
            profile = profile_of(
                stopwatch, window, life.stores, life.served, time.monotonic() - began
            )
            profile["processes"] = processor_seconds(services)
            profile["restarts"] = dict(services.restarts)
            write_json(reports / "profile.json", profile)
            history = history_frame(settings, usecase)  # the timeline's, and the count below
            page = render_timeline(
                settings, usecase, life.timeline.events, reports / "timeline.html", history
            )
    echo("the life of the model:")
    for event in life.timeline.events:
        if event["kind"] in ("champion", "retrain", "promoted", "gate", "failed"):
            echo(f"  {event['day']}  {event['kind']:<9} {event['detail']}")
    drifts = [e for e in life.timeline.events if e["kind"] == "drift"]
    echo(f"  {len(drifts)} monitored intervals breached a threshold")
    met = at_target(usecase, history)
    if met is not None:
        echo(
            f"  live {usecase.metrics[0]} at its target ({usecase.monitoring.live_target:g})"
            f" or better on {met[0]} of {met[1]} monitored intervals"
        )
    echo(f"timeline:             {page} (and {page.with_suffix('.png').name} beside it)")
    echo(f"where the time went:  {reports / 'profile.json'}")
    for line in profile_lines(stopwatch, len(window.monitored)):
        echo(f"  {line}")
    echo("processor time by process (its own + what it started):")
    for name, spent in profile["processes"].items():
        echo(f"  {name:<48} {spent['own']:>7.1f} s + {spent['started']:.1f} s")
    for name, times in profile["restarts"].items():
        echo(f"  {name} exited and was started again {times} time(s): see {name}.log")
    return state


def stop_unfinished(client: ApiClient, dags: list[str], echo: Echo) -> None:
    """Before the stack stops: no run of the demo's DAGs left queued or running, so none of
    their task instances stays ``running`` in Airflow's database for a scheduler that is gone
    (the runs are marked failed; Airflow fails their running tasks and skips the waiting ones).
    Checked through the API afterwards; a stack that no longer answers is said, not raised:
    the demo is on its way out, with its own reason."""
    try:
        stopped = client.fail_unfinished_runs(dags, "airloop demo: stopped with the stack")
        left = client.active_task_instances(dags)
    except (AirflowError, OSError) as exc:
        echo(f"could not mark the demo's unfinished runs failed before stopping: {exc}")
        return
    if stopped:
        runs = ", ".join(f"{r['dag_id']} {r['dag_run_id']}" for r in stopped)
        echo(f"marked {len(stopped)} unfinished run(s) failed before stopping the stack: {runs}")
    for ti in left:
        echo(f"  still {ti['state']}: {ti['dag_id']} {ti['dag_run_id']} {ti['task_id']}")


def profile_of(
    stopwatch: Stopwatch,
    window: DemoWindow,
    stores: dict[str, Any] | None = None,
    served: Traffic | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """The demo's phases, with the window they were measured on, and the stores' sizes and
    lookup time at the first monitored interval and at the end (the benchmarks read it)."""
    return {
        "seconds": None if seconds is None else round(seconds, 1),
        "bootstrap_intervals": len(window.bootstrap),
        "monitored_intervals": len(window.monitored),
        "first": window.first.isoformat(),
        "last": window.last.isoformat(),
        "phases": stopwatch.as_dict(),
        "stores": stores or {},
        "served": asdict(served or Traffic()),
    }


def processor_seconds(services: Services) -> dict[str, dict[str, float]]:
    """Where the run's processor time went, by process: each server (its own, and what it
    started), the replay itself (this process: traffic, the clock, the waits) and the commands
    it ran before the servers (setting up the home)."""
    mine = resource.getrusage(resource.RUSAGE_SELF)
    ran = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        **services.processor_seconds(),
        "airloop demo": {
            "own": round(mine.ru_utime + mine.ru_stime, 1),
            "started": round(ran.ru_utime + ran.ru_stime, 1),
        },
    }


def profile_lines(stopwatch: Stopwatch, monitored: int) -> list[str]:
    """One line per phase; the monitored interval's phases also per interval."""
    lines = []
    for name, phase in stopwatch.as_dict().items():
        per = (
            f"  ({phase['seconds'] / monitored:.1f} s per interval)"
            if name.startswith("monitored") and monitored
            else ""
        )
        lines.append(f"{name:<48} {phase['seconds']:>7.1f} s{per}")
    return lines


def show_predictions(
    settings: Settings, usecase: UseCase, interval: Interval, echo: Echo, n: int = 5
) -> None:
    """Ask the live service about a few events of this interval."""
    lo, hi = interval
    events = read_partitions(settings, usecase, EVENTS_TABLE, lo, hi)
    if events is None:
        return
    fields = usecase.request_keys
    sample = events.dropna(subset=fields).head(n)
    instances = json.loads(sample[fields].to_json(orient="records"))
    answer = call_service(settings, "POST", "/v1/predict", {"instances": instances})
    model = answer["model"]
    echo(
        f"  the service ({settings.serving_url}) answers with {model['name']} v{model['version']}:"
    )
    for event_id, pred in zip(sample[EVENT_ID], answer["predictions"], strict=True):
        echo(f"    {event_id:<40} score {pred['score']:.3f}")


__all__ = [
    "DemoStopped",
    "DemoWindow",
    "profile_lines",
    "profile_of",
    "run_demo",
    "show_predictions",
    "stop_unfinished",
]
