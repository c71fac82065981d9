"""Commands for data and features: setup, land, run (in-process), backfill (through Airflow)."""

from __future__ import annotations

from typing import Annotated

import typer

from airloop.cli.common import EndOpt, IntervalsOpt, StartOpt, app, context, window


@app.command()
def setup() -> None:
    """Create the home folder, migrate Airflow's DB, register the Feast definitions."""
    from airloop.runtime.stack import set_up_home

    settings, uc = context()
    set_up_home(settings, uc)
    typer.echo(f"airloop home ready at {settings.home} (use case {uc.name!r})")


@app.command()
def land(start: StartOpt = None, end: EndOpt = None, intervals: IntervalsOpt = None) -> None:
    """Replay the use case's data set into the landing zone, one partition per interval."""
    from airloop.data.replay import land_window

    settings, uc = context()
    span = window(uc, start, end, intervals)
    written = land_window(uc, settings, span.first, span.last)
    typer.echo(f"landed {span} into {settings.landing_root(uc.name)}: {written}")


@app.command("run")
def run_in_process(
    start: StartOpt = None, end: EndOpt = None, intervals: IntervalsOpt = None
) -> None:
    """Run the feature pipeline for each interval in this process, without Airflow."""
    from airloop.features.pipeline import run_interval

    settings, uc = context()
    for lo, hi in window(uc, start, end, intervals).intervals:
        result = run_interval(lo, hi, uc, settings)
        typer.echo(f"{result.partition}: {result.rows}")


@app.command()
def backfill(
    start: StartOpt = None,
    end: EndOpt = None,
    intervals: IntervalsOpt = None,
    wait: Annotated[bool, typer.Option(help="Wait for the runs to finish")] = True,
) -> None:
    """Ask the running Airflow to run the feature pipeline for each interval of a window.

    Each run owns exactly its data interval, like a scheduled run: the way to run a past
    interval (``airflow dags trigger`` gives a manual run the interval of its trigger time).
    An interval that has run already is cleared and runs again (Airflow keeps one run per
    interval); one queued or running is left to finish.
    """
    from airloop.core.periods import to_utc
    from airloop.runtime.api import ApiClient
    from airloop.runtime.failures import (
        describe_failed_run,
        failed_tasks,
        land_command,
        quarantine_report,
        rerun_command,
    )
    from airloop.usecase import dag_id

    settings, uc = context()
    span = window(uc, start, end, intervals)
    client = ApiClient(settings)
    pipeline = dag_id("feature_pipeline", uc, settings)
    queued = client.rerun_intervals(pipeline, span.intervals, "airloop backfill")
    typer.echo(f"queued {pipeline} runs for {span}")
    for each in queued:
        label = uc.cadence.label(each.interval[0])
        if each.how == "cleared":
            typer.echo(f"  {label}: had run; cleared, runs again ({each.run_id})")
        elif each.how == "unfinished":
            typer.echo(f"  {label}: already {each.run['state']}; left to finish ({each.run_id})")
    if not wait:
        return
    runs = client.wait_for_window(
        pipeline, span.intervals, on_progress=lambda line: typer.echo(f"  {line}")
    )
    failed = [r for r in runs if r["state"] == "failed"]
    for run in failed:
        begins = to_utc(run["data_interval_start"])
        typer.echo(
            describe_failed_run(
                pipeline,
                run,
                failed_tasks(client, pipeline, run["dag_run_id"]),
                quarantine_report(settings, uc.name, begins),
                rerun=rerun_command(uc.cadence, begins),
                land=land_command(uc.cadence, begins),
            ),
            err=True,
        )
    if failed:
        raise typer.Exit(1)
