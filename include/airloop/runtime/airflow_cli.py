"""Airflow's CLI with airloop's environment: one place that knows how to call it."""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404 # Airflow's CLI, with argument lists, never a shell
import sys
from pathlib import Path

from airloop.core.files import write_text
from airloop.settings import Settings


class AirflowError(RuntimeError):
    """Airflow did not do what airloop asked; the message says what and where to look."""


class ComponentDied(AirflowError):
    """A component of the stack exited past its restarts: the stack is (was) up, and the
    component's log, quoted in the message, says why it stopped."""


def airflow_bin() -> str:
    """The ``airflow`` executable beside this Python, else the one on PATH."""
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def airflow_environ(settings: Settings) -> dict[str, str]:
    """This process's environment with the settings every Airflow component must share."""
    env = dict(os.environ)
    env.update(settings.airflow_env())
    env["AIRLOOP_SERVING_PORT"] = str(settings.serving_port)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env.update(settings.thread_env())
    return env


def run_airflow_cli(
    settings: Settings, args: list[str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    """One Airflow CLI call with airloop's environment; a failure raises with its stderr."""
    proc = subprocess.run(  # nosec B603 # airflow's own arguments, no shell
        [airflow_bin(), *args], env=airflow_environ(settings), capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AirflowError(f"`airflow {' '.join(args)}` failed:\n{proc.stderr[-2000:]}")
    return proc


ONLINE_STORE_POOL = "airloop_online_store"  # the online store's writers (Settings.online_writers)


def prepare_airflow_home(settings: Settings) -> None:
    """The home Airflow's components start from; in production, the admin's password file
    written from ``AIRLOOP_AIRFLOW_ADMIN_PASSWORD`` (the embedded api-server generates one)."""
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    if settings.airflow_admin_password is not None:
        password = settings.airflow_admin_password.get_secret_value()
        write_text(
            settings.admin_passwords_file, json.dumps({settings.airflow_admin_user: password})
        )


def migrate_db(settings: Settings) -> None:
    """Create or upgrade Airflow's metadata DB, and the pool online-store writers share."""
    prepare_airflow_home(settings)
    run_airflow_cli(settings, ["db", "migrate"])
    slots = str(settings.online_writers)
    run_airflow_cli(
        settings, ["pools", "set", ONLINE_STORE_POOL, slots, "Writers to the Feast online store"]
    )
