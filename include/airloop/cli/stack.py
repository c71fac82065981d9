"""Commands for the whole stack: the demo (the main job), up (the servers), status."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from typing import Annotated

import typer

from airloop.cli.common import DEMO_DAYS, StartOpt, app, context, covering


@app.command()
def demo(
    start: StartOpt = None,
    train_days: Annotated[
        int | None, typer.Option(help="Days before the first champion (default: training.window)")
    ] = None,
    days: Annotated[int, typer.Option(help="Days served and monitored after that")] = DEMO_DAYS,
    year: Annotated[bool, typer.Option("--year", help="Monitor to the end of the replay")] = False,
    trials: Annotated[int, typer.Option(help="Trials of the first experiment (0: none)")] = 3,
) -> None:
    """The main job: the life of a model, replayed through Airflow's scheduler.

    Features for the first days, an experiment and a first champion; then every day its
    features, its events sent to the serving API, monitoring, and retraining when the
    monitoring DAG asks for it. Ends with a summary and an HTML timeline.
    """
    from airloop.demo.main import DemoStopped, DemoWindow, run_demo
    from airloop.status import collect_status, summary_lines

    began = time.monotonic()
    settings, uc = context()
    if uc.replay is None and start is None:
        raise typer.BadParameter("this use case has no replay window: give --start")
    first = date.fromisoformat(start) if start else uc.replay.start  # type: ignore[union-attr]
    split = first + timedelta(days=train_days or uc.training.window.days)
    last = uc.replay.end if year and uc.replay is not None else split + timedelta(days=days)
    if last <= split:
        raise typer.BadParameter(f"nothing to monitor: {split} .. {last}")
    settings = covering(settings, uc, last)
    typer.echo(
        f"airloop demo: use case {uc.name!r}, first champion on {first} .. {split}, "
        f"then {(last - split).days} days served and monitored to {last}; home {settings.home}"
    )
    try:
        run_demo(settings, uc, DemoWindow(first, split, last), trials, typer.echo)
    except DemoStopped as exc:
        typer.echo(f"the replay stopped: {exc}", err=True)
        raise typer.Exit(1) from None
    state = collect_status(settings, uc)
    for line in summary_lines(settings, uc, state, time.monotonic() - began):
        typer.echo(line)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """What airloop holds now: runs, validated and quarantined rows, store contents."""
    from airloop.status import collect_status, summary_lines

    settings, uc = context()
    state = collect_status(settings, uc)
    if as_json:
        typer.echo(json.dumps(state, indent=2, default=str))
        return
    for line in summary_lines(settings, uc, state, 0.0):
        typer.echo(line)


@app.command()
def up(
    land_replay: Annotated[
        bool,
        typer.Option(
            "--land/--no-land", help="Land the demo's window first when nothing is landed yet"
        ),
    ] = True,
) -> None:
    """Start Airflow, the serving API and the MLflow UI until Ctrl-C."""
    from airloop.data.replay import land_window
    from airloop.demo.main import set_up_home
    from airloop.runtime.api import ApiClient, admin_password
    from airloop.runtime.services import COMPONENTS_ALL, Services, wait_http

    settings, uc = context()
    set_up_home(settings, uc)
    landed = settings.landing_dir.exists() and any(settings.landing_dir.rglob("*.csv"))
    if land_replay and uc.replay is not None and not landed:
        first = uc.replay.start
        land_window(uc, settings, first, first + uc.training.window + timedelta(days=DEMO_DAYS))
    with Services(settings, COMPONENTS_ALL) as services:
        try:
            client = ApiClient(settings)
            client.wait_healthy(services.check_alive)
            client.wait_for_dag("feature_pipeline", services.check_alive)
            wait_http(f"{settings.serving_url}/health", services)
            wait_http(f"{settings.mlflow_ui_url}/", services)
            typer.echo(f"Airflow UI: {settings.api_base_url}")
            typer.echo(f"login:      {settings.airflow_admin_user} / {admin_password(settings)}")
            typer.echo(f"MLflow UI:  {settings.mlflow_ui_url}")
            typer.echo(
                f"serving:    {settings.serving_url}  (POST /v1/predict, /invocations; GET /ready, /metrics)"
            )
            typer.echo(f"logs:       {settings.logs_dir}")
            if uc.replay is not None:
                typer.echo(
                    f"backfill:   airloop backfill --start {uc.replay.start} --days 7   (in another shell)"
                )
            typer.echo("Ctrl-C stops everything.")
            while True:
                services.check_alive()
                time.sleep(2.0)
        except KeyboardInterrupt:
            typer.echo("stopping Airflow")
