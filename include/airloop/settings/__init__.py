"""Typed settings: a profile, a home folder, servers and secrets from the environment.

Every value can be set with an ``AIRLOOP_`` environment variable (``AIRLOOP_HOME``,
``AIRLOOP_AIRFLOW_DB_URL``, ``AIRLOOP_FEAST_ONLINE_STORE`` ...). Nothing happens at import
time: call :func:`get_settings` inside the function that needs it.

Two profiles. ``embedded`` (the default): SQLite, files and one machine, secrets generated per
home. ``production``: PostgreSQL, Redis, Celery workers, an MLflow tracking server and Feast's
SQL registry; every URL and secret must come from the environment, and a missing or wrong one
is refused with the variable's name (see ``docs/production.md``).

:class:`Settings` is composed of one class per topic, each in its own module:

- ``base``: the profile, the home, the shared root, the use cases and the replay's end;
- ``folders``: the state folders under the shared root and the home;
- ``keys``: the secrets every Airflow component shares;
- ``airflow``: Airflow's database, executor and api-server, Celery, a task's threads and image;
- ``stores``: Feast's stores and registry, MLflow's tracking store and artifacts;
- ``serving``: the serving API's host, ports and token.

This module composes them, checks the production profile and reads the environment.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import SecretStr, ValidationError, model_validator

from airloop.settings.airflow import Airflow
from airloop.settings.base import SettingsError
from airloop.settings.serving import Serving
from airloop.settings.stores import Stores

__all__ = ["Settings", "SettingsError", "get_settings", "production_problems"]


class Settings(Serving, Stores, Airflow):
    """Where airloop keeps its state and which engines it talks to."""

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        if self.profile == "production":
            problems = production_problems(self)
            if problems:
                raise ValueError(
                    "the production profile (AIRLOOP_PROFILE=production) needs:\n"
                    + "\n".join(f"  {p}" for p in problems)
                    + "\nSee docs/production.md for each variable and how to generate secrets."
                )
        return self


def _url_problem(
    value: str | None, variable: str, schemes: tuple[str, ...], what: str
) -> str | None:
    if not value:
        return f"{variable}: {what}"
    if not value.startswith(schemes):
        return f"{variable}: must start with {' or '.join(schemes)} ({what})"
    return None


def production_problems(settings: Settings) -> list[str]:
    """Each required setting the production profile lacks or has wrong, by variable."""
    problems = [
        _url_problem(
            settings.airflow_db_url,
            "AIRLOOP_AIRFLOW_DB_URL",
            ("postgresql+psycopg2://",),
            "Airflow's metadata DB on PostgreSQL",
        ),
        _url_problem(
            settings.celery_broker_url,
            "AIRLOOP_CELERY_BROKER_URL",
            ("redis://", "rediss://"),
            "the Celery broker on Redis, e.g. redis://host:6379/0",
        ),
        _url_problem(
            settings.celery_result_backend,
            "AIRLOOP_CELERY_RESULT_BACKEND",
            ("db+postgresql://",),
            "Celery's result backend on PostgreSQL",
        ),
        _url_problem(
            settings.mlflow_tracking_uri,
            "AIRLOOP_MLFLOW_TRACKING_URI",
            ("http://", "https://"),
            "the MLflow tracking server every task and the service talk to",
        ),
        _url_problem(
            settings.feast_registry_url,
            "AIRLOOP_FEAST_REGISTRY_URL",
            ("postgresql", "mysql"),
            "Feast's SQL registry (SQLAlchemy URL), needed for concurrent materialisation",
        ),
    ]
    if settings.feast_online_store != "redis":
        problems.append("AIRLOOP_FEAST_ONLINE_STORE: must be redis (with AIRLOOP_FEAST_REDIS_URL)")
    if settings.shared_root is None:
        problems.append(
            "AIRLOOP_SHARED_ROOT: a folder every host mounts (landing, offline store, logs of predictions)"
        )
    secrets_needed = {
        "AIRLOOP_AIRFLOW_FERNET_KEY": (settings.airflow_fernet_key, _fernet_problem),
        "AIRLOOP_AIRFLOW_SECRET_KEY": (settings.airflow_secret_key, _length_problem(32)),
        "AIRLOOP_AIRFLOW_JWT_SECRET": (settings.airflow_jwt_secret, _length_problem(64)),
        "AIRLOOP_AIRFLOW_ADMIN_PASSWORD": (settings.airflow_admin_password, _length_problem(12)),
        "AIRLOOP_SERVING_TOKEN": (settings.serving_token, _length_problem(16)),
    }
    for variable, (value, check) in secrets_needed.items():
        secret = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not secret:
            problems.append(f"{variable}: a secret (see docs/production.md to generate one)")
        elif (problem := check(secret)) is not None:
            problems.append(f"{variable}: {problem}")
    return [p for p in problems if p is not None]


def _fernet_problem(value: str) -> str | None:
    from cryptography.fernet import Fernet

    try:
        Fernet(value.encode())
    except (ValueError, TypeError):
        return "not a Fernet key (32 url-safe base64-encoded bytes)"
    return None


def _length_problem(minimum: int) -> Any:
    def check(value: str) -> str | None:
        return (
            f"too short ({len(value)} characters; at least {minimum})"
            if len(value) < minimum
            else None
        )

    return check


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once; refused with the variables' names."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"AIRLOOP_{where.upper()}: {message}" if where else message)
        raise SettingsError("airloop's settings are not usable:\n" + "\n".join(problems)) from None
