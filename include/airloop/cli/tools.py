"""Airflow's and Feast's own CLIs, run with airloop's environment and stores."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from airloop.cli.common import app
from airloop.settings import get_settings

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command(context_settings=PASS_THROUGH)
def airflow(ctx: typer.Context) -> None:
    """Run any Airflow CLI command with airloop's environment (e.g. `airloop airflow dags list`)."""
    from airloop.runtime.airflow_cli import airflow_bin, airflow_environ

    os.execvpe(airflow_bin(), [airflow_bin(), *ctx.args], airflow_environ(get_settings()))


@app.command(context_settings=PASS_THROUGH)
def feast(ctx: typer.Context) -> None:
    """Run the Feast CLI on ``feature_repo/`` with airloop's stores (e.g. `airloop feast plan`)."""
    from airloop.core.paths import checkout_root
    from airloop.features.repo import feast_cli_env

    root = checkout_root() or Path.cwd()
    env = {**os.environ, **feast_cli_env()}
    feast_bin = str(Path(sys.executable).with_name("feast"))
    os.execvpe(feast_bin, [feast_bin, "--chdir", str(root / "feature_repo"), *ctx.args], env)
