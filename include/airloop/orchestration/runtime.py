"""Running Airflow for airloop: its components as processes, and a small REST client.

Everything goes through Airflow's own CLI and public REST API (v2), so the same code drives
the embedded stack and a remote production deployment.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airloop.settings import Settings

log = logging.getLogger(__name__)

COMPONENTS_ALL = ("api-server", "scheduler", "dag-processor", "triggerer", "serving", "mlflow-ui")
COMPONENTS_RUN = ("api-server", "scheduler", "dag-processor", "serving")
TERMINAL = {"success", "failed"}


class AirflowError(RuntimeError):
    """Airflow did not do what airloop asked; the message says what and where to look."""


def airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def airflow_environ(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(settings.airflow_env())
    env["AIRLOOP_SERVING_PORT"] = str(settings.serving_port)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return env


def run_airflow_cli(
    settings: Settings, args: list[str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    """One Airflow CLI call with airloop's environment."""
    proc = subprocess.run(
        [airflow_bin(), *args], env=airflow_environ(settings), capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AirflowError(f"`airflow {' '.join(args)}` failed:\n{proc.stderr[-2000:]}")
    return proc


def migrate_db(settings: Settings) -> None:
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    run_airflow_cli(settings, ["db", "migrate"])
    run_airflow_cli(
        settings,
        ["pools", "set", "airloop_online_store", "1", "Writers to the Feast online store"],
    )


@dataclass
class Services:
    """Airflow components started as child processes, logs under ``$AIRLOOP_HOME/logs``."""

    settings: Settings
    components: Iterable[str] = COMPONENTS_RUN
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self) -> Services:
        logs = self.settings.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = airflow_environ(self.settings)
        for name in self.components:
            out = (logs / f"{name}.log").open("ab")
            self.procs[name] = subprocess.Popen(
                self.command(name),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def command(self, name: str) -> list[str]:
        """The command line of a component: Airflow's own, the serving API, the MLflow UI."""
        bin_dir = Path(sys.executable).parent
        if name == "serving":
            return [str(bin_dir / "airloop"), "serve", "--host", self.settings.serving_host]
        if name == "mlflow-ui":
            return [
                str(bin_dir / "mlflow"),
                "ui",
                "--backend-store-uri",
                self.settings.tracking_uri,
                "--default-artifact-root",
                self.settings.mlflow_artifact_root,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.settings.mlflow_ui_port),
                "--workers",
                "1",
            ]
        return [airflow_bin(), name]

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                log_file = self.settings.home / "logs" / f"{name}.log"
                tail = log_file.read_text(errors="replace")[-1500:] if log_file.exists() else ""
                raise AirflowError(
                    f"airflow {name} exited with code {proc.returncode}; see {log_file}\n{tail}"
                )

    def stop(self, timeout: float = 30.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def __enter__(self) -> Services:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_http(url: str, services: Services | None = None, timeout: float = 180.0) -> None:
    """Wait until a URL answers 2xx (a component that is not Airflow: serving, MLflow UI)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if services:
            services.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if 200 <= resp.status < 300:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(1.0)
    raise AirflowError(
        f"{url} did not answer within {timeout:.0f}s; see the logs in $AIRLOOP_HOME/logs"
    )


def admin_password(settings: Settings) -> str | None:
    path = settings.airflow_home / "simple_auth_manager_passwords.json.generated"
    if not path.exists():
        return None
    return json.loads(path.read_text()).get(settings.airflow_admin_user)


class ApiClient:
    """Airflow's public REST API (v2), authenticated with the simple auth manager's admin."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = settings.api_base_url
        self._token: str | None = None

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token()}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise AirflowError(f"{method} {path} → HTTP {exc.code}: {detail}") from None
        return json.loads(raw) if raw else None

    def token(self) -> str:
        if self._token is None:
            password = admin_password(self.settings)
            if password is None:
                raise AirflowError("no admin password yet: is the api-server running?")
            out = self._request(
                "POST",
                "/auth/token",
                {"username": self.settings.airflow_admin_user, "password": password},
                auth=False,
            )
            self._token = out["access_token"]
        return self._token

    def healthy(self) -> bool:
        try:
            health = self._request("GET", "/api/v2/monitor/health", auth=False)
        except (OSError, AirflowError):
            return False
        return health.get("metadatabase", {}).get("status") == "healthy" and (
            health.get("scheduler", {}).get("status") == "healthy"
        )

    def wait_healthy(self, services: Services | None = None, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if services:
                services.check_alive()
            if self.healthy() and admin_password(self.settings):
                return
            time.sleep(1.0)
        raise AirflowError(
            f"Airflow was not healthy after {timeout:.0f}s; see {self.settings.home / 'logs'}"
        )

    def wait_for_dag(
        self, dag_id: str, services: Services | None = None, timeout: float = 180.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if services:
                services.check_alive()
            try:
                return self._request("GET", f"/api/v2/dags/{dag_id}")
            except AirflowError as exc:
                if "HTTP 404" not in str(exc):
                    raise
            time.sleep(1.0)
        raise AirflowError(
            f"DAG {dag_id!r} was not parsed after {timeout:.0f}s; see the dag-processor log"
        )

    def dag_runs(self, dag_id: str, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in {"limit": "1000", **filters}.items())
        return self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns?{query}")["dag_runs"]

    def trigger(
        self,
        dag_id: str,
        conf: dict[str, Any] | None = None,
        interval: tuple[datetime, datetime] | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """A manual run; with ``interval`` it owns exactly that data interval, like a scheduled run."""
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if interval is not None:
            body["logical_date"] = interval[0].isoformat()
            body["data_interval_start"] = interval[0].isoformat()
            body["data_interval_end"] = interval[1].isoformat()
        if note:
            body["note"] = note
        return self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)

    def set_note(self, dag_id: str, run_id: str, note: str) -> None:
        self._request("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", {"note": note})

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def wait_for_run(
        self, dag_id: str, run_id: str, services: Services | None = None, timeout: float = 900.0
    ) -> dict[str, Any]:
        """Poll one run until it succeeds or fails."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if services:
                services.check_alive()
            run = self.dag_run(dag_id, run_id)
            if run["state"] in TERMINAL:
                return run
            time.sleep(0.5)
        raise AirflowError(f"{dag_id} run {run_id} did not finish within {timeout:.0f}s")

    def failed_tasks(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        out = self._request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?state=failed"
        )
        return out["task_instances"]
