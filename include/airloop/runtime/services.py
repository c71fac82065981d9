"""airloop's servers as child processes: started together, watched, and always stopped.

Each child runs in its own session (Ctrl-C in the terminal reaches only airloop, which then
stops them in order) and asks the kernel to send it SIGTERM if airloop itself dies, even by
SIGKILL: whatever a command starts, it ends, whichever way the command ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from airloop.core.http import answers
from airloop.core.polling import WaitTimeout, wait_until
from airloop.runtime.airflow_cli import AirflowError, airflow_bin, airflow_environ
from airloop.settings import Settings

COMPONENTS_ALL = ("api-server", "scheduler", "dag-processor", "triggerer", "serving", "mlflow-ui")
COMPONENTS_RUN = ("api-server", "scheduler", "dag-processor", "serving")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux; elsewhere a no-op)."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Services:
    """Components started as child processes, logs under ``$AIRLOOP_HOME/logs``."""

    settings: Settings
    components: Iterable[str] = COMPONENTS_RUN
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self) -> Services:
        """Start every component; each writes its log to ``logs/<component>.log``."""
        logs = self.settings.logs_dir
        logs.mkdir(parents=True, exist_ok=True)
        env = airflow_environ(self.settings)
        for name in self.components:
            with (logs / f"{name}.log").open("ab") as out:
                self.procs[name] = subprocess.Popen(
                    self.command(name),
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,  # set before exec; airloop is single-threaded here
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
        """Raise with the tail of its log when a component has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                log_file = self.settings.logs_dir / f"{name}.log"
                tail = log_file.read_text(errors="replace")[-1500:] if log_file.exists() else ""
                raise AirflowError(
                    f"airflow {name} exited with code {proc.returncode}; see {log_file}\n{tail}"
                )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every component's process group, SIGKILL what is left after ``timeout``."""
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
    try:
        wait_until(
            lambda: answers(url),
            timeout=timeout,
            what=f"{url} (see the logs in $AIRLOOP_HOME/logs)",
            on_tick=services.check_alive if services else None,
        )
    except WaitTimeout as exc:
        raise AirflowError(str(exc)) from None
