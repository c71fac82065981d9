"""Typed settings: one home folder for all state, embedded defaults, servers from the environment.

Every value can be set with an ``AIRLOOP_`` environment variable (``AIRLOOP_HOME``,
``AIRLOOP_AIRFLOW_DB_URL``, ``AIRLOOP_FEAST_ONLINE_STORE`` ...). Nothing happens at import
time: call :func:`get_settings` inside the function that needs it.
"""

from __future__ import annotations

import secrets
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from airloop.core.files import write_text
from airloop.core.paths import checkout_root


def _default_home() -> Path:
    root = checkout_root()
    return (root if root else Path.cwd()) / ".airloop"


def _default_dags_folder() -> Path:
    root = checkout_root()
    return (root if root else Path.cwd()) / "dags"


class Settings(BaseSettings):
    """Where airloop keeps its state and which engines it talks to."""

    model_config = SettingsConfigDict(env_prefix="AIRLOOP_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    usecase: str = "flights"
    replay_end: date | None = None
    dags_folder: Path = Field(default_factory=_default_dags_folder)
    log_level: str = "WARNING"

    # Airflow: embedded SQLite + LocalExecutor by default; PostgreSQL/Celery from the environment.
    airflow_db_url: str | None = None
    airflow_executor: str = "airloop.orchestration.executor.PreloadingLocalExecutor"
    airflow_parallelism: int = 4
    airflow_host: str = "127.0.0.1"
    airflow_port: int = 8280
    airflow_worker_log_port: int = 8795
    airflow_trigger_log_port: int = 8796
    airflow_admin_user: str = "admin"
    celery_broker_url: str | None = None
    celery_result_backend: str | None = None

    # Feast: DuckDB offline store, SQLite (or Redis) online store.
    feast_online_store: Literal["sqlite", "redis"] = "sqlite"
    feast_redis_url: str = "127.0.0.1:6379"
    feast_registry_url: str | None = None

    # Serving: the online API that deploys move to the new champion.
    serving_host: str = "127.0.0.1"
    serving_port: int = 8300
    serving_token: str | None = None
    mlflow_ui_port: int = 8500

    # MLflow: SQLite backend and local artifacts unless a tracking server is given.
    mlflow_tracking_uri: str | None = None

    @property
    def airflow_home(self) -> Path:
        """Airflow's home: its metadata DB (embedded), config, logs and the shared keys."""
        return self.home / "airflow"

    @property
    def landing_dir(self) -> Path:
        """Where raw partitions arrive, one folder per source."""
        return self.home / "landing"

    @property
    def staging_dir(self) -> Path:
        """Intermediate files of each interval's stages, one folder per use case and interval."""
        return self.home / "staging"

    @property
    def quarantine_dir(self) -> Path:
        """Partitions that failed the gate, with their reports and Data Docs."""
        return self.home / "quarantine"

    @property
    def reports_dir(self) -> Path:
        """Validation reports and the demo's timeline."""
        return self.home / "reports"

    @property
    def datasets_dir(self) -> Path:
        """Training sets, one Parquet file per window and digest."""
        return self.home / "datasets"

    @property
    def predictions_dir(self) -> Path:
        """The serving API's prediction logs, one folder per use case."""
        return self.home / "predictions"

    @property
    def batch_predictions_dir(self) -> Path:
        """Batch inference output, one folder per use case, one file per interval."""
        return self.home / "batch_predictions"

    @property
    def monitoring_dir(self) -> Path:
        """Monitoring results and the feedback ledger, one folder per use case."""
        return self.home / "monitoring"

    @property
    def logs_dir(self) -> Path:
        """Logs of the processes ``airloop up`` and the demo start."""
        return self.home / "logs"

    def prediction_log_dir(self, usecase: str) -> Path:
        """Where the service appends a use case's predictions and monitoring reads them."""
        return self.predictions_dir / usecase

    def monitoring_root(self, usecase: str) -> Path:
        """A use case's monitoring results, ledger and reports."""
        return self.monitoring_dir / usecase

    def monitoring_metrics_file(self, usecase: str) -> Path:
        """The latest monitored interval's figures (Prometheus text); the service appends them."""
        return self.monitoring_root(usecase) / "metrics.prom"

    @property
    def feast_dir(self) -> Path:
        """Feast's repo path: the offline store, and the embedded registry and online store."""
        return self.home / "feast"

    @property
    def offline_dir(self) -> Path:
        """The offline store's Parquet partitions."""
        return self.feast_dir / "offline"

    @property
    def online_store_path(self) -> Path:
        """The embedded (SQLite) online store."""
        return self.feast_dir / "online.db"

    @property
    def feast_registry(self) -> str:
        """The Feast registry: the given SQL URL, else a file in the home."""
        return self.feast_registry_url or str(self.feast_dir / "registry.db")

    @property
    def mlflow_dir(self) -> Path:
        """The embedded MLflow store: its SQLite DB and artifacts."""
        return self.home / "mlflow"

    @property
    def tracking_uri(self) -> str:
        """MLflow's tracking and registry URI: the given server, else SQLite in the home."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> str:
        """Where the embedded MLflow keeps artifacts."""
        return str(self.mlflow_dir / "artifacts")

    @property
    def mlflow_ui_url(self) -> str:
        """Where people browse runs and models: the tracking server, else the local MLflow UI."""
        if self.tracking_uri.startswith(("http://", "https://")):
            return self.tracking_uri.rstrip("/")
        return f"http://127.0.0.1:{self.mlflow_ui_port}"

    @property
    def serving_url(self) -> str:
        """The serving API that deploys and the replay client call."""
        return f"http://{self.serving_host}:{self.serving_port}"

    @property
    def api_base_url(self) -> str:
        """Airflow's api-server (UI and REST API)."""
        return f"http://{self.airflow_host}:{self.airflow_port}"

    @property
    def airflow_db_conn(self) -> str:
        """Airflow's metadata DB: the given URL, else SQLite in the home."""
        return self.airflow_db_url or f"sqlite:///{self.airflow_home / 'airflow.db'}"

    def airflow_env(self) -> dict[str, str]:
        """Environment for every Airflow component, so they agree on home, DB, ports and keys.

        It generates the shared keys on first use: call it when starting components, not when
        only reading state.
        """
        keys = _stable_keys(self.airflow_home)
        db_url = self.airflow_db_conn
        env = {
            "AIRLOOP_HOME": str(self.home),
            "AIRLOOP_USECASE": self.usecase,
            "AIRLOOP_LOG_LEVEL": self.log_level,
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": self.airflow_executor,
            "AIRFLOW__CORE__PARALLELISM": str(self.airflow_parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.airflow_parallelism),
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_base_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.airflow_admin_user}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
                self.airflow_home / "simple_auth_manager_passwords.json.generated"
            ),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            "AIRFLOW__API__HOST": self.airflow_host,
            "AIRFLOW__API__PORT": str(self.airflow_port),
            "AIRFLOW__API__BASE_URL": self.api_base_url,
            "AIRFLOW__API__SECRET_KEY": keys["secret"],
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt"],
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.airflow_worker_log_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.airflow_trigger_log_port),
            "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        }
        if self.replay_end is not None:
            env["AIRLOOP_REPLAY_END"] = self.replay_end.isoformat()
        if self.celery_broker_url:
            env["AIRFLOW__CELERY__BROKER_URL"] = self.celery_broker_url
        if self.celery_result_backend:
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = self.celery_result_backend
        return env


def _stable_keys(airflow_home: Path) -> dict[str, str]:
    """Secrets the Airflow components must share; generated once per home, never committed."""
    path = airflow_home / ".airloop_keys"
    if path.is_file():
        lines = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        if {"fernet", "secret", "jwt"} <= lines.keys():
            return lines
    import base64

    keys = {
        "fernet": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "secret": secrets.token_urlsafe(32),
        "jwt": secrets.token_urlsafe(64),
    }
    # Written atomically with mode 0600 (a fresh temporary file), so no reader sees half a key.
    write_text(path, "".join(f"{k}={v}\n" for k, v in keys.items()))
    return keys


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
