"""The production tier: the whole production topology as processes, against this machine's
PostgreSQL and Redis, in databases of its own that are created here and dropped at the end.

Needs PostgreSQL on 127.0.0.1:5432 (a role that may create databases and roles; ``postgres``
with trust auth here) and Redis on 127.0.0.1:6379. Without them the tier fails in CI (``CI``
set to 1, true or yes) and is skipped elsewhere, with the reason. The databases belong to a
role of this run with a password, so the database URLs carry a secret as a deployment's do
(test_security.py looks for it everywhere the topology writes).
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import descendants, running
from tests.support import (
    AIRLOOP,
    read_until,
    throwaway_databases,
    throwaway_redis_dbs,
    user_shell,
)

PORTS = {
    "airflow": 8801,
    "worker_logs": 8802,
    "trigger_logs": 8803,
    "serving": 8804,
    "mlflow": 8810,
}
SECOND_REPLICA_PORT = 8805
UP_TIMEOUT = 600  # seconds for `airloop up --profile production` to say it is ready


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_security.py's tests last: they search what every run of the tier wrote and list
    every socket it opened. (Run alone, they run the loop they need themselves.)"""
    items.sort(key=lambda item: item.path.name == "test_security.py")


@pytest.fixture(scope="session")
def databases() -> Iterator[dict[str, Any]]:
    """Three PostgreSQL databases and two Redis databases of this run, dropped afterwards."""
    password = secrets.token_urlsafe(18)  # [A-Za-z0-9_-] only
    with (
        throwaway_databases("t", ("airflow", "mlflow", "feast"), password) as pg,
        throwaway_redis_dbs(2) as (broker_db, online_db),
    ):
        yield {
            "names": pg.names,
            "broker_db": broker_db,
            "online_db": online_db,
            "server": pg.server,
            "password": password,
        }


@pytest.fixture(scope="session")
def production_env(databases: dict[str, Any], tmp_path_factory) -> dict[str, str]:
    """The variables a production deployment sets: URLs of this run's databases, new secrets."""
    names, pg = databases["names"], databases["server"]
    root = tmp_path_factory.mktemp("production")
    (root / "shared").mkdir()
    return {
        "AIRLOOP_PROFILE": "production",
        "AIRLOOP_HOME": str(root / "home"),
        "AIRLOOP_SHARED_ROOT": str(root / "shared"),
        "AIRLOOP_USECASE": "flights",
        "AIRLOOP_AIRFLOW_DB_URL": f"postgresql+psycopg2://{pg}/{names['airflow']}",
        "AIRLOOP_CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{databases['broker_db']}",
        "AIRLOOP_CELERY_RESULT_BACKEND": f"db+postgresql://{pg}/{names['airflow']}",
        "AIRLOOP_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{PORTS['mlflow']}",
        "AIRLOOP_MLFLOW_BACKEND_STORE_URI": f"postgresql://{pg}/{names['mlflow']}",
        "AIRLOOP_FEAST_REGISTRY_URL": f"postgresql+psycopg2://{pg}/{names['feast']}",
        "AIRLOOP_FEAST_ONLINE_STORE": "redis",
        "AIRLOOP_FEAST_REDIS_URL": f"127.0.0.1:6379,db={databases['online_db']}",
        "AIRLOOP_AIRFLOW_PORT": str(PORTS["airflow"]),
        "AIRLOOP_AIRFLOW_WORKER_LOG_PORT": str(PORTS["worker_logs"]),
        "AIRLOOP_AIRFLOW_TRIGGER_LOG_PORT": str(PORTS["trigger_logs"]),
        "AIRLOOP_SERVING_PORT": str(PORTS["serving"]),
        "AIRLOOP_AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRLOOP_AIRFLOW_SECRET_KEY": secrets.token_urlsafe(32),
        "AIRLOOP_AIRFLOW_JWT_SECRET": secrets.token_urlsafe(64),
        "AIRLOOP_AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "AIRLOOP_SERVING_TOKEN": secrets.token_urlsafe(24),
    }


QUEUED_TIMEOUT = 30  # seconds a task may stay queued before it is sent again (Airflow: 600)


@pytest.fixture(scope="session")
def user_env(production_env: dict[str, str]) -> dict[str, str]:
    """A shell with the production variables and nothing of the test session's own. A task
    whose worker died is given up after 30 s without a heartbeat instead of Airflow's 300
    (test_worker_killed.py waits for it); one queued and lost is sent again after
    :data:`QUEUED_TIMEOUT` (test_lost_send.py waits for it)."""
    return user_shell(
        production_env,
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="30",
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="5",
        AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT=str(QUEUED_TIMEOUT),
        AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL="10",
    )


@pytest.fixture(scope="session")
def settings(production_env: dict[str, str]) -> Any:
    """The same settings in this process (explicit values win over the session's variables)."""
    from airloop.settings import Settings

    return Settings(**{k.removeprefix("AIRLOOP_").lower(): v for k, v in production_env.items()})


@pytest.fixture(scope="session")
def up_output() -> list[str]:
    """What ``airloop up`` printed until it said it was ready (its terminal, often a log)."""
    return []


@pytest.fixture(scope="session")
def stack(
    user_env: dict[str, str], settings: Any, up_output: list[str]
) -> Iterator[subprocess.Popen[str]]:
    """``airloop up --profile production`` over six landed days; stopped by SIGKILL at the end,
    after which no process of the topology may be left."""
    land = subprocess.run(
        [AIRLOOP, "land", "--start", "2013-01-01", "--days", "6"],
        env=user_env,
        capture_output=True,
        text=True,
    )
    assert land.returncode == 0, land.stderr[-3000:]
    up = subprocess.Popen(
        [AIRLOOP, "up", "--no-land"],
        env=user_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert up.stdout is not None
    try:
        up_output += read_until(
            up.stdout, lambda line: line.startswith("Ctrl-C"), UP_TIMEOUT, "`airloop up`"
        )
    except AssertionError:
        up.kill()  # its components die with it (the kernel tells each when its parent dies)
        raise
    assert "profile:    production" in "".join(up_output), "".join(up_output)[-4000:]
    started = descendants(up.pid)
    try:
        yield up
    finally:
        started |= descendants(up.pid)
        # The harshest end: SIGKILL leaves airloop no chance to stop anything itself; every
        # component was told by the kernel to stop when its parent died.
        up.send_signal(signal.SIGKILL)
        up.wait(timeout=30)
        deadline = time.monotonic() + 60
        while any(running(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = {p for p in started if running(p)}
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes of the topology left after SIGKILL: {left}"


FIRST_DAYS = 3  # the feature pipeline's intervals before the first champion
FIRST_WINDOW = {"window_start": "2013-01-01", "window_end": f"2013-01-{FIRST_DAYS + 1:02d}"}


@pytest.fixture(scope="session")
def client(stack: subprocess.Popen[str], settings: Any) -> Any:
    """Airflow's REST API of the running topology, as airloop's commands call it."""
    from airloop.runtime.api import ApiClient

    return ApiClient(settings)


@pytest.fixture(scope="session")
def features_ran(client: Any) -> list[dict[str, Any]]:
    """The feature pipeline over the first days, queued as a backfill does; the finished runs."""
    runs = client.queue_intervals(
        "feature_pipeline",
        [
            (datetime(2013, 1, d, tzinfo=UTC), datetime(2013, 1, d + 1, tzinfo=UTC))
            for d in range(1, FIRST_DAYS + 1)
        ],
        "production tier",
    )
    return [client.wait_for_run("feature_pipeline", r["dag_run_id"], timeout=600) for r in runs]


@pytest.fixture(scope="session")
def first_training(client: Any, features_ran: list[dict[str, Any]]) -> dict[str, Any]:
    """model_training over the first days (the first champion); the finished run."""
    assert [r["state"] for r in features_ran] == ["success"] * FIRST_DAYS, features_ran
    run = client.trigger("model_training", FIRST_WINDOW)
    finished: dict[str, Any] = client.wait_for_run("model_training", run["dag_run_id"], timeout=600)
    assert finished["state"] == "success", client.failed_tasks("model_training", run["dag_run_id"])
    return finished
