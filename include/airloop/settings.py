"""Typed settings: a profile, a home folder, servers and secrets from the environment.

Every value can be set with an ``AIRLOOP_`` environment variable (``AIRLOOP_HOME``,
``AIRLOOP_AIRFLOW_DB_URL``, ``AIRLOOP_FEAST_ONLINE_STORE`` ...). Nothing happens at import
time: call :func:`get_settings` inside the function that needs it.

Two profiles. ``embedded`` (the default): SQLite, files and one machine, secrets generated per
home. ``production``: PostgreSQL, Redis, Celery workers, an MLflow tracking server and Feast's
SQL registry; every URL and secret must come from the environment, and a missing or wrong one
is refused with the variable's name (see ``docs/production.md``).
"""

from __future__ import annotations

import os
import secrets
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from airloop.core.errors import PermanentError
from airloop.core.files import write_text
from airloop.core.paths import checkout_root

Profile = Literal["embedded", "production"]
EMBEDDED_EXECUTOR = "airloop.orchestration.executor.PreloadingLocalExecutor"
CELERY_CONFIG = "airloop.orchestration.celery_workers.CELERY_CONFIG"  # preloads in workers


class SettingsError(PermanentError, ValueError):
    """A setting that is missing or wrong; the message names the variable and what it takes."""


def _default_home() -> Path:
    root = checkout_root()
    return (root if root else Path.cwd()) / ".airloop"


def _default_dags_folder() -> Path:
    root = checkout_root()
    return (root if root else Path.cwd()) / "dags"


def _default_plugins_folder() -> Path:
    root = checkout_root()
    return (root if root else Path.cwd()) / "plugins"


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class Settings(BaseSettings):
    """Where airloop keeps its state and which engines it talks to."""

    model_config = SettingsConfigDict(env_prefix="AIRLOOP_", extra="ignore")

    profile: Profile = "embedded"
    home: Path = Field(default_factory=_default_home)
    # State another host's worker needs (landing, staging, offline store, prediction log,
    # monitoring, reports): on a volume every host mounts. Default: the home.
    shared_root: Path | None = None
    usecase: str = "flights"
    # The use cases one Airflow runs side by side, comma-separated names or paths (default:
    # ``usecase`` alone). The first keeps the plain DAG ids and ``serving_port``; each next one
    # has DAG ids ``<dag>__<name>`` and the next port (airloop.usecase.active).
    usecases: str = ""
    replay_end: date | None = None
    dags_folder: Path = Field(default_factory=_default_dags_folder)
    plugins_folder: Path = Field(default_factory=_default_plugins_folder)
    log_level: str = "WARNING"

    # Airflow: embedded SQLite + LocalExecutor by default; PostgreSQL/Celery from the environment.
    airflow_db_url: str | None = None
    airflow_executor: str | None = None  # default: by profile (LocalExecutor, CeleryExecutor)
    airflow_parallelism: int = 4
    airflow_host: str = "127.0.0.1"
    airflow_port: int = 8280
    airflow_worker_log_port: int = 8795
    airflow_trigger_log_port: int = 8796
    airflow_admin_user: str = "admin"
    # Shared by every Airflow component; generated per home (embedded), required (production).
    airflow_fernet_key: SecretStr | None = None
    airflow_secret_key: SecretStr | None = None
    airflow_jwt_secret: SecretStr | None = None
    airflow_admin_password: SecretStr | None = None
    # airloop's own records (task metadata, feature intervals, champion history): default
    # Airflow's database in production, a SQLite file in the embedded home.
    metadata_db_url: str | None = None
    celery_broker_url: str | None = None
    celery_result_backend: str | None = None
    celery_workers: int = Field(default=2, ge=1)  # workers `airloop up` starts (production)
    celery_concurrency: int = Field(default=2, ge=1)
    # Threads a task, or the service, gives a model's loops (fitting and scoring: OpenMP and
    # BLAS). Parallel tasks and the service share the machine's cores; a model fitted on two
    # threads while another process ran on one of two cores took twice as long as on one.
    # Raise it for a worker that trains alone (docs/production.md).
    model_threads: int = Field(default=1, ge=1)

    # Feast: DuckDB offline store, SQLite (or Redis) online store.
    feast_online_store: Literal["sqlite", "redis"] = "sqlite"
    feast_redis_url: str = "127.0.0.1:6379"
    feast_registry_url: str | None = None

    # Serving: the online API that deploys move to the new champion.
    serving_host: str = "127.0.0.1"
    serving_port: int = 8300
    serving_token: SecretStr | None = None  # required in production
    mlflow_ui_port: int = 8500

    # Containerised stages (C5): model_training's train step and batch scoring run in this
    # image through the Docker provider; the shared root is reached at the engine's source.
    training_image: str | None = None
    container_shared_source: str | None = None  # a volume name or host path; default: shared

    # MLflow: SQLite backend and local artifacts unless a tracking server is given.
    mlflow_tracking_uri: str | None = None
    # The tracking server `airloop up --profile production` runs: its store and artifacts.
    mlflow_backend_store_uri: SecretStr | None = None
    mlflow_artifacts_destination: str | None = None  # default: <shared root>/mlflow-artifacts

    @field_validator("usecase")
    @classmethod
    def _absolute_usecase_path(cls, value: str) -> str:
        return _absolute_ref(value)

    @field_validator("usecases")
    @classmethod
    def _absolute_usecase_paths(cls, value: str) -> str:
        return ",".join(_absolute_ref(ref.strip()) for ref in value.split(",") if ref.strip())

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

    @property
    def usecase_refs(self) -> list[str]:
        """The use cases this Airflow runs, in order: ``usecases``, else ``usecase`` alone."""
        return self.usecases.split(",") if self.usecases else [self.usecase]

    @property
    def usecase_slot(self) -> int:
        """The active use case's place among :attr:`usecase_refs` (0 when not among them)."""
        refs = self.usecase_refs
        return refs.index(self.usecase) if self.usecase in refs else 0

    @property
    def shared(self) -> Path:
        """The root of the state every host must see: ``shared_root``, else the home."""
        return self.shared_root or self.home

    @property
    def executor(self) -> str:
        """Airflow's executor: the given one, else the profile's."""
        if self.airflow_executor:
            return self.airflow_executor
        return "CeleryExecutor" if self.profile == "production" else EMBEDDED_EXECUTOR

    @property
    def airflow_home(self) -> Path:
        """Airflow's home: its metadata DB (embedded), config, logs and the shared keys."""
        return self.home / "airflow"

    @property
    def landing_dir(self) -> Path:
        """Where raw partitions arrive, one folder per use case and source."""
        return self.shared / "landing"

    @property
    def staging_dir(self) -> Path:
        """Intermediate files of each interval's stages, one folder per use case and interval."""
        return self.shared / "staging"

    @property
    def quarantine_dir(self) -> Path:
        """Partitions that failed the gate, with their reports and Data Docs."""
        return self.shared / "quarantine"

    @property
    def reports_dir(self) -> Path:
        """Validation reports and the demo's timeline, one folder per use case."""
        return self.shared / "reports"

    def landing_root(self, usecase: str) -> Path:
        """Where a use case's raw partitions land, one folder per source."""
        return self.landing_dir / usecase

    def reports_root(self, usecase: str) -> Path:
        """A use case's validation reports and timeline."""
        return self.reports_dir / usecase

    @property
    def datasets_dir(self) -> Path:
        """Training sets, one Parquet file per window and digest."""
        return self.shared / "datasets"

    @property
    def predictions_dir(self) -> Path:
        """The serving API's prediction logs, one folder per use case."""
        return self.shared / "predictions"

    @property
    def batch_predictions_dir(self) -> Path:
        """Batch inference output, one folder per use case, one file per interval."""
        return self.shared / "batch_predictions"

    @property
    def monitoring_dir(self) -> Path:
        """Monitoring results and the feedback ledger, one folder per use case."""
        return self.shared / "monitoring"

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
        """The offline store's Parquet partitions (every worker writes its own intervals)."""
        return self.shared / "feast" / "offline"

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

    def usecase_serving_port(self, slot: int | None = None) -> int:
        """The port of the use case at ``slot`` (default: the active one): ``serving_port``,
        the next port for the next of several use cases."""
        return self.serving_port + (self.usecase_slot if slot is None else slot)

    @property
    def serving_url(self) -> str:
        """The active use case's serving API, which deploys and the replay client call."""
        return f"http://{self.serving_host}:{self.usecase_serving_port()}"

    @property
    def api_base_url(self) -> str:
        """Airflow's api-server (UI and REST API)."""
        return f"http://{self.airflow_host}:{self.airflow_port}"

    @property
    def airflow_db_conn(self) -> str:
        """Airflow's metadata DB: the given URL, else SQLite in the home."""
        return self.airflow_db_url or f"sqlite:///{self.airflow_home / 'airflow.db'}"

    @property
    def metadata_db_conn(self) -> str:
        """airloop's metadata tables: the given URL, else Airflow's database in production,
        else SQLite in the home (kept apart from Airflow's, whose writers it would slow)."""
        if self.metadata_db_url:
            return self.metadata_db_url
        if self.profile == "production" and self.airflow_db_url:
            return self.airflow_db_url
        return f"sqlite:///{self.home / 'airloop.db'}"

    @property
    def mlflow_artifacts(self) -> str:
        """Where the tracking server keeps artifacts: the given URI, else the shared root."""
        return self.mlflow_artifacts_destination or (self.shared / "mlflow-artifacts").as_uri()

    def shared_secrets(self) -> dict[str, str]:
        """The secrets every Airflow component shares: from the environment in production,
        generated once per home in the embedded profile. Starting components calls this; only
        reading state never does (it may write the embedded key file)."""
        given = {
            "fernet": self.airflow_fernet_key,
            "secret": self.airflow_secret_key,
            "jwt": self.airflow_jwt_secret,
        }
        if all(v is not None for v in given.values()):
            return {k: v.get_secret_value() for k, v in given.items() if v is not None}
        if self.profile == "production":  # refused by the validator already; never generate
            raise SettingsError(
                "the production profile takes its Airflow secrets from the environment"
            )
        return _stable_keys(self.airflow_home)

    def environment(self) -> dict[str, str]:
        """Every setting as the ``AIRLOOP_*`` variable that gives it, secrets included.

        Child processes (Airflow components, workers, the service) get these, so they build
        exactly the settings this process has, whatever was set here rather than in the shell.
        """
        env: dict[str, str] = {}
        for name, value in self:
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"AIRLOOP_{name.upper()}"] = (
                value.isoformat() if isinstance(value, date) else str(value)
            )
        return env

    def thread_env(self) -> dict[str, str]:
        """``model_threads`` as the variables OpenMP and the BLAS libraries read when they load,
        so that every thread of a process (the service's request threads too) has the limit.
        Where one of them is set already, its value stands."""
        threads = str(self.model_threads)
        return {name: os.environ.get(name, threads) for name in THREAD_VARIABLES}

    def airflow_env(self) -> dict[str, str]:
        """Environment for every Airflow component, so they agree on home, DB, ports and keys."""
        keys = self.shared_secrets()
        env = {
            **self.environment(),
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__PARALLELISM": str(self.airflow_parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.airflow_parallelism),
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": self.execution_api_url,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.airflow_admin_user}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.admin_passwords_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.airflow_db_conn,
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
            # A DAG file changed since its last parse is parsed again at once (Airflow sorts by
            # modification time); this is how often an unchanged one is, which picks up an
            # edited usecase.yaml. At the default 30 s the dag-processor took 9 % of the
            # year replay's CPU re-parsing files nobody had touched.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "120",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            # How long a worker may wait before it notices that its task's process ended (the
            # default 5 s): a skipped or failed task's end, and the worker slot, wait for it.
            # The monitoring run's skipped request_retraining took 3.1 s instead of 0.2 s.
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            # The scheduler's nap when a loop found nothing to do (default 1 s): each step of a
            # run (queued run → started, a task done → its successor queued) waited for it. At
            # 0.25 s the demo's monitored day took 6.9 s instead of 9.4 s.
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25",
        }
        if self.celery_broker_url:
            env["AIRFLOW__CELERY__BROKER_URL"] = self.celery_broker_url
        if self.celery_result_backend:
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = self.celery_result_backend
        if self.profile == "production":
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(self.celery_concurrency)
            env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] = CELERY_CONFIG
        return env

    @property
    def execution_api_url(self) -> str:
        """Where workers report task state: the api-server's execution API."""
        return f"{self.api_base_url}/execution/"

    @property
    def admin_passwords_file(self) -> Path:
        """The simple auth manager's passwords: generated (embedded) or written from the secret."""
        return self.airflow_home / "simple_auth_manager_passwords.json.generated"


def _absolute_ref(value: str) -> str:
    """A use case given by path made absolute: it must mean the same file to every process
    (Airflow's components, workers, the service), whatever their working directory."""
    path = Path(value).expanduser()
    if ("/" in value or path.suffix in (".yaml", ".yml")) and path.exists():
        return str(path.resolve())
    return value


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


def _stable_keys(airflow_home: Path) -> dict[str, str]:
    """Secrets the embedded components share; generated once per home, never committed."""
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
