"""Monitoring from the command line: through the running Airflow, or in this process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

import typer

from airloop.cli.common import DaysOpt, EndOpt, StartOpt, app, context, days_of, window
from airloop.settings import Settings
from airloop.usecase import UseCase


def through_airflow(settings: Settings) -> Callable[[date], str]:
    """Monitor a day with a run of the monitoring DAG; the run's final state."""
    from airloop.data.intervals import day_interval
    from airloop.runtime.api import ApiClient

    client = ApiClient(settings)

    def run(day: date) -> str:
        created = client.trigger("monitoring", interval=day_interval(day))
        state: str = client.wait_for_run("monitoring", created["dag_run_id"])["state"]
        return state

    return run


def in_this_process(settings: Settings, uc: UseCase) -> Callable[[date], str]:
    """Monitor a day with the same stages, here; a request is recorded, not sent to Airflow."""
    from airloop.data.intervals import day_interval
    from airloop.monitoring.pipeline import monitor_interval

    def run(day: date) -> str:
        monitor_interval(*day_interval(day), {"trigger": "cli"}, uc, settings)
        return "success"

    return run


@app.command()
def monitor(
    start: StartOpt = None,
    end: EndOpt = None,
    days: DaysOpt = None,
    in_process: Annotated[
        bool,
        typer.Option(
            "--in-process",
            help="Run the monitoring stages here, without Airflow (a retrain request is recorded"
            " in the ledger, not sent to model_training)",
        ),
    ] = False,
) -> None:
    """Monitor each day of a window, in order (the monitoring DAG), and print each decision."""
    from airloop.data.intervals import day_interval
    from airloop.metadata.ledger import FeedbackLedger

    settings, uc = context()
    first, last = window(uc, start, end, days)
    ledger = FeedbackLedger(settings.monitoring_root(uc.name))
    run = in_this_process(settings, uc) if in_process else through_airflow(settings)
    for day in days_of(first, last):
        state = run(day)
        decision = ledger.decision_for(day_interval(day)[0]) or {}
        typer.echo(
            f"{day}: {state}, {decision.get('action', '-')}"
            + (f" ({decision['detail']})" if decision.get("detail") else "")
        )
        if state != "success":
            raise typer.Exit(1)
