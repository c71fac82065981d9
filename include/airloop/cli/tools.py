"""Airflow's and Feast's own CLIs, run with airloop's environment and stores."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from airloop.cli.common import app
from airloop.settings import get_settings

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command(context_settings=PASS_THROUGH)
def airflow(ctx: typer.Context) -> None:
    """Run any Airflow command with airloop's environment (`airloop airflow dags list`, and
    each component in a container: `airloop airflow scheduler`)."""
    from airloop.runtime.airflow_cli import airflow_bin, airflow_environ, prepare_airflow_home

    settings = get_settings()
    prepare_airflow_home(settings)
    argv = [airflow_bin(), *ctx.args]
    env = airflow_environ(settings)
    os.execvpe(argv[0], argv, env)  # nosec B606 # exec of an argument list, no shell


@app.command()
def worker(
    name: Annotated[
        str | None, typer.Option(help="Worker name, unique per host (default: worker-<random>)")
    ] = None,
    log_port: Annotated[
        int | None,
        typer.Option(help="Its log server's port (default: AIRLOOP_AIRFLOW_WORKER_LOG_PORT)"),
    ] = None,
    log_server: Annotated[
        bool,
        typer.Option(help="Serve task logs; --no-log-server when they are on a shared volume"),
    ] = True,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 0 when the worker started here answers a Celery ping"),
    ] = False,
) -> None:
    """A Celery worker of the production profile, named so its tasks say which worker ran them."""
    from airloop.runtime.airflow_cli import airflow_environ, prepare_airflow_home
    from airloop.runtime.services import worker_invocation, worker_ping

    settings = get_settings()
    name_file = settings.home / "worker-name"  # what --check pings (a container's healthcheck)
    if check:
        argv = worker_ping(name_file.read_text().strip())
        env = airflow_environ(settings)
        os.execvpe(argv[0], argv, env)  # nosec B606 # exec of an argument list, no shell
    prepare_airflow_home(settings)
    name = name or f"worker-{secrets.token_hex(3)}"
    name_file.write_text(name)
    port = (log_port or settings.airflow_worker_log_port) if log_server else None
    argv, env = worker_invocation(settings, name, port)
    env = {**airflow_environ(settings), **env}
    os.execvpe(argv[0], argv, env)  # nosec B606 # exec of an argument list, no shell


@app.command("tracking-server")
def tracking_server() -> None:
    """The MLflow tracking server of the production profile: PostgreSQL store, served artifacts,
    on the tracking URI's host and port (AIRLOOP_MLFLOW_BACKEND_STORE_URI, _TRACKING_URI)."""
    from airloop.runtime.services import mlflow_server_command

    argv = mlflow_server_command(get_settings(), Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    os.execvpe(argv[0], argv, env)  # nosec B606 # exec of an argument list, no shell


@app.command(context_settings=PASS_THROUGH)
def feast(ctx: typer.Context) -> None:
    """Run the Feast CLI on ``feature_repo/`` with airloop's stores (e.g. `airloop feast plan`)."""
    from airloop.core.paths import checkout_root
    from airloop.features.repo import feast_cli_env

    root = checkout_root() or Path.cwd()
    env = {**os.environ, **feast_cli_env()}
    feast_bin = str(Path(sys.executable).with_name("feast"))
    argv = [feast_bin, "--chdir", str(root / "feature_repo"), *ctx.args]
    os.execvpe(feast_bin, argv, env)  # nosec B606 # exec of an argument list, no shell
