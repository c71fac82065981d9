"""``airloop doctor``: every dependency the profile names, checked from here, one line each.

Each check says what it found and, when it fails, what to do. Nothing is changed: the checks
connect, read and ask; they never create, migrate or write (but a probe file in the shared
root, removed at once).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from airloop.core.http import HttpError, probe, request_json
from airloop.settings import Settings


@dataclass(frozen=True)
class Check:
    """One dependency: ``ok`` True (fine), False (broken) or None (not applicable here)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    def line(self) -> str:
        """How the check reads in a terminal."""
        mark = {True: "ok  ", False: "FAIL", None: "--  "}[self.ok]
        text = f"{mark} {self.name:<26} {self.detail}"
        return text + (f"\n     fix: {self.fix}" if self.ok is False and self.fix else "")


def redacted(url: str) -> str:
    """A URL with its password hidden, to print."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def _sql(url: str, what: str, table: str | None, fix_missing: str) -> Check:
    from sqlalchemy import create_engine, inspect

    engine_url = url.removeprefix("db+")
    args = {"connect_timeout": 5} if engine_url.startswith("postgresql") else {}
    engine = create_engine(engine_url, connect_args=args)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    except Exception as exc:  # any driver error: the database is not reachable as given
        first = str(exc).strip().splitlines()[0][:200]
        return Check(
            what, False, f"{redacted(url)}: {first}", "check the URL, the server, the user"
        )
    finally:
        engine.dispose()
    if table is not None and table not in tables:
        return Check(what, False, f"{redacted(url)}: reachable, not set up", fix_missing)
    return Check(what, True, f"{redacted(url)}: reachable" + (", set up" if table else ""))


def _redis(url: str, what: str) -> Check:
    import redis

    try:
        if url.startswith(("redis://", "rediss://")):
            client = redis.Redis.from_url(url, socket_connect_timeout=3)
        else:  # Feast's form: host:port[,db=N][,password=...]
            address, *options = url.split(",")
            host, _, port = address.partition(":")
            extra = dict(option.split("=", 1) for option in options if "=" in option)
            client = redis.Redis(
                host=host,
                port=int(port or 6379),
                db=int(extra.get("db", 0)),
                password=extra.get("password"),
                socket_connect_timeout=3,
            )
        client.ping()
    except Exception as exc:  # refused, timed out, wrong password: all say the same to a user
        return Check(what, False, f"{redacted(url)}: {exc}", "start Redis or correct the URL")
    return Check(what, True, f"{redacted(url)}: answers")


def _http(url: str, what: str, fix: str) -> Check:
    # A busy server is slow, not down: a refused connection still fails at once.
    problem = probe(url, timeout=20.0)
    if problem is not None:
        return Check(what, False, f"{url}: {problem}", fix)
    return Check(what, True, f"{url}: answers")


def check_airflow_db(settings: Settings) -> Check:
    """Airflow's metadata DB is reachable and migrated."""
    return _sql(settings.airflow_db_conn, "Airflow metadata DB", "dag_run", "airloop setup")


def check_broker(settings: Settings) -> Check:
    """The Celery broker answers (production)."""
    if not settings.celery_broker_url:
        return Check("Celery broker", None, f"none: the {settings.executor} needs none")
    return _redis(settings.celery_broker_url, "Celery broker")


def check_result_backend(settings: Settings) -> Check:
    """Celery's result backend is reachable (production)."""
    if not settings.celery_result_backend:
        return Check("Celery result backend", None, "none")
    return _sql(settings.celery_result_backend, "Celery result backend", None, "")


def check_tracking(settings: Settings) -> Check:
    """The MLflow tracking server answers (or the embedded store exists)."""
    if settings.mlflow_tracking_uri is None:
        path = settings.mlflow_dir / "mlflow.db"
        if path.exists():
            return Check("MLflow tracking store", True, f"{settings.tracking_uri}")
        return Check("MLflow tracking store", False, f"{path} does not exist", "airloop setup")
    return _http(
        f"{settings.tracking_uri.rstrip('/')}/health",
        "MLflow tracking server",
        "start it (airloop up --profile production runs it) or correct AIRLOOP_MLFLOW_TRACKING_URI",
    )


def check_feast_registry(settings: Settings) -> Check:
    """Feast's registry exists (file) or is reachable and set up (SQL)."""
    url = settings.feast_registry_url
    if url and "://" in url:
        return _sql(
            url, "Feast registry", "feast_metadata", "airloop setup (applies the definitions)"
        )
    path = settings.feast_registry
    if os.path.exists(path):
        return Check("Feast registry", True, path)
    return Check("Feast registry", False, f"{path} does not exist", "airloop setup")


def check_online_store(settings: Settings) -> Check:
    """The online store answers (Redis) or its folder is there (SQLite)."""
    if settings.feast_online_store == "redis":
        return _redis(settings.feast_redis_url, "Feast online store")
    folder = settings.online_store_path.parent
    if folder.is_dir():
        return Check("Feast online store", True, f"SQLite at {settings.online_store_path}")
    return Check("Feast online store", False, f"{folder} does not exist", "airloop setup")


def check_shared_root(settings: Settings) -> Check:
    """The shared root exists and this process can write there."""
    root = settings.shared
    try:
        with tempfile.NamedTemporaryFile(dir=root, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(
            "shared root", False, f"{root}: {exc}", "mount it and let airloop's user write"
        )
    return Check("shared root", True, f"{root}: writable")


def check_execution_api(settings: Settings) -> Check:
    """Workers reach the execution API at the URL they are given."""
    url = settings.execution_api_url
    result = _http(
        f"{url}health",
        "execution API (workers)",
        "start the api-server (airloop up) or correct AIRLOOP_AIRFLOW_HOST/PORT",
    )
    if result.ok is False and "refused" in result.detail:
        return Check(result.name, None, f"{url}: no api-server running (tasks need one)")
    return result


def check_shared_secrets(settings: Settings) -> Check:
    """The running api-server signs with the same JWT secret this environment gives workers."""
    import jwt

    from airloop.runtime.api import admin_password

    password = admin_password(settings)
    if password is None:
        return Check("shared secrets", None, "no admin password yet (embedded: start airloop up)")
    try:
        token = request_json(
            "POST",
            f"{settings.api_base_url}/auth/token",
            {"username": settings.airflow_admin_user, "password": password},
            timeout=5,
        )["access_token"]
    except (OSError, HttpError, ValueError, KeyError) as exc:
        return Check("shared secrets", None, f"api-server not reachable or login refused: {exc}")
    secret = settings.shared_secrets()["jwt"]
    try:
        jwt.decode(token, secret, algorithms=["HS512", "HS256"], options={"verify_aud": False})
    except jwt.InvalidTokenError as exc:
        return Check(
            "shared secrets",
            False,
            f"the api-server's tokens do not verify with AIRLOOP_AIRFLOW_JWT_SECRET: {exc}",
            "give every component the same AIRLOOP_AIRFLOW_JWT_SECRET, SECRET_KEY and FERNET_KEY",
        )
    return Check("shared secrets", True, "the api-server signs with this environment's JWT secret")


CHECKS: tuple[Callable[[Settings], Check], ...] = (
    check_airflow_db,
    check_broker,
    check_result_backend,
    check_tracking,
    check_feast_registry,
    check_online_store,
    check_shared_root,
    check_execution_api,
    check_shared_secrets,
)


def diagnose(settings: Settings) -> list[Check]:
    """Every check, in order; none stops the others."""
    return [check(settings) for check in CHECKS]
