"""docker-compose.yml on a real Docker engine: every airloop service from the built image, the
loop through it, and every expression of the provisioned Grafana dashboard answered by
Prometheus."""

from __future__ import annotations

import json
import urllib.parse
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, descendants
from tests.containers.conftest import (
    AIRLOOP_SERVICES,
    CONTAINER_UID,
    TIER_TIMEOUT,
    _run,
    compose,
    give_to_containers,
    settings_for,
)
from tests.production.sockets import beyond_loopback, listening
from tests.support import get_text, prometheus_samples
from tests.traffic import FIRST_FLIGHT_REQUEST, days, like_the_reference, write_served

pytestmark = [pytest.mark.containers, pytest.mark.timeout(TIER_TIMEOUT)]


@pytest.fixture(scope="module")
def settings(stack):
    return settings_for(stack)


@pytest.fixture(scope="module")
def client(settings):
    from airloop.runtime.api import ApiClient

    return ApiClient(settings)


def test_doctor_passes_inside_a_container(stack) -> None:
    out = compose(stack, "exec", "-T", "scheduler", "airloop", "doctor", timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok   MLflow tracking server" in out.stdout
    assert "the api-server signs with this environment's JWT secret" in out.stdout


def container_of(env: dict[str, str], service: str) -> tuple[str, int]:
    """A service's container id and its main process's pid on this host."""
    [container] = compose(env, "ps", "-q", service).stdout.split()
    pid = int(_run("docker", "inspect", "-f", "{{.State.Pid}}", container).stdout)
    return container, pid


def uids(pid: int) -> tuple[int, ...]:
    """The real, effective, saved and filesystem uids of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return tuple(int(u) for u in line.split()[1:])
    raise AssertionError(f"no Uid line for pid {pid}")


def test_every_airloop_container_runs_as_its_own_user(stack) -> None:
    """Not root: the image's user ``airloop`` (uid 50000) runs each service's processes, and
    can write the home, Airflow's logs and the shared root."""
    checked = 0
    for service in AIRLOOP_SERVICES:
        container, pid = container_of(stack, service)
        user = _run("docker", "inspect", "-f", "{{.Config.User}}", container).stdout.strip()
        exec_uid = _run("docker", "exec", container, "id", "-u").stdout.strip()
        assert (user, exec_uid) == ("airloop", str(CONTAINER_UID)), service
        for process in {pid} | descendants(pid):
            assert set(uids(process)) == {CONTAINER_UID}, (service, process, uids(process))
            checked += 1
        writable = _run(
            "docker",
            "exec",
            container,
            "sh",
            "-c",
            'test -w "$AIRLOOP_HOME" && test -w "$AIRLOOP_HOME/airflow/logs"'
            ' && test -w "$AIRLOOP_SHARED_ROOT"',
        )
        assert writable.returncode == 0, f"{service}: its home or shared root is not writable"
    print(f"{len(AIRLOOP_SERVICES)} containers, {checked} processes, none root")


def test_nothing_in_the_containers_listens_beyond_loopback(stack) -> None:
    """The containers share the host's network: every socket of their processes is on
    127.0.0.1 or ::1 (the triggerer's log server too: it has none)."""
    pids: set[int] = set()
    for service in AIRLOOP_SERVICES:
        _, pid = container_of(stack, service)
        pids |= {pid} | descendants(pid)
    sockets = listening(pids)
    ports = {s.port for s in sockets}
    wanted = {int(stack[k]) for k in ("AIRFLOW_PORT", "SERVING_PORT", "MLFLOW_PORT")}
    assert wanted <= ports, sockets
    print(f"{len(pids)} processes, {len(sockets)} sockets, ports {sorted(ports)}")
    exposed = beyond_loopback(sockets)
    assert not exposed, "listening beyond loopback:\n" + "\n".join(f"  {s}" for s in exposed)


def failed_logs(client: Any, dag_id: str, run_id: str) -> str:
    """Each failed task of a run with the end of its last try's log: why, not only which (the
    tier drops the containers' logs with its shared folder)."""
    parts = []
    for ti in client.failed_tasks(dag_id, run_id):
        try:
            events = client.task_log(dag_id, run_id, ti["task_id"], ti["try_number"])["content"]
            tail = "\n".join(str(e.get("event", e)) for e in events[-30:])
        except Exception as exc:  # the log itself unreadable: say so, keep the others
            tail = f"(its log could not be read: {exc})"
        parts.append(f"{ti['task_id']} (try {ti['try_number']}):\n{tail}")
    return "\n\n".join(parts) or f"{dag_id} {run_id} failed with no failed task"


@pytest.fixture(scope="module")
def features_ran(stack, settings, client) -> None:
    """The feature pipeline in the containers for 1 and 2 January (landed from this process)."""
    from airloop.data.replay import land_window
    from airloop.usecase import load_usecase

    flights = load_usecase("flights")
    land_window(flights, settings, date(2013, 1, 1), date(2013, 1, 4))
    give_to_containers(settings.shared)
    runs = client.queue_intervals("feature_pipeline", days(1, 2), "test")
    states = [client.wait_for_run("feature_pipeline", r["dag_run_id"], timeout=600) for r in runs]
    assert [s["state"] for s in states] == ["success", "success"]


@pytest.fixture(scope="module")
def trained(features_ran, client) -> str:
    """A model_training run in the containers on those days (version 1, the champion): its id."""
    training = client.trigger(
        "model_training", {"window_start": "2013-01-01", "window_end": "2013-01-03"}
    )
    done = client.wait_for_run("model_training", training["dag_run_id"], timeout=900)
    assert done["state"] == "success", failed_logs(client, "model_training", training["dag_run_id"])
    return str(training["dag_run_id"])


def predict(settings, instance: dict[str, Any]) -> dict[str, Any]:
    from airloop.core.http import request_json

    return request_json(  # type: ignore[no-any-return]
        "POST",
        f"{settings.serving_url}/v1/predict",
        {"instances": [instance]},
        token=settings.serving_token.get_secret_value(),
    )


@pytest.fixture(scope="module")
def monitored(trained, settings, client) -> None:
    """The monitoring DAG in the containers on served predictions of 2 January, and a few
    predictions of the service's own, so its request metrics have a rate."""
    from airloop.usecase import load_usecase

    flights = load_usecase("flights")
    rows = like_the_reference(settings, flights, "1", 2, seed=2)
    write_served(settings, flights, rows, "1")
    give_to_containers(settings.shared)
    [run] = client.queue_intervals("monitoring", days(2), "test")
    done = client.wait_for_run("monitoring", run["dag_run_id"], timeout=600)
    assert done["state"] == "success", client.failed_tasks("monitoring", run["dag_run_id"])
    for _ in range(10):
        predict(settings, {**FIRST_FLIGHT_REQUEST, "tailnum": None})


def test_features_training_and_serving_run_in_the_containers(trained, settings) -> None:
    answer = predict(settings, FIRST_FLIGHT_REQUEST)
    assert answer["model"] == {"name": "flight_delay", "version": "1"}
    assert 0.0 <= answer["predictions"][0]["score"] <= 1.0


def test_monitoring_in_the_containers_reaches_the_metrics(monitored, settings) -> None:
    # Samples, not their HELP lines (which the service prints before any figure exists).
    samples = prometheus_samples(get_text(f"{settings.serving_url}/metrics"))
    drift = samples.get("airloop_drift_score", [])
    assert any(labels.get("feature") == "distance" for labels, _ in drift), sorted(samples)
    assert samples.get("airloop_live_metric"), sorted(samples)


def test_the_train_step_ran_in_a_container_and_matches_a_local_run(trained, settings) -> None:
    """P3: the same window and configuration, in a container and in this process, give the
    same training set digest and the same metrics."""
    from sqlalchemy import create_engine, text

    from airloop.registry.tracking import configure, experiment_id, experiment_name
    from airloop.training.pipeline import build_training_set
    from airloop.training.train import train_and_log
    from airloop.usecase import load_usecase

    engine = create_engine(settings.airflow_db_conn)
    with engine.connect() as conn:
        operator = conn.execute(
            text(
                "SELECT operator FROM task_instance WHERE dag_id = 'model_training'"
                " AND task_id = 'train_model' AND run_id = :run"
            ),
            {"run": trained},
        ).scalar_one()
    engine.dispose()
    assert operator == "StageInContainer"
    client = configure(settings)
    [container_run] = client.search_runs(
        [experiment_id(settings, experiment_name("flights", "training"))],
        filter_string=f"tags.`airloop.run_id` = '{trained}'",
    )
    flights = load_usecase("flights")
    window = {"window_start": "2013-01-01", "window_end": "2013-01-03"}
    here = build_training_set(params=window, usecase=flights, settings=settings)
    assert here.digest == container_run.data.params["training_set_digest"]
    config = json.loads(client.get_model_version("flight_delay", "1").tags["airloop.config"])
    local = train_and_log(settings, flights, here, config, {"trigger": "test"})
    in_container = {k: v for k, v in container_run.data.metrics.items() if k.startswith("val_")}
    assert in_container and local.metrics == pytest.approx(in_container, abs=1e-12)


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(
        (REPO / "docker" / "grafana" / "dashboards" / "airloop.json").read_text()
    )
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def test_every_dashboard_expression_has_data(monitored, prometheus) -> None:
    from airloop.core.polling import WaitTimeout, wait_until

    pending = dashboard_expressions()
    assert len(pending) >= 8

    def all_answered() -> bool:
        for expr in list(pending):
            query = urllib.parse.urlencode({"query": expr})
            try:
                answer: Any = json.loads(get_text(f"{prometheus}/api/v1/query?{query}"))
            except OSError:
                return False  # prometheus not up yet
            if answer["status"] == "success" and answer["data"]["result"]:
                pending.remove(expr)
        return not pending

    try:
        wait_until(
            all_answered, timeout=120, what="data for every dashboard expression", interval=3
        )
    except WaitTimeout:
        pytest.fail(f"expressions without data: {pending}")
