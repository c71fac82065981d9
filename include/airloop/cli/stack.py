"""Commands for the whole stack: the demo (the main job), up (the servers), status."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer

from airloop.cli.common import DEMO_DAYS, ProfileOpt, StartOpt, app, context, covering, moment
from airloop.settings import Settings
from airloop.usecase import UseCase, dag_id, scoped

if TYPE_CHECKING:
    from airloop.demo.main import DemoWindow


@app.command()
def demo(
    start: StartOpt = None,
    train_intervals: Annotated[
        int | None,
        typer.Option(
            "--train-intervals",
            "--train-days",
            help="Intervals before the first champion (default: those of replay.first_window,"
            " else training.window)",
        ),
    ] = None,
    intervals: Annotated[
        int,
        typer.Option(
            "--intervals",
            "--days",
            "-n",
            help="Intervals served and monitored after that (days for a daily use case)",
        ),
    ] = DEMO_DAYS,
    year: Annotated[bool, typer.Option("--year", help="Monitor to the end of the replay")] = False,
    trials: Annotated[int, typer.Option(help="Trials of the first experiment (0: none)")] = 3,
    profile: ProfileOpt = None,
) -> None:
    """The main job: the life of a model, replayed through Airflow's scheduler.

    Features for the first intervals, an experiment and a first champion; then every interval
    its features, its events sent to the serving API, monitoring, and retraining when the
    monitoring DAG asks for it. Ends with a summary and an HTML timeline.
    """
    from airloop.demo.main import DemoStopped, run_demo
    from airloop.status import summary_lines

    began = time.monotonic()
    settings, uc = context(profile)
    if uc.replay is None and start is None:
        raise typer.BadParameter("this use case has no replay window: give --start")
    window = demo_window(uc, start, train_intervals, intervals, year)
    settings = covering(settings, uc, window.last)
    typer.echo(
        f"airloop demo: use case {uc.name!r}, first champion on {window.first:%Y-%m-%d} .. "
        f"{window.split:%Y-%m-%d}, then {len(window.monitored)} {uc.cadence.name} intervals served"
        f" and monitored to {window.last:%Y-%m-%d}; home {settings.home}"
    )
    try:
        state = run_demo(settings, uc, window, trials, typer.echo)
    except DemoStopped as exc:
        typer.echo(f"the replay stopped: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in summary_lines(settings, uc, state, time.monotonic() - began):
        typer.echo(line)


def demo_window(
    uc: UseCase, start: str | None, train_intervals: int | None, intervals: int, year: bool
) -> DemoWindow:
    """The demo's intervals in the use case's cadence: the replay's first window (or
    ``train_intervals``) for the first champion, then ``intervals`` monitored (to the replay's
    end with ``year``)."""
    from airloop.core.periods import to_utc
    from airloop.demo.main import DemoWindow

    cadence = uc.cadence
    first = moment(start, "--start") if start else to_utc(uc.replay.start)  # type: ignore[union-attr]
    if train_intervals:
        bootstrap = cadence.count(first, train_intervals)
    else:
        bootstrap = cadence.intervals(first, first + uc.first_window)
    split = bootstrap[-1][1]
    if year and uc.replay is not None:
        monitored = cadence.intervals(split, to_utc(uc.replay.end))
    else:
        monitored = cadence.count(split, intervals)
    if not monitored:
        raise typer.BadParameter(f"nothing to monitor after {split:%Y-%m-%d}")
    return DemoWindow(bootstrap, monitored)


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
    profile: ProfileOpt = None,
) -> None:
    """Start the profile's whole stack until Ctrl-C or SIGTERM: Airflow, workers, MLflow, serving."""
    from airloop.data.replay import land_window
    from airloop.runtime.api import ApiClient, admin_password
    from airloop.runtime.services import Services, topology, wait_http
    from airloop.runtime.stack import set_up_home, wait_until_ready
    from airloop.usecase import active_usecases

    settings, uc = context(profile)
    set_up_home(settings, uc)
    running = active_usecases(settings)
    for each, _ in running:
        landed = any(settings.landing_root(each.name).rglob("*.*"))
        if land_replay and each.replay is not None and not landed:
            window = demo_window(each, None, None, DEMO_DAYS, year=False)
            land_window(each, settings, window.first, window.last)
    components = topology(settings, everything=True)
    pipelines = [dag_id("feature_pipeline", each, settings) for each, _ in running]
    with Services(settings, components) as services:
        try:
            wait_until_ready(settings, ApiClient(settings), services, pipelines)
            if "mlflow-ui" in components:
                wait_http(f"{settings.mlflow_ui_url}/", services)
            typer.echo(f"profile:    {settings.profile} ({', '.join(components)})")
            typer.echo(f"Airflow UI: {settings.api_base_url}")
            typer.echo(f"airloop:    {settings.api_base_url}/plugin/airloop (after login)")
            # A password the operator set stays in its variable (a terminal is often a log:
            # a journal, CI); the one generated for an embedded home is shown, to log in with.
            given = settings.airflow_admin_password is not None
            shown = "$AIRLOOP_AIRFLOW_ADMIN_PASSWORD" if given else admin_password(settings)
            typer.echo(f"login:      {settings.airflow_admin_user} / {shown}")
            typer.echo(f"MLflow UI:  {settings.mlflow_ui_url}")
            for line in usecase_hints(settings, running):
                typer.echo(line)
            typer.echo(f"logs:       {settings.logs_dir}")
            typer.echo("Ctrl-C stops everything.")
            services.watch()
        except KeyboardInterrupt:
            typer.echo("stopping everything")


def usecase_hints(settings: Settings, running: list[tuple[UseCase, str]]) -> list[str]:
    """Where each use case is served and how to run its first intervals (from another shell)."""
    endpoints = "(POST /v1/predict, /invocations; GET /ready, /metrics)"
    lines = []
    for uc, ref in running:
        if len(running) > 1:
            lines.append(
                f"use case:   {uc.name} (DAGs {dag_id('feature_pipeline', uc, settings)}, ...)"
            )
        lines.append(f"serving:    {scoped(settings, uc).serving_url}  {endpoints}")
        if uc.replay is not None:
            first = uc.cadence.label(moment(str(uc.replay.start), "replay.start"))
            option = "" if ref == settings.usecase else f"--usecase {ref} "
            lines.append(f"backfill:   airloop {option}backfill --start {first} --intervals 7")
    return lines


@app.command()
def doctor(profile: ProfileOpt = None) -> None:
    """Check each dependency of the profile from here: one line each, and the fix when it fails."""
    from airloop.runtime.doctor import diagnose
    from airloop.settings import SettingsError

    try:
        settings, _ = context(profile)
    except SettingsError as exc:
        typer.echo(f"FAIL settings                    {exc}")
        raise typer.Exit(1) from None
    typer.echo(f"ok   settings                   profile {settings.profile}, home {settings.home}")
    checks = diagnose(settings)
    for check in checks:
        typer.echo(check.line())
    if any(check.ok is False for check in checks):
        raise typer.Exit(1)
