"""The ``airloop`` command: one entry point per stage, for shells, notebooks and containers."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from datetime import date, datetime, timedelta
from typing import Annotated, Any

import typer

from airloop.settings import Settings, get_settings
from airloop.usecase import UseCase, UseCaseError, load_usecase

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)

StartOpt = Annotated[
    str | None, typer.Option(help="First day (YYYY-MM-DD); default: the use case's replay start")
]
EndOpt = Annotated[
    str | None, typer.Option(help="Day after the last one (exclusive); default: replay end")
]
DaysOpt = Annotated[int | None, typer.Option(help="Number of days from --start, instead of --end")]
DEMO_DAYS = 21  # days served and monitored after the first champion


def _context() -> tuple[Settings, UseCase]:
    settings = get_settings()
    return settings, load_usecase(settings.usecase)


def _window(uc: UseCase, start: str | None, end: str | None, days: int | None) -> tuple[date, date]:
    if uc.replay is None and (start is None or (end is None and days is None)):
        raise typer.BadParameter("this use case has no replay window: give --start and --end")
    first = date.fromisoformat(start) if start else uc.replay.start  # type: ignore[union-attr]
    if days is not None:
        last = first + timedelta(days=days)
    else:
        last = date.fromisoformat(end) if end else uc.replay.end  # type: ignore[union-attr]
    if last <= first:
        raise typer.BadParameter(f"the window is empty: {first} .. {last}")
    return first, last


def _extend_replay_end(settings: Settings, uc: UseCase, last: date) -> Settings:
    """Let the DAG's end date cover a window that goes past the use case's replay end."""
    if uc.replay is not None and last > (settings.replay_end or uc.replay.end):
        os.environ["AIRLOOP_REPLAY_END"] = last.isoformat()
        get_settings.cache_clear()
        return get_settings()
    return settings


@app.command()
def setup() -> None:
    """Create the home folder, migrate Airflow's DB, register the Feast definitions."""
    settings, uc = _context()
    _setup(settings, uc)
    typer.echo(f"airloop home ready at {settings.home} (use case {uc.name!r})")


def _setup(settings: Settings, uc: UseCase) -> None:
    from airloop.features.store import apply_definitions
    from airloop.orchestration.runtime import migrate_db
    from airloop.tracking import init_tracking

    for folder in (settings.home, settings.landing_dir, settings.feast_dir, settings.mlflow_dir):
        folder.mkdir(parents=True, exist_ok=True)
    migrate_db(settings)
    apply_definitions(settings, uc)
    # MLflow announces its schema migrations and SQLAlchemy warns about MLflow's mappers.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init_tracking(settings)


@app.command()
def land(start: StartOpt = None, end: EndOpt = None, days: DaysOpt = None) -> None:
    """Replay the use case's data set into the landing zone, one partition per day."""
    from airloop.data.replay import land_window

    settings, uc = _context()
    first, last = _window(uc, start, end, days)
    written = land_window(uc, settings, first, last)
    typer.echo(f"landed {first} .. {last} (exclusive) into {settings.landing_dir}: {written}")


@app.command("run")
def run_in_process(start: StartOpt = None, end: EndOpt = None, days: DaysOpt = None) -> None:
    """Run the feature pipeline for each day in this process, without Airflow."""
    from airloop.data.intervals import daily_intervals
    from airloop.features.pipeline import run_interval

    settings, uc = _context()
    first, last = _window(uc, start, end, days)
    for lo, hi in daily_intervals(first, last):
        result = run_interval(lo, hi, uc, settings)
        typer.echo(f"{result['partition']}: {result['rows']}")


@app.command()
def backfill(
    start: StartOpt = None,
    end: EndOpt = None,
    days: DaysOpt = None,
    wait: Annotated[bool, typer.Option(help="Wait for the runs to finish")] = True,
) -> None:
    """Ask the running Airflow to run the feature pipeline for each day of a window."""
    from airloop.orchestration.runtime import ApiClient

    settings, uc = _context()
    first, last = _window(uc, start, end, days)
    client = ApiClient(settings)
    _backfill(client, first, last)
    if wait:
        outcome = _wait_for_runs(client, "feature_pipeline", first, last)
        if outcome["failed"]:
            raise typer.Exit(1)


@app.command()
def monitor(start: StartOpt = None, end: EndOpt = None, days: DaysOpt = None) -> None:
    """Ask the running Airflow to run the monitoring DAG for each day of a window, in order."""
    from airloop.monitoring.feedback import FeedbackLedger
    from airloop.monitoring.monitor import monitoring_root
    from airloop.orchestration.lifecycle import day_interval
    from airloop.orchestration.runtime import ApiClient

    settings, uc = _context()
    first, last = _window(uc, start, end, days)
    client = ApiClient(settings)
    ledger = FeedbackLedger(monitoring_root(settings, uc))
    day = first
    while day < last:
        created = client.trigger("monitoring", interval=day_interval(day))
        done = client.wait_for_run("monitoring", created["dag_run_id"])
        decision = ledger.decision_for(day_interval(day)[0]) or {}
        typer.echo(
            f"{day}: {done['state']}, {decision.get('action', '-')}"
            + (f" ({decision['detail']})" if decision.get("detail") else "")
        )
        if done["state"] != "success":
            raise typer.Exit(1)
        day += timedelta(days=1)


def _backfill(client: Any, first: date, last: date) -> None:
    from airloop.orchestration.lifecycle import queue_intervals

    days = [first + timedelta(days=i) for i in range((last - first).days)]
    queue_intervals(client, "feature_pipeline", days, "airloop backfill")
    typer.echo(f"queued feature_pipeline runs for {first} .. {last} (exclusive)")


def _wait_for_runs(
    client: Any,
    dag_id: str,
    first: date,
    last: date,
    services: Any = None,
    stall_seconds: float = 600.0,
) -> dict[str, Any]:
    """Poll the runs of a window until all finish, printing progress; stop when stuck."""
    expected = (last - first).days
    lo, hi = f"{first}T00:00:00Z", f"{last}T00:00:00Z"
    seen, last_change = None, time.monotonic()
    while True:
        if services is not None:
            services.check_alive()
        runs = [
            r
            for r in client.dag_runs(dag_id, logical_date_gte=lo, logical_date_lt=hi)
            if r.get("logical_date")
        ]
        states: dict[str, int] = {}
        for run in runs:
            states[run["state"]] = states.get(run["state"], 0) + 1
        done = states.get("success", 0) + states.get("failed", 0)
        snapshot = (done, tuple(sorted(states.items())))
        if snapshot != seen:
            seen, last_change = snapshot, time.monotonic()
            detail = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
            typer.echo(f"  [{done}/{expected}] {detail}")
        if len(runs) >= expected and done >= expected:
            break
        if time.monotonic() - last_change > stall_seconds:
            typer.echo(
                f"  no progress for {stall_seconds:.0f}s; stopping the wait (see the Airflow UI)"
            )
            break
        time.sleep(2.0)
    failed = [r for r in runs if r["state"] == "failed"]
    for run in failed:
        for ti in client.failed_tasks(dag_id, run["dag_run_id"]):
            typer.echo(f"  failed: {run['logical_date'][:10]} {ti['task_id']}", err=True)
    return {"states": states, "failed": [r["logical_date"] for r in failed]}


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
    from airloop.data.replay import land_window
    from airloop.monitoring.report import render_timeline
    from airloop.orchestration.lifecycle import Lifecycle, LifecycleError
    from airloop.orchestration.runtime import AirflowError, ApiClient, Services, wait_http

    began = time.monotonic()
    settings, uc = _context()
    if uc.replay is None and start is None:
        raise typer.BadParameter("this use case has no replay window: give --start")
    first = date.fromisoformat(start) if start else uc.replay.start  # type: ignore[union-attr]
    split = first + timedelta(days=train_days or uc.training.window.days)
    last = split + timedelta(days=days)
    if year and uc.replay is not None:
        last = uc.replay.end
    if last <= split:
        raise typer.BadParameter(f"nothing to monitor: {split} .. {last}")
    settings = _extend_replay_end(settings, uc, last)
    typer.echo(
        f"airloop demo: use case {uc.name!r}, first champion on {first} .. {split}, "
        f"then {(last - split).days} days served and monitored to {last}; home {settings.home}"
    )
    typer.echo("1/5 setting up the home (Airflow DB, Feast registry, MLflow)")
    _setup(settings, uc)
    typer.echo("2/5 landing raw partitions (replay of the data set)")
    land_window(uc, settings, first, last)
    typer.echo("3/5 starting Airflow (api-server, scheduler, dag-processor) and the serving API")
    with Services(settings) as services:
        client = ApiClient(settings)
        client.wait_healthy(services)
        for dag_id in ("feature_pipeline", "experimentation", "model_training", "monitoring"):
            client.wait_for_dag(dag_id, services)
        wait_http(f"{settings.serving_url}/health", services)
        life = Lifecycle(settings, uc, client, services, echo=typer.echo)
        try:
            typer.echo("4/5 the first champion")
            life.bootstrap(first, split, trials)
            _show_predictions(settings, uc, split)
            typer.echo("5/5 serving and monitoring, day by day (retraining when monitoring asks)")
            life.monitored_days([split + timedelta(days=i) for i in range((last - split).days)])
        except (LifecycleError, AirflowError) as exc:
            typer.echo(f"the replay stopped: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            life.timeline.save(settings.reports_dir / "timeline.json")
            page = render_timeline(
                settings, uc, life.timeline.events, settings.reports_dir / "timeline.html"
            )
    elapsed = time.monotonic() - began
    _print_summary(settings, uc, elapsed)
    _print_life(life.timeline.events, page)


def _print_life(events: list[dict[str, Any]], page: Any) -> None:
    typer.echo("the life of the model:")
    for event in events:
        if event["kind"] in ("champion", "retrain", "promoted", "gate"):
            typer.echo(f"  {event['day']}  {event['kind']:<9} {event['detail']}")
    drifts = [e for e in events if e["kind"] == "drift"]
    typer.echo(f"  {len(drifts)} monitored days breached a threshold")
    typer.echo(f"timeline:             {page}")


def _show_predictions(settings: Settings, uc: UseCase, last: date, n: int = 5) -> None:
    """Ask the live service about a few flights of the last day, as a client would."""
    from datetime import UTC

    from airloop.data.intervals import as_utc
    from airloop.features.store import EVENTS_TABLE, read_partitions
    from airloop.serving.deploy import call_service
    from airloop.serving.traffic import request_fields

    lo = as_utc(datetime.combine(last, datetime.min.time(), UTC)) - timedelta(days=1)
    events = read_partitions(settings, uc, EVENTS_TABLE, lo, lo + timedelta(days=1))
    if events is None:
        return
    fields = request_fields(uc)
    sample = events.dropna(subset=fields).head(n)
    instances = json.loads(sample[fields].to_json(orient="records"))
    answer = call_service(settings, "POST", "/v1/predict", {"instances": instances})
    typer.echo(
        f"  the service ({settings.serving_url}) answers with {answer['model']['name']} v{answer['model']['version']}:"
    )
    for event_id, pred in zip(sample["event_id"], answer["predictions"], strict=True):
        typer.echo(f"    {event_id:<40} score {pred['score']:.3f}")


def _run_and_wait(client: Any, services: Any, dag_id: str, conf: dict[str, Any]) -> None:
    run = client.trigger(dag_id, conf)
    done = client.wait_for_run(dag_id, run["dag_run_id"], services)
    typer.echo(f"  {dag_id}: {done['state']} ({run['dag_run_id']})")
    if done["state"] != "success":
        for ti in client.failed_tasks(dag_id, run["dag_run_id"]):
            typer.echo(f"  failed task: {ti['task_id']} (see its log in the Airflow UI)", err=True)
        raise typer.Exit(1)


def _print_summary(settings: Settings, uc: UseCase, elapsed: float) -> None:
    from airloop.status import collect_status

    status = collect_status(settings, uc)
    runs = (status["airflow"]["dag_runs"] or {}).get("feature_pipeline", {})
    val = status["validation"]
    typer.echo("")
    typer.echo(f"== airloop: {uc.name} ==")
    typer.echo(
        f"intervals run:        {runs.get('success', 0)} succeeded, {runs.get('failed', 0)} failed"
    )
    typer.echo(
        f"rows validated:       {val['rows_validated']:,} in {val['partitions_passed']} partitions"
    )
    typer.echo(
        f"rows quarantined:     {val['rows_quarantined']:,} in {len(val['quarantined'])} partitions"
    )
    for name, table in status["offline_store"]["tables"].items():
        typer.echo(
            f"offline {name:<20} {table['rows']:>9,} rows in {table['partitions']} partitions"
        )
    for name, count in (status["online_store"]["entities"] or {}).items():
        typer.echo(f"online  {name:<20} {count:>9,} entities")
    champion = status.get("champion")
    if champion:
        metrics = ", ".join(
            f"{k.removeprefix('test_')} {v:.3f}" for k, v in sorted(champion["metrics"].items())
        )
        lineage = champion["lineage"]
        typer.echo(f"champion:             {champion['name']} v{champion['version']} ({metrics})")
        typer.echo(f"  aliases:            {champion['aliases']}")
        for key in (
            "window_start",
            "window_end",
            "feature_service",
            "training_set_digest",
            "dag_id",
            "run_id",
            "mlflow_run_id",
            "git_commit",
            "promotion",
            "deploy",
            "retrain_request",
        ):
            if key in lineage:
                typer.echo(f"  {key + ':':<19} {lineage[key]}")
    monitoring = status["monitoring"]
    if monitoring["intervals"]:
        typer.echo(
            f"monitored intervals:  {monitoring['intervals']}, {monitoring['breaches']} breached"
            f" a threshold ({', '.join(f'{k} {v}' for k, v in monitoring['actions'].items())})"
        )
        for request in monitoring["requests"]:
            typer.echo(
                f"  {request['request_id']}: {', '.join(request['checks'])} → "
                f"v{request['version']} {request['outcome'] or request['status']}"
            )
    typer.echo(f"seconds taken:        {elapsed:.0f}")
    typer.echo("")
    typer.echo("where to look next:")
    typer.echo("  make up                  the Airflow UI with these runs")
    typer.echo("  airloop status --json    this summary as JSON")
    typer.echo(
        f"  {status['offline_store']['path']}   the offline store (Parquet, one file per interval)"
    )
    typer.echo(f"  {settings.reports_dir / 'validation'}   validation reports")
    typer.echo(
        f"  .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri}   runs, models, lineage"
    )


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """What airloop holds now: runs, validated and quarantined rows, store contents."""
    from airloop.status import collect_status

    settings, uc = _context()
    state = collect_status(settings, uc)
    if as_json:
        typer.echo(json.dumps(state, indent=2, default=str))
        return
    _print_summary(settings, uc, 0.0)


@app.command()
def train(
    start: StartOpt = None,
    end: EndOpt = None,
    days: DaysOpt = None,
    config: Annotated[
        str | None, typer.Option(help='JSON, e.g. {"family": "logistic", "params": {"C": 1.0}}')
    ] = None,
) -> None:
    """Run the training pipeline (D) in this process: train, evaluate, gate, register, promote."""
    from airloop.training.pipeline import run_training

    settings, uc = _context()
    first, last = _window(uc, start, end, days)
    result = run_training(
        first.isoformat(),
        last.isoformat(),
        json.loads(config) if config else None,
        {"trigger": "cli"},
        uc,
        settings,
    )
    typer.echo(
        json.dumps(
            {k: result[k] for k in ("trained", "evaluation", "registered", "promotion")},
            indent=2,
            default=str,
        )
    )


@app.command()
def experiment(
    start: StartOpt = None,
    end: EndOpt = None,
    days: DaysOpt = None,
    family: Annotated[str | None, typer.Option(help="Model family")] = None,
    search_space: Annotated[
        str | None, typer.Option(help='JSON, e.g. {"learning_rate": [0.05, 0.1]}')
    ] = None,
    trials: Annotated[int, typer.Option(help="Number of trials")] = 3,
) -> None:
    """Run an experiment (C) in this process, one trial after another."""
    from airloop.training.experiment import (
        plan_from_params,
        prepare_experiment,
        run_trial,
        select_best,
    )

    settings, uc = _context()
    first, last = _window(uc, start, end, days)
    params: dict[str, Any] = {
        "window_start": first.isoformat(),
        "window_end": last.isoformat(),
        "n_trials": trials,
    }
    if family:
        params["model_family"] = family
    if search_space:
        params["search_space"] = json.loads(search_space)
    lineage = {"trigger": "cli"}
    prepared = prepare_experiment(params, lineage, uc, settings)
    results = [run_trial(prepared, t, lineage, uc, settings) for t in plan_from_params(params, uc)]
    typer.echo(json.dumps(select_best(prepared, results, uc, settings), indent=2))


@app.command()
def evaluate(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of a trained model")],
    start: StartOpt = None,
    end: EndOpt = None,
    days: DaysOpt = None,
) -> None:
    """Evaluate a trained model (and the champion) on the window's held-out time slice."""
    from airloop.training.pipeline import evaluate_model, prepare_training_set

    settings, uc = _context()
    first, last = _window(uc, start, end, days)
    ts = prepare_training_set(
        params={"window_start": first.isoformat(), "window_end": last.isoformat()},
        usecase=uc,
        settings=settings,
    )
    result = evaluate_model(ts, {"run_id": run_id}, uc, settings)
    typer.echo(json.dumps(result, indent=2, default=str))


@app.command()
def rollback(
    reason: Annotated[str, typer.Option(help="Why: recorded on both versions")],
    who: Annotated[str, typer.Option(help="Who: recorded on both versions")] = os.environ.get(
        "USER", "unknown"
    ),
) -> None:
    """Put the previous champion back, recording who and why; the service follows the alias."""
    from airloop.registry.models import RollbackError
    from airloop.registry.models import rollback as do_rollback
    from airloop.serving.deploy import call_service, service_alive

    settings, uc = _context()
    try:
        result = do_rollback(settings, uc, reason, who)
    except RollbackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if service_alive(settings):
        call_service(settings, "POST", "/admin/reload")
    typer.echo(f"{result['model']}: champion v{result['from']} → v{result['to']} ({who}: {reason})")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (default: AIRLOOP_SERVING_PORT, 8300)")] = 0,
    poll: Annotated[float, typer.Option(help="Seconds between checks of the champion alias")] = 5.0,
) -> None:
    """Serve the champion: /v1/predict (with online features), /invocations, /health, /ready, /metrics."""
    import uvicorn

    from airloop.serving.app import create_app

    settings, uc = _context()
    uvicorn.run(
        create_app(settings, uc, poll_seconds=poll),
        host=host,
        port=port or settings.serving_port,
        log_level="warning",
    )


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
    from airloop.orchestration.runtime import (
        COMPONENTS_ALL,
        ApiClient,
        Services,
        admin_password,
        wait_http,
    )

    settings, uc = _context()
    _setup(settings, uc)
    landed = settings.landing_dir.exists() and any(settings.landing_dir.rglob("*.csv"))
    if land_replay and uc.replay is not None and not landed:
        first = uc.replay.start
        land_window(uc, settings, first, first + uc.training.window + timedelta(days=DEMO_DAYS))
    services = Services(settings, COMPONENTS_ALL).start()
    try:
        client = ApiClient(settings)
        client.wait_healthy(services)
        client.wait_for_dag("feature_pipeline", services)
        wait_http(f"{settings.serving_url}/health", services)
        wait_http(f"http://127.0.0.1:{settings.mlflow_ui_port}/", services)
        typer.echo(f"Airflow UI: {settings.api_base_url}")
        typer.echo(f"login:      {settings.airflow_admin_user} / {admin_password(settings)}")
        typer.echo(f"MLflow UI:  http://127.0.0.1:{settings.mlflow_ui_port}")
        typer.echo(
            f"serving:    {settings.serving_url}  (POST /v1/predict, /invocations; GET /ready, /metrics)"
        )
        typer.echo(f"logs:       {settings.home / 'logs'}")
        typer.echo("backfill:   airloop backfill --start 2013-01-01 --days 7   (in another shell)")
        typer.echo("Ctrl-C stops everything.")
        while True:
            services.check_alive()
            time.sleep(2.0)
    except KeyboardInterrupt:
        typer.echo("stopping Airflow")
    finally:
        services.stop()


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def airflow(ctx: typer.Context) -> None:
    """Run any Airflow CLI command with airloop's environment (e.g. `airloop airflow dags list`)."""
    from airloop.orchestration.runtime import airflow_bin, airflow_environ

    settings = get_settings()
    os.execvpe(airflow_bin(), [airflow_bin(), *ctx.args], airflow_environ(settings))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def feast(ctx: typer.Context) -> None:
    """Run the Feast CLI on ``feature_repo/`` with airloop's stores (e.g. `airloop feast plan`)."""
    from pathlib import Path

    from airloop.features.repo import feast_cli_env
    from airloop.settings import _checkout_root

    root = _checkout_root() or Path.cwd()
    env = {**os.environ, **feast_cli_env()}
    feast_bin = str(Path(sys.executable).with_name("feast"))
    os.execvpe(feast_bin, [feast_bin, "--chdir", str(root / "feature_repo"), *ctx.args], env)


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.basicConfig(
        level=os.environ.get("AIRLOOP_LOG_LEVEL", "WARNING"),
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    try:
        app()
    except UseCaseError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
