"""Servers the reliability tier owns, so it may stop them: a PostgreSQL cluster made by
``initdb`` and run by ``pg_ctl``, a ``redis-server``, an MLflow tracking server and the serving
API (``airloop tracking-server``, ``airloop serve``), each on a free port of 127.0.0.1.

The machine's own PostgreSQL (5432) and Redis (6379) are never touched. Each server runs in a
session of its own (a fault stops the whole process group), with its output in a log file
that a failing test quotes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airloop.core.http import probe
from tests.conftest import running
from tests.support import AIRLOOP, wait_for

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop_group(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Stop a process and everything in its session; SIGKILL whatever outlives ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):  # workers left behind by the leader
        os.killpg(proc.pid, signal.SIGKILL)


def missing_tools() -> str | None:
    """What this tier cannot run without, or None."""
    needed = [PG_BIN / "initdb", PG_BIN / "pg_ctl", Path(shutil.which("redis-server") or "/nx")]
    absent = [str(p) for p in needed if not p.exists()]
    if absent:
        return f"not installed: {', '.join(absent)} (Debian: postgresql-15, redis-server)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser (to run PostgreSQL as the postgres user; it refuses root)"
    return None


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster of the test's own, trust authentication on 127.0.0.1 only.

    As root, every PostgreSQL program runs as the ``postgres`` user (the server refuses to run
    as root), in a folder that user owns.
    """

    port: int = field(default_factory=free_port)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="airloop-pg-")))

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def _run(self, *argv: str, timeout: float = 120) -> None:
        as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*as_owner, *argv], capture_output=True, text=True, timeout=timeout, cwd=self.folder
        )
        assert done.returncode == 0, f"{' '.join(argv)}: {done.stdout}{done.stderr}"

    def create(self) -> PostgresCluster:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        self.start()
        return self

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder}"
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        """A fast shutdown: every session is ended, open transactions are rolled back."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self) -> Any:
        """An autocommit engine on the cluster's ``postgres`` database (no pool: a restart
        leaves it nothing stale)."""
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        return create_engine(
            self.url("postgres", "postgresql+psycopg2"),
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
        )

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """One statement on a new connection; its rows."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        engine = create_engine(
            self.url(database, "postgresql+psycopg2"),
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
        )
        try:
            with engine.connect() as conn:
                result = conn.execute(text(statement))
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            engine.dispose()

    def terminate_backends(self, databases: list[str]) -> int:
        """``pg_terminate_backend`` of every connection to these databases; how many ended."""
        names = ", ".join(f"'{d}'" for d in databases)
        rows = self.sql(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            f" WHERE datname IN ({names}) AND pid <> pg_backend_pid()"
        )
        return int(rows[0][0])


@dataclass
class RedisServer:
    """A ``redis-server`` of the test's own on 127.0.0.1, no automatic snapshots, no AOF.

    :meth:`snapshot` writes ``dump.rdb`` (``SAVE``), which a start on the same folder loads:
    a Redis that persists by snapshots, crashed and started again.
    """

    port: int = field(default_factory=free_port)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="airloop-redis-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / "redis.log"

    def start(self) -> float:
        argv = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
            "--dbfilename",
            "dump.rdb",
            "--logfile",
            str(self.log),
        ]
        self.proc = subprocess.Popen(argv, start_new_session=True)
        return wait_for(self.ping, f"redis-server did not answer on {self.port}", 30, self.log)

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=2)

    def ping(self) -> bool:
        import redis

        try:
            return bool(self.client().ping())
        except redis.exceptions.ConnectionError:
            return False

    def snapshot(self) -> None:
        self.client().save()

    def crash(self) -> None:
        """``kill -9``: no shutdown, no save."""
        assert self.proc is not None
        stop_group(self.proc, signal.SIGKILL)
        wait_for(lambda: not listening(self.port), f"port {self.port} still open", 10)

    def pause(self) -> None:
        """``SIGSTOP``: the kernel still accepts connections; nothing answers them."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)
        wait_for(self.ping, f"redis-server did not answer on {self.port}", 30, self.log)

    def destroy(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class AirloopServer:
    """A long-running ``airloop`` command (``tracking-server``, ``serve``) in a session of its
    own, ready when ``ready_url`` answers 2xx."""

    argv: list[str]
    env: dict[str, str]
    ready_url: str
    log: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> float:
        """Start it and wait until it is ready; the seconds that took."""
        assert not listening(self.port), f"something already listens on {self.port}"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [AIRLOOP, *self.argv], env=self.env, stdout=out, stderr=out, start_new_session=True
            )
        proc = self.proc

        def ready() -> bool:
            assert proc.poll() is None, f"{self.argv[0]} exited: {self.log.read_text()[-3000:]}"
            return probe(self.ready_url, timeout=5) is None

        return wait_for(ready, f"{' '.join(self.argv)} was not ready", timeout, self.log)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop it and its workers; wait until its port is closed."""
        assert self.proc is not None
        pid = self.proc.pid
        stop_group(self.proc, sig)
        wait_for(lambda: not running(pid), f"{self.argv[0]} (pid {pid}) still running", 30)
        wait_for(lambda: not listening(self.port), f"port {self.port} still open", 30)

    def destroy(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, signal.SIGKILL)
