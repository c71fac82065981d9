"""The reliability tier: faults injected into running servers, then the whole history checked.

The stores of the production profile, each a server of this tier's own so that a test may
stop it: a PostgreSQL cluster (``initdb``/``pg_ctl`` on a free loopback port) holding the
MLflow tracking server's store and airloop's metadata tables, the MLflow tracking server
itself (``airloop tracking-server``, as ``airloop up --profile production`` runs it), and a
``redis-server`` as Feast's online store. The machine's own PostgreSQL (5432) and Redis (6379)
are never touched.

Once per session, the loop's first steps fill them as the production tier's DAG runs do,
in this process: three days of flights landed, the feature pipeline over them (offline
store, Redis), and a champion trained, registered and promoted through the tracking server.

Without PostgreSQL 15's programs or ``redis-server`` the tier fails in CI (``CI`` set to 1,
true or yes) and is skipped elsewhere, naming what is missing.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.reliability.servers import (
    AirloopServer,
    PostgresCluster,
    RedisServer,
    free_port,
    missing_tools,
)
from tests.support import user_shell

ARTIFACT_DISK_MB = 128  # the tracking server's artifact store, a filesystem a test may fill
FEATURE_DAYS = (1, 2, 3)  # the feature pipeline's intervals: 1-3 January 2013
TRAINING_WINDOW = ("2013-01-01", "2013-01-04")
MODEL = "flight_delay"


def day(d: int) -> datetime:
    return datetime(2013, 1, d, tzinfo=UTC)


@pytest.fixture(scope="session")
def tools() -> None:
    problem = missing_tools()
    if problem is not None:
        require_service("PostgreSQL 15's initdb and pg_ctl, and redis-server", problem)


@pytest.fixture(scope="session")
def cluster(tools: None) -> Iterator[PostgresCluster]:
    """The tier's own PostgreSQL, with the databases of the MLflow server and of airloop."""
    pg = PostgresCluster().create()
    try:
        for name in ("mlflow", "airloop"):
            pg.sql(f'CREATE DATABASE "{name}"')
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="session")
def online_redis(tools: None) -> Iterator[RedisServer]:
    """The tier's own redis-server: Feast's online store."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The home, the shared root and the servers' logs (pytest keeps the last few sessions')."""
    return tmp_path_factory.mktemp("reliability")


@dataclass(frozen=True)
class ArtifactDisk:
    """The tracking server's artifact destination; ``problem`` says why it is not a filesystem
    of its own (then a test cannot fill it)."""

    folder: Path
    problem: str | None


@pytest.fixture(scope="session")
def artifact_disk(root: Path) -> Iterator[ArtifactDisk]:
    """The tracking server's artifact destination (``<shared root>/mlflow-artifacts``, where
    ``airloop tracking-server`` keeps them by default) as a tmpfs of its own, when this process
    may mount one (root with CAP_SYS_ADMIN), so that a test can fill it as a disk fills."""
    folder = root / "shared" / "mlflow-artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={ARTIFACT_DISK_MB}m", "tmpfs", str(folder)]
    try:
        mounted = subprocess.run(mount, capture_output=True, text=True, check=False)
        problem = None
        if mounted.returncode != 0:
            said = (mounted.stderr or mounted.stdout).strip() or f"exit {mounted.returncode}"
            problem = f"mounting a tmpfs failed: {said}"
    except FileNotFoundError:
        problem = "no mount command"
    try:
        yield ArtifactDisk(folder, problem)
    finally:
        if problem is None:
            subprocess.run(["umount", "--lazy", str(folder)], check=False)


@pytest.fixture(scope="session")
def reliability_env(
    cluster: PostgresCluster, online_redis: RedisServer, root: Path
) -> dict[str, str]:
    """The variables of a deployment on the tier's servers."""
    (root / "shared").mkdir(exist_ok=True)
    return {
        "AIRLOOP_HOME": str(root / "home"),
        "AIRLOOP_SHARED_ROOT": str(root / "shared"),
        "AIRLOOP_USECASE": "flights",
        "AIRLOOP_FEAST_ONLINE_STORE": "redis",
        "AIRLOOP_FEAST_REDIS_URL": f"127.0.0.1:{online_redis.port}",
        "AIRLOOP_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        "AIRLOOP_MLFLOW_BACKEND_STORE_URI": cluster.url("mlflow"),
        "AIRLOOP_METADATA_DB_URL": cluster.url("airloop", "postgresql+psycopg2"),
        "AIRLOOP_SERVING_PORT": str(free_port()),
        "AIRLOOP_SERVING_TOKEN": secrets.token_urlsafe(24),
    }


@pytest.fixture(scope="session")
def user_env(reliability_env: dict[str, str]) -> dict[str, str]:
    """A shell with those variables and nothing of the test session's own."""
    return user_shell(reliability_env)


@pytest.fixture(scope="session")
def settings(reliability_env: dict[str, str]) -> Any:
    """The same settings in this process (explicit values win over the session's variables)."""
    from airloop.settings import Settings

    return Settings(**{k.removeprefix("AIRLOOP_").lower(): v for k, v in reliability_env.items()})


@pytest.fixture(scope="session")
def tracking_server(
    user_env: dict[str, str], settings: Any, root: Path, artifact_disk: ArtifactDisk
) -> Iterator[AirloopServer]:
    """The MLflow tracking server on the tier's PostgreSQL, as ``airloop up`` runs it."""
    port = int(settings.tracking_uri.rsplit(":", 1)[1])
    server = AirloopServer(
        ["tracking-server"], user_env, f"{settings.tracking_uri}/health", root / "mlflow.log", port
    )
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def flights() -> Any:
    from airloop.usecase import load_usecase

    return load_usecase("flights")


@pytest.fixture(scope="session")
def champion(tracking_server: AirloopServer, settings: Any, flights: Any) -> str:
    """Three days through the feature pipeline into Redis, and a champion from them; its version."""
    from airloop.data.replay import land_window
    from airloop.features.pipeline import run_interval
    from airloop.features.store import apply_definitions
    from airloop.registry.models import CHAMPION
    from airloop.registry.tracking import configure, init_tracking
    from airloop.training.pipeline import run_training

    init_tracking(settings)
    land_window(
        flights, settings, date(2013, 1, FEATURE_DAYS[0]), date(2013, 1, FEATURE_DAYS[-1] + 1)
    )
    apply_definitions(settings, flights)
    for d in FEATURE_DAYS:
        run_interval(day(d), day(d + 1), flights, settings)
    result = run_training(
        *TRAINING_WINDOW, None, {"trigger": "reliability tier"}, flights, settings
    )
    version = result.registered.version
    if not result.promotion.promoted:  # the gate's verdict aside: the tier needs a champion
        configure(settings).set_registered_model_alias(MODEL, CHAMPION, version)
    return version


def registry_state(settings: Any) -> dict[str, Any]:
    """Every version of the model with its airloop tags, and every alias: the registry's history."""
    from airloop.registry.tracking import configure

    client = configure(settings)
    versions = client.search_model_versions(f"name = '{MODEL}'")
    return {
        "versions": {
            str(v.version): {k: t for k, t in v.tags.items() if k.startswith("airloop.")}
            for v in versions
        },
        "aliases": dict(client.get_registered_model(MODEL).aliases),
    }
