"""What several test tiers need: the user's shell, the ``airloop`` command, waits with a
deadline, small HTTP reads, and throwaway PostgreSQL databases and Redis DBs on the machine's
servers.

Each helper here replaces copies that had drifted apart (one "read until ready" loop had no
deadline); a tier's own conftest keeps what only that tier uses.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from airloop.core.http import web_url

# The airloop command of this environment, as a user's shell finds it after `make setup`.
AIRLOOP = str(Path(sys.executable).with_name("airloop"))

TRUTHY = frozenset({"1", "true", "yes"})


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this runs in CI: ``CI`` set to 1, true or yes (any case), as CI services set it."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() in TRUTHY


def user_shell(*variables: Mapping[str, str], **more: str) -> dict[str, str]:
    """A user's shell: this process's environment without the test session's own Airflow and
    airloop variables (conftest.py sets them), with ``variables`` and ``more`` on top."""
    shell = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRLOOP"))}
    for given in variables:
        shell.update(given)
    return {**shell, **more}


def wait_for(
    check: Callable[[], Any],
    what: str,
    timeout: float,
    log: Path | None = None,
    interval: float = 0.1,
) -> float:
    """Poll ``check`` until it is true; the seconds it took. Fails naming ``what`` (and quoting
    the log's tail) past ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise AssertionError(f"{what} after {timeout:.0f} s\n{tail}")
        time.sleep(interval)
    return time.monotonic() - started


def read_until(
    stream: IO[str], done: Callable[[str], bool], timeout: float, what: str
) -> list[str]:
    """Lines of a process's output up to and including the first for which ``done`` is true.

    Fails naming ``what``, with the lines read, when the stream ends first or nothing matches
    within ``timeout``. The read runs in a thread, so a process that prints nothing cannot
    hold the test past its deadline (the thread ends when the process's output closes).
    """
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in iter(stream.readline, ""):
            lines.append(line)
            if done(line):
                found.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    said = "".join(lines)[-4000:]
    if reader.is_alive():
        raise AssertionError(f"{what}: not within {timeout:.0f} s; output so far:\n{said}")
    if not found.is_set():
        raise AssertionError(f"{what}: the output ended first:\n{said}")
    return list(lines)


def get_text(url: str, timeout: float = 10.0) -> str:
    """The body of a GET, as text (a 4xx or 5xx raises ``urllib.error.HTTPError``)."""
    with urllib.request.urlopen(web_url(url), timeout=timeout) as resp:  # nosec B310 # web_url()
        return str(resp.read().decode())


def prometheus_samples(exposition: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The samples of a Prometheus text exposition by sample name, each with its labels and
    value; ``# HELP`` and ``# TYPE`` lines declare a metric but are no sample of it."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def pg_admin_engine() -> Any:
    """An autocommit engine on this machine's PostgreSQL, to create and drop test databases."""
    from sqlalchemy import create_engine

    return create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )


def free_redis_dbs(count: int) -> list[int]:
    """Empty Redis databases (1-15) on 127.0.0.1:6379 for this test run, picked from the pid on."""
    import redis

    found: list[int] = []
    for offset in range(15):
        db = 1 + (os.getpid() + offset) % 15
        if redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db).dbsize() == 0:
            found.append(db)
        if len(found) == count:
            return found
    pytest.fail("not enough empty Redis databases (1-15) on 127.0.0.1:6379 for this run")


def require_postgres(engine: Any) -> None:
    """The machine's PostgreSQL answers (else: fails in CI, skips elsewhere, naming it)."""
    from sqlalchemy import text

    from tests.conftest import require_service

    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # the driver's error says what is wrong
        require_service("PostgreSQL on 127.0.0.1:5432 (user postgres)", str(exc).splitlines()[0])


def require_redis() -> None:
    """The machine's Redis answers (else: fails in CI, skips elsewhere, naming it)."""
    import redis

    from tests.conftest import require_service

    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=3).ping()
    except redis.exceptions.ConnectionError as exc:
        require_service("Redis on 127.0.0.1:6379", str(exc))


@dataclass(frozen=True)
class Databases:
    """Databases of one test run: ``names`` by role, and the ``user[:password]@host:port``
    that reaches them (the run's own role when it has one, else ``postgres``)."""

    prefix: str
    names: dict[str, str]
    server: str

    def url(self, role: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{self.server}/{self.names[role]}"


@contextmanager
def throwaway_databases(
    tag: str, roles: Iterable[str], owner_password: str | None = None
) -> Iterator[Databases]:
    """PostgreSQL databases of this run on 127.0.0.1:5432, one per role, named
    ``airloop_<tag><pid>_<random>_<role>``; dropped at the end, whatever the tests did.

    With ``owner_password`` they belong to a login role of the run with that password (so
    URLs carry a secret, as a deployment's do), dropped too; else to ``postgres``.
    """
    from sqlalchemy import text

    engine = pg_admin_engine()
    require_postgres(engine)
    prefix = f"airloop_{tag}{os.getpid()}_{secrets.token_hex(3)}"
    names = {role: f"{prefix}_{role}" for role in roles}
    owner = f"{prefix}_owner" if owner_password is not None else None
    try:
        with engine.connect() as conn:
            if owner is not None:
                conn.execute(text(f"CREATE ROLE \"{owner}\" LOGIN PASSWORD '{owner_password}'"))
            for name in names.values():
                suffix = f' OWNER "{owner}"' if owner is not None else ""
                conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
        server = f"{owner}:{owner_password}" if owner is not None else "postgres"
        yield Databases(prefix, names, f"{server}@127.0.0.1:5432")
    finally:
        with engine.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if owner is not None:
                conn.execute(text(f'DROP ROLE IF EXISTS "{owner}"'))
        engine.dispose()


@contextmanager
def throwaway_redis_dbs(count: int) -> Iterator[list[int]]:
    """Empty Redis DBs of this run on 127.0.0.1:6379, emptied again at the end."""
    import redis

    require_redis()
    dbs = free_redis_dbs(count)
    try:
        yield dbs
    finally:
        for db in dbs:
            redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db).flushdb()


@contextmanager
def hanging_server() -> Iterator[int]:
    """A loopback port that completes connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield int(server.getsockname()[1])
