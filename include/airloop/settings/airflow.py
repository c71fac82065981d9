"""Airflow and where its tasks run: its database, executor, api-server, Celery workers, threads.

Every Airflow component gets its environment from :meth:`Airflow.airflow_env`, so the
scheduler, the dag-processor, the api-server and every worker agree on the home, the database,
the ports and the keys. airloop's own records (``metadata_db_url``) sit here too: by default
they share Airflow's database in production.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from airloop.settings.keys import Keys

EMBEDDED_EXECUTOR = "airloop.orchestration.executor.PreloadingLocalExecutor"
CELERY_CONFIG = "airloop.orchestration.celery_workers.CELERY_CONFIG"  # preloads in workers
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class Airflow(Keys):
    """Airflow's database, executor and api-server; Celery; the threads and image of a task."""

    # Airflow: embedded SQLite + LocalExecutor by default; PostgreSQL/Celery from the environment.
    airflow_db_url: str | None = None
    airflow_executor: str | None = None  # default: by profile (LocalExecutor, CeleryExecutor)
    airflow_parallelism: int = 4
    airflow_host: str = "127.0.0.1"
    airflow_port: int = 8280
    airflow_worker_log_port: int = 8795
    airflow_trigger_log_port: int = 8796
    airflow_admin_user: str = "admin"
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

    # Containerised stages (C5): model_training's train step and batch scoring run in this
    # image through the Docker provider; the shared root is reached at the engine's source.
    training_image: str | None = None
    container_shared_source: str | None = None  # a volume name or host path; default: shared

    @property
    def executor(self) -> str:
        """Airflow's executor: the given one, else the profile's."""
        if self.airflow_executor:
            return self.airflow_executor
        return "CeleryExecutor" if self.profile == "production" else EMBEDDED_EXECUTOR

    @property
    def api_base_url(self) -> str:
        """Airflow's api-server (UI and REST API)."""
        return f"http://{self.airflow_host}:{self.airflow_port}"

    @property
    def execution_api_url(self) -> str:
        """Where workers report task state: the api-server's execution API."""
        return f"{self.api_base_url}/execution/"

    @property
    def admin_passwords_file(self) -> Path:
        """The simple auth manager's passwords: generated (embedded) or written from the secret."""
        return self.airflow_home / "simple_auth_manager_passwords.json.generated"

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
            # How often a scheduler adopts the task instances of a dead one (default 300 s): a
            # restarted scheduler's check at start-up comes before the dead one's heartbeat is
            # old enough, so a task it had queued but not yet sent waited 5 min for the next.
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "60",
        }
        if self.celery_broker_url:
            env["AIRFLOW__CELERY__BROKER_URL"] = self.celery_broker_url
        if self.celery_result_backend:
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = self.celery_result_backend
        if self.profile == "production":
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(self.celery_concurrency)
            env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] = CELERY_CONFIG
        return env
