"""airloop's servers as child processes: started together, watched, and always stopped.

Each child runs in its own session (Ctrl-C in the terminal reaches only airloop, which then
stops them in order) and asks the kernel to send it SIGTERM if airloop itself dies, even by
SIGKILL: whatever a command starts, it ends, whichever way the command ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess  # nosec B404 # the stack's components, argument lists, never a shell
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from airloop.core.http import answers
from airloop.core.polling import WaitTimeout, wait_until
from airloop.runtime.airflow_cli import (
    AirflowError,
    ComponentDied,
    airflow_bin,
    airflow_environ,
    prepare_airflow_home,
)
from airloop.settings import Settings, SettingsError
from airloop.usecase import active_usecases

log = logging.getLogger(__name__)

COMPONENTS_ALL = ("api-server", "scheduler", "dag-processor", "triggerer", "serving", "mlflow-ui")
COMPONENTS_RUN = ("api-server", "scheduler", "dag-processor", "serving")
# No component keeps state of its own outside its stores: Airflow's loops and API in the
# metadata database, the serving API's champion in the registry, the MLflow servers in the
# tracking store, a Celery worker's tasks in the broker and Airflow's database (Airflow
# retries a task whose worker died). So one that dies (SQLite's "database is locked" has ended a
# scheduler in a long replay; a kill -9 of the serving API; PostgreSQL ending its connections)
# is started again, as compose's `restart: unless-stopped` does: at once the first time, then
# after a delay that doubles from RESTART_BACKOFF_SECONDS to at most RESTART_BACKOFF_MAX_SECONDS
# (systemd's RestartSec, RestartSteps and RestartMaxDelaySec), so a database that is away for
# a while is waited for rather than hammered; up to MAX_RESTARTS times each within
# RESTART_WINDOW_SECONDS (systemd's StartLimitBurst in StartLimitIntervalSec: about five
# minutes of a component dying over and over); past them the command stops and says which
# component, with its log's tail. A component that has not died for a window has its restarts
# back: a stack up for weeks survives a death a day.
MAX_RESTARTS = 10
RESTART_WINDOW_SECONDS = 600.0
RESTART_BACKOFF_SECONDS = 2.0
RESTART_BACKOFF_MAX_SECONDS = 60.0
WATCH_SECONDS = 2.0  # between two checks of `airloop up`'s supervisor
_PR_SET_PDEATHSIG = 1
# Airflow's log servers (a Celery worker's, the triggerer's, a LocalExecutor scheduler's) bind
# every interface, with no setting to change it (airflow.utils.serve_logs binds host "").
# `airloop up` runs every component on one host, where the api-server reads task logs from
# Airflow's home, so it starts none: nothing it runs listens beyond loopback.
SERVES_LOGS = ("scheduler", "triggerer")


def serving_components(settings: Settings) -> tuple[str, ...]:
    """One serving API per use case: ``serving`` for the first, ``serving-<name>`` for each
    next one, on the next port (``airloop.usecase.active``)."""
    names = [uc.name for uc, _ in active_usecases(settings)]
    return ("serving", *(f"serving-{name}" for name in names[1:]))


def describe(name: str) -> str:
    """A component as a person knows it: ``the serving API (serving)``, ``Airflow's
    scheduler``, ``Celery worker worker-1``, ``the MLflow tracking server (mlflow)``."""
    if name == "serving" or name.startswith("serving-"):
        return f"the serving API ({name})"
    if name.startswith("worker-"):
        return f"Celery worker {name}"
    if name == "mlflow":
        return "the MLflow tracking server (mlflow)"
    if name == "mlflow-ui":
        return "the MLflow UI (mlflow-ui)"
    return f"Airflow's {name}"


def topology(settings: Settings, everything: bool = False) -> tuple[str, ...]:
    """The components to run: the profile's topology (``everything``: with the UIs).

    Production: api-server, scheduler, dag-processor, triggerer, the Celery workers, the MLflow
    tracking server (when its URI is on this host) and the serving APIs.
    """
    return _with_servings(settings, _topology(settings, everything))


def _with_servings(settings: Settings, components: tuple[str, ...]) -> tuple[str, ...]:
    at = components.index("serving")
    return (*components[:at], *serving_components(settings), *components[at + 1 :])


def _topology(settings: Settings, everything: bool) -> tuple[str, ...]:
    if settings.profile == "production":
        workers = tuple(f"worker-{i}" for i in range(1, settings.celery_workers + 1))
        mlflow = ("mlflow",) if tracking_server_is_local(settings) else ()
        return (
            "api-server",
            "scheduler",
            "dag-processor",
            "triggerer",
            *workers,
            *mlflow,
            "serving",
        )
    return COMPONENTS_ALL if everything else COMPONENTS_RUN


def tracking_server_is_local(settings: Settings) -> bool:
    """Whether the tracking URI names this machine, so ``airloop up`` runs the server."""
    host = urlsplit(settings.tracking_uri).hostname
    return host in ("127.0.0.1", "localhost", "::1")


def group_alive(pgid: int) -> bool:
    """Whether any process of a process group is still running."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    restarts: dict[str, int] = field(default_factory=dict)  # all of them, for the run's profile
    env: dict[str, str] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    restarted_at: dict[str, list[float]] = field(default_factory=dict)  # within the window
    backoff_seconds: float = RESTART_BACKOFF_SECONDS
    dead_since: dict[str, float] = field(default_factory=dict)  # seen dead, not started again

    def restart_delay(self, recent: int) -> float:
        """How long a component that died waits before its next start, after ``recent``
        restarts within the window: none the first time, then doubling to the cap."""
        if recent == 0:
            return 0.0
        return min(RESTART_BACKOFF_MAX_SECONDS, self.backoff_seconds * 2 ** (recent - 1))

    def recent_restarts(self, name: str) -> int:
        """The component's restarts within the last ``RESTART_WINDOW_SECONDS``: its budget used."""
        since = self.clock() - RESTART_WINDOW_SECONDS
        kept = [at for at in self.restarted_at.get(name, []) if at > since]
        self.restarted_at[name] = kept
        return len(kept)

    def start(self) -> Services:
        """Start every component; each writes its log to ``logs/<component>.log``."""
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        prepare_airflow_home(self.settings)
        self.env = airflow_environ(self.settings)
        for name in self.components:
            self.spawn(name)
        return self

    def spawn(self, name: str) -> None:
        """Start one component, its output appended to its log."""
        with self.log_file(name).open("ab") as out:
            self.procs[name] = subprocess.Popen(  # nosec B603 # command(): no shell
                self.command(name),
                env=self.env or None,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # set before exec; airloop is single-threaded here
            )

    def log_file(self, name: str) -> Path:
        """Where a component's output goes: ``logs/<component>.log``."""
        return self.settings.logs_dir / f"{name}.log"

    def command(self, name: str) -> list[str]:
        """The command line of a component: Airflow's own, a Celery worker, the serving API,
        the MLflow UI (embedded) or tracking server (production)."""
        bin_dir = Path(sys.executable).parent
        settings = self.settings
        if name in (servings := serving_components(settings)):
            slot = servings.index(name)  # the use case's place: its reference and its port
            return [
                str(bin_dir / "airloop"),
                "--usecase",
                settings.usecase_refs[slot],
                "serve",
                "--host",
                settings.serving_host,
                "--port",
                str(settings.usecase_serving_port(slot)),
            ]
        if name.startswith("worker-"):
            return [str(bin_dir / "airloop"), "worker", "--name", name, "--no-log-server"]
        if name == "mlflow":
            return [str(bin_dir / "airloop"), "tracking-server"]
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
        return [airflow_bin(), name, *(["--skip-serve-logs"] if name in SERVES_LOGS else [])]

    def check_alive(self) -> None:
        """Start again any component that has exited, once its delay has passed
        (:meth:`restart_delay`), ``MAX_RESTARTS`` times each within ``RESTART_WINDOW_SECONDS``
        (noted in its log and logged); raise, naming it, with the tail of its log, past them."""
        for name, proc in list(self.procs.items()):
            if proc.poll() is None:
                continue
            recent = self.recent_restarts(name)
            if recent < MAX_RESTARTS:
                died = self.dead_since.setdefault(name, self.clock())
                if self.clock() - died >= self.restart_delay(recent):
                    del self.dead_since[name]
                    self.restart(name, proc.returncode, waited=self.clock() - died)
                continue
            log_file = self.log_file(name)
            tail = log_file.read_text(errors="replace")[-1500:] if log_file.exists() else ""
            raise ComponentDied(
                f"{describe(name)} exited with code {proc.returncode} after {recent} restarts"
                f" in {RESTART_WINDOW_SECONDS / 60:.0f} minutes (at most {MAX_RESTARTS});"
                f" see {log_file}\n{tail}"
            )

    def watch(self, interval: float = WATCH_SECONDS) -> None:
        """Check the components every ``interval`` seconds until interrupted (Ctrl-C,
        SIGTERM) or one is past its restarts: the loop of `airloop up`."""
        while True:
            self.check_alive()
            time.sleep(interval)

    def restart(self, name: str, code: int, waited: float = 0.0) -> None:
        """End what is left of the component's process group (an executor's workers, a
        server's), then start it again."""
        old = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(old.pid, signal.SIGKILL)
        old.wait()
        deadline = time.monotonic() + 10.0  # until its port is free
        while group_alive(old.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self.restarted_at.setdefault(name, []).append(self.clock())
        after = f" after {waited:.0f} s" if waited >= 1 else ""
        note = (
            f"airloop: {describe(name)} exited with code {code}; starting it again{after}"
            f" ({self.recent_restarts(name)} of {MAX_RESTARTS} restarts"
            f" in {RESTART_WINDOW_SECONDS / 60:.0f} minutes)"
        )
        log.warning(note)
        with self.log_file(name).open("a") as out:
            out.write(f"\n{note}\n")
        self.spawn(name)

    def processor_seconds(self) -> dict[str, dict[str, float]]:
        """Each component's processor time so far, its own and that of the processes it
        started (running, or ended and waited for): where a run's processor time went. For
        the scheduler, the second is its executor's: the workers and the tasks they ran."""
        import psutil

        spent: dict[str, dict[str, float]] = {}
        for name, proc in self.procs.items():
            try:
                root = psutil.Process(proc.pid)
                own = root.cpu_times()
                started = own.children_user + own.children_system
                for child in root.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        t = child.cpu_times()
                        started += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                continue  # it has ended: check_alive says why
            spent[name] = {"own": round(own.user + own.system, 1), "started": round(started, 1)}
        return spent

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every component's process group and wait until each group is gone (the
        component and whatever it started); SIGKILL what is left after ``timeout``."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            while group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if group_alive(proc.pid):
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


def worker_invocation(
    settings: Settings, name: str, log_port: int | None
) -> tuple[list[str], dict[str, str]]:
    """``airflow celery worker`` as one named worker, and what its environment adds.

    Its Celery node name and the host name Airflow records for its tasks carry ``name``, so
    several workers on one host are told apart; ``log_port`` is its own log server's port
    (None: no log server, the logs are read from a volume the api-server shares).
    """
    argv = [
        airflow_bin(),
        "celery",
        "worker",
        "--celery-hostname",
        f"{name}@%h",
        "--concurrency",
        str(settings.celery_concurrency),
    ]
    env = {
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airloop.runtime.hostname.component_hostname",
        "AIRLOOP_COMPONENT_HOSTNAME": f"{name}.{socket.gethostname()}",
    }
    if log_port is None:
        argv.append("--skip-serve-logs")
    else:
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(log_port)
    return argv, env


def worker_ping(name: str) -> list[str]:
    """Celery's ping of one worker node (``name@host``): a worker's health."""
    celery = str(Path(sys.executable).with_name("celery"))
    app = "airflow.providers.celery.executors.celery_executor.app"
    return [
        celery,
        "--app",
        app,
        "inspect",
        "ping",
        "--timeout",
        "10",
        "-d",
        f"{name}@{socket.gethostname()}",
    ]


def mlflow_server_command(settings: Settings, bin_dir: Path) -> list[str]:
    """``mlflow server`` on PostgreSQL, serving artifacts from the shared root, on the tracking
    URI's port; hosts allowed by name and address so clients in containers reach it too."""
    if settings.mlflow_backend_store_uri is None:
        raise SettingsError(
            "AIRLOOP_MLFLOW_BACKEND_STORE_URI: the tracking server's store"
            " (postgresql://...), needed to run the MLflow server"
        )
    address = urlsplit(settings.tracking_uri)
    port = str(address.port or 5000)
    return [
        str(bin_dir / "mlflow"),
        "server",
        "--backend-store-uri",
        settings.mlflow_backend_store_uri.get_secret_value(),
        "--serve-artifacts",
        "--artifacts-destination",
        settings.mlflow_artifacts,
        "--host",
        address.hostname or "127.0.0.1",
        "--port",
        port,
        "--workers",
        "1",
        "--allowed-hosts",
        ",".join(
            dict.fromkeys(f"{h}:{port}" for h in ("127.0.0.1", "localhost", address.hostname))
        ),
    ]
