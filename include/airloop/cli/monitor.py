"""Monitoring from the command line: through the running Airflow, or in this process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from airloop.cli.common import EndOpt, IntervalsOpt, StartOpt, app, context, window
from airloop.core.periods import Interval
from airloop.settings import Settings
from airloop.usecase import UseCase


def through_airflow(settings: Settings, uc: UseCase) -> Callable[[Interval], str]:
    """Monitor an interval with a run of the use case's monitoring DAG; the run's final state.
    An interval monitored before is cleared and runs again (Airflow keeps one run per interval)."""
    from airloop.runtime.api import ApiClient
    from airloop.usecase import dag_id

    client = ApiClient(settings)
    monitoring = dag_id("monitoring", uc, settings)

    def run(interval: Interval) -> str:
        [queued] = client.rerun_intervals(monitoring, [interval], "airloop monitor")
        state: str = client.wait_for_run(monitoring, queued.run_id)["state"]
        return state

    return run


def in_this_process(settings: Settings, uc: UseCase) -> Callable[[Interval], str]:
    """Monitor an interval with the same stages, here; a request is recorded, not sent to Airflow."""
    from airloop.monitoring.pipeline import monitor_interval

    def run(interval: Interval) -> str:
        monitor_interval(*interval, {"trigger": "cli"}, uc, settings)
        return "success"

    return run


@app.command()
def monitor(
    start: StartOpt = None,
    end: EndOpt = None,
    intervals: IntervalsOpt = None,
    in_process: Annotated[
        bool,
        typer.Option(
            "--in-process",
            help="Run the monitoring stages here, without Airflow (a retrain request is recorded"
            " in the ledger, not sent to model_training)",
        ),
    ] = False,
) -> None:
    """Monitor each interval of a window, in order (the monitoring DAG); print each decision."""
    from airloop.metadata.ledger import FeedbackLedger

    settings, uc = context()
    span = window(uc, start, end, intervals)
    ledger = FeedbackLedger(settings.monitoring_root(uc.name))
    run = in_this_process(settings, uc) if in_process else through_airflow(settings, uc)
    for interval in span.intervals:
        state = run(interval)
        decision = ledger.decision_for(interval[0]) or {}
        typer.echo(
            f"{uc.cadence.label(interval[0])}: {state}, {decision.get('action', '-')}"
            + (f" ({decision['detail']})" if decision.get("detail") else "")
        )
        if state != "success":
            raise typer.Exit(1)
