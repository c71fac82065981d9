"""The container tier (`make test-docker`): docker-compose.yml on a real Docker engine, every
airloop service from the released image, with the test override (docker/compose.test.yml).

The image is released first (tests/containers/release.py): ``make release`` in a clone of this
working tree pushes it to Debian's docker-registry on a free port of 127.0.0.1, the local image
is removed and pulled back by digest, and the stack runs from that digest.

Needs a running Docker engine, docker-compose, Debian's docker-registry and prometheus, the
base image (`airloop-base:bookworm`, built by `make test-docker`, or the one
``AIRLOOP_BASE_IMAGE`` names), and this machine's PostgreSQL and Redis. Without any of them
the tier fails in CI (``CI`` set to 1, true or yes) and is skipped elsewhere, with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, require_service
from tests.containers.release import (
    BASE_IMAGE,
    LOCAL_BASE_IMAGE,
    Registry,
    RegistryUnavailable,
    Released,
    docker,
    insecure_loopback_refused,
    release_through,
    start_registry,
)
from tests.reliability.servers import stop_group
from tests.support import (
    Databases,
    throwaway_databases,
    throwaway_redis_dbs,
    user_shell,
)

PORTS = {
    "AIRFLOW_PORT": "8901",
    "AIRFLOW_WORKER_LOG_PORT": "8902",
    "AIRFLOW_TRIGGER_LOG_PORT": "8903",
    "SERVING_PORT": "8904",
    "MLFLOW_PORT": "8910",
}
PROMETHEUS_PORT = 8920
CONTAINER_UID = 50000  # the image's airloop user
# Per test, set-up included: the session's first test also waits for the release (the image
# built from scratch, pushed, pulled) and the stack to come up healthy.
TIER_TIMEOUT = 2400

# The long-running services of the airloop image (airflow-init has exited by the time they run).
AIRLOOP_SERVICES = (
    "api-server",
    "scheduler",
    "dag-processor",
    "triggerer",
    "worker",
    "mlflow",
    "serving",
)


def _run(
    *cmd: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="session")
def engine_ready() -> None:
    """Docker, docker-compose, Debian's prometheus and the base image are there."""
    for tool in ("docker", "docker-compose", "prometheus"):
        if shutil.which(tool) is None:
            require_service(
                tool, "not installed (make test-docker installs it from Debian's packages)"
            )
    info = _run("docker", "info", timeout=30)
    if info.returncode != 0:
        require_service("a Docker engine", info.stderr.strip().splitlines()[-1][:300])
    local_base = BASE_IMAGE == LOCAL_BASE_IMAGE
    if local_base and _run("docker", "image", "inspect", BASE_IMAGE, timeout=30).returncode != 0:
        require_service(f"the base image {BASE_IMAGE}", "not built (make test-docker builds it)")


@pytest.fixture(scope="session")
def registry(engine_ready) -> Iterator[Registry]:
    """Debian's docker-registry on a free port of 127.0.0.1, storage in a folder of its own;
    stopped, and its folder removed, at the end of the session."""
    refused = insecure_loopback_refused()
    if refused:
        require_service("a Docker engine accepting plain HTTP from 127.0.0.1", refused)
    folder = Path(tempfile.mkdtemp(prefix="airloop-registry-"))
    try:
        try:
            started = start_registry(folder)
        except RegistryUnavailable as exc:
            require_service("Debian's docker-registry on 127.0.0.1", str(exc))
        try:
            yield started
        finally:
            stop_group(started.process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def released(registry: Registry, pytestconfig) -> Iterator[Released]:
    """``make release`` of this working tree (in a clone) pushed to the registry, the local
    image removed and pulled back by digest (said in the tier's report); the pulled image
    removed at the end."""
    with tempfile.TemporaryDirectory(prefix="airloop-release-") as folder:
        image = release_through(registry.address, Path(folder) / "airloop")
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{image}")
    try:
        yield image
    finally:
        docker("rmi", image.reference, timeout=300)  # whatever still uses it keeps it


@pytest.fixture(scope="session")
def compose_env(released: Released) -> Iterator[dict[str, str]]:
    """Variables for docker-compose: this run's databases, Redis DBs, shared folder, secrets."""
    with (
        throwaway_databases("c", ("airflow", "mlflow", "feast")) as pg,
        throwaway_redis_dbs(2) as (broker_db, online_db),
        tempfile.TemporaryDirectory(
            prefix="airloop-compose-shared-", ignore_cleanup_errors=True
        ) as folder,
    ):
        yield compose_variables(released.reference, pg, broker_db, online_db, Path(folder))


def compose_variables(
    image: str, pg: Databases, broker_db: int, online_db: int, shared: Path
) -> dict[str, str]:
    """The variables docker-compose runs the stack with: every airloop service, and the train
    step's container, from ``image`` (the shared folder given to the containers' user)."""
    names, prefix = pg.names, pg.prefix
    os.chown(shared, CONTAINER_UID, CONTAINER_UID)
    generated = subprocess.run(
        ["python3", str(REPO / "docker" / "new-env.py")], capture_output=True, text=True, check=True
    ).stdout
    secrets_env = dict(line.split("=", 1) for line in generated.splitlines() if "=" in line)
    env = {
        **user_shell(),
        **secrets_env,
        **PORTS,
        "AIRLOOP_IMAGE": image,
        "AIRLOOP_TEST_SHARED": str(shared),
        # The train step and batch scoring in the image, through the Docker provider.
        "TRAINING_IMAGE": image,
        "CONTAINER_SHARED_SOURCE": str(shared),
        "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
        "COMPOSE_PROJECT_NAME": prefix.replace("_", "-"),
        "POSTGRES_USER": "postgres",
        "AIRFLOW_DB": names["airflow"],
        "MLFLOW_DB": names["mlflow"],
        "FEAST_DB": names["feast"],
        "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{broker_db}",
        "FEAST_REDIS_URL": f"127.0.0.1:6379,db={online_db}",
    }
    return env


def compose(
    env: dict[str, str], *args: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """docker-compose with the shipped file and the test override."""
    files = [
        "-f",
        str(REPO / "docker-compose.yml"),
        "-f",
        str(REPO / "docker" / "compose.test.yml"),
    ]
    return _run(
        "docker-compose", "--project-directory", str(REPO), *files, *args, env=env, timeout=timeout
    )


def healthy(env: dict[str, str], services: list[str], timeout: float = 600) -> None:
    """Wait until each service's container reports healthy (fail with its logs if it exits)."""
    deadline = time.monotonic() + timeout
    waiting = set(services)
    while waiting and time.monotonic() < deadline:
        for service in sorted(waiting):
            ids = compose(env, "ps", "-q", service).stdout.split()
            if not ids:
                continue
            state = _run(
                "docker",
                "inspect",
                "-f",
                "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                ids[0],
            ).stdout.split()
            if state and state[0] == "exited":
                logs = compose(env, "logs", "--tail", "60", service).stdout
                pytest.fail(f"{service} exited:\n{logs}")
            if state[-1:] == ["healthy"]:
                waiting.discard(service)
        time.sleep(3)
    if waiting:
        pytest.fail(f"not healthy within {timeout:.0f}s: {sorted(waiting)}")


@pytest.fixture(scope="session")
def stack(compose_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """docker-compose up (with the override), healthy; down with its volumes at the end."""
    up = compose(compose_env, "up", "-d")
    try:
        if up.returncode != 0:
            logs = compose(compose_env, "logs", "--tail", "80").stdout
            pytest.fail(f"docker-compose up failed:\n{up.stderr[-3000:]}\n{logs[-6000:]}")
        healthy(compose_env, list(AIRLOOP_SERVICES))
        yield compose_env
    finally:
        down = compose(compose_env, "down", "-v", "--remove-orphans")
        assert down.returncode == 0, down.stderr[-2000:]
        project = compose_env["COMPOSE_PROJECT_NAME"]
        left = _run(
            "docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"
        )
        volumes = _run(
            "docker",
            "volume",
            "ls",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={project}",
        )
        assert not left.stdout.split() and not volumes.stdout.split(), "containers or volumes left"


@pytest.fixture(scope="session")
def prometheus(stack: dict[str, str], tmp_path_factory) -> Iterator[str]:
    """Debian's prometheus as a process, with the shipped scrape config (the serving port of
    this run put in)."""
    folder = tmp_path_factory.mktemp("prometheus")
    shipped = (REPO / "docker" / "prometheus" / "prometheus.yml").read_text()
    config = re.sub(r"127\.0\.0\.1:8300", f"127.0.0.1:{stack['SERVING_PORT']}", shipped)
    config = config.replace("scrape_interval: 15s", "scrape_interval: 2s")
    (folder / "prometheus.yml").write_text(config)
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={folder / 'prometheus.yml'}",
            f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
            f"--storage.tsdb.path={folder / 'data'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{PROMETHEUS_PORT}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def settings_for(env: dict[str, str]) -> Any:
    """The settings the containers run with, for this process (the shared root is the folder)."""
    from airloop.settings import Settings

    values = {
        "profile": "production",
        "home": Path(env["AIRLOOP_TEST_SHARED"]).parent / f"{env['COMPOSE_PROJECT_NAME']}-home",
        "shared_root": env["AIRLOOP_TEST_SHARED"],
        "airflow_db_url": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{env['AIRFLOW_DB']}",
        "celery_broker_url": env["CELERY_BROKER_URL"],
        "celery_result_backend": f"db+postgresql://postgres@127.0.0.1:5432/{env['AIRFLOW_DB']}",
        "mlflow_tracking_uri": f"http://127.0.0.1:{env['MLFLOW_PORT']}",
        "feast_registry_url": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{env['FEAST_DB']}",
        "feast_online_store": "redis",
        "feast_redis_url": env["FEAST_REDIS_URL"],
        "airflow_port": int(env["AIRFLOW_PORT"]),
        "serving_port": int(env["SERVING_PORT"]),
        "airflow_fernet_key": env["AIRFLOW_FERNET_KEY"],
        "airflow_secret_key": env["AIRFLOW_SECRET_KEY"],
        "airflow_jwt_secret": env["AIRFLOW_JWT_SECRET"],
        "airflow_admin_password": env["AIRFLOW_ADMIN_PASSWORD"],
        "serving_token": env["SERVING_TOKEN"],
        "training_image": env["TRAINING_IMAGE"],
        "container_shared_source": env["CONTAINER_SHARED_SOURCE"],
    }
    return Settings(**values)


def give_to_containers(path: Path) -> None:
    """What this process wrote under the shared root, owned by the containers' user."""
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), CONTAINER_UID, CONTAINER_UID)
    os.chown(path, CONTAINER_UID, CONTAINER_UID)
