"""The loop on the production profile: PostgreSQL, Redis, two Celery workers, an MLflow tracking
server and Feast's SQL registry, all real processes, driven as a user would (CLI and REST)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from tests.production.conftest import AIRLOOP, FIRST_DAYS, SECOND_REPLICA_PORT
from tests.traffic import (
    FIRST_FLIGHT,
    FIRST_FLIGHT_REQUEST,
    day,
    days,
    drifted,
    like_the_reference,
    write_served,
)

pytestmark = pytest.mark.production


def wait_all(client: Any, dag_id: str, runs: list[dict[str, Any]]) -> list[str]:
    return [client.wait_for_run(dag_id, r["dag_run_id"], timeout=600)["state"] for r in runs]


def test_doctor_passes_on_the_running_topology(stack, user_env) -> None:
    out = subprocess.run([AIRLOOP, "doctor"], env=user_env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    for check in (
        "Airflow metadata DB",
        "Celery broker",
        "MLflow tracking server",
        "Feast registry",
    ):
        assert any(line.startswith("ok") and check in line for line in out.stdout.splitlines()), (
            out.stdout
        )
    assert "the api-server signs with this environment's JWT secret" in out.stdout


def test_feature_pipeline_runs_on_the_celery_workers(features_ran, settings) -> None:
    """Each interval's feature views written to Redis by two mapped tasks (the default
    writers with the SQL registry), each view's window recorded in that registry."""
    from datetime import UTC, datetime

    from sqlalchemy import create_engine, text

    from airloop.features.store import feature_store, materialized_until

    assert [r["state"] for r in features_ran] == ["success"] * FIRST_DAYS
    engine = create_engine(settings.airflow_db_conn)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT run_id, map_index, state, pool FROM task_instance"
                " WHERE dag_id = 'feature_pipeline' AND task_id = 'materialize_online'"
            )
        ).fetchall()
    engine.dispose()
    by_run: dict[str, list[tuple[int, str, str]]] = {}
    for run_id, index, state, pool in rows:
        by_run.setdefault(run_id, []).append((index, state, pool))
    ran = {r["dag_run_id"] for r in features_ran}
    both = [(0, "success", "airloop_online_store"), (1, "success", "airloop_online_store")]
    assert {run: sorted(tis) for run, tis in by_run.items() if run in ran} == {r: both for r in ran}
    store = feature_store(settings, _flights())
    last = datetime(2013, 1, FIRST_DAYS + 1, tzinfo=UTC)
    views = [v.name for v in _flights().feature_views]
    assert {v: materialized_until(store, [v]) for v in views} == dict.fromkeys(views, last)


def test_training_registers_a_champion_with_lineage_on_the_tracking_server(
    first_training, settings
):
    from airloop.registry.tracking import configure

    run_id = first_training["dag_run_id"]
    mlflow = configure(settings)
    assert settings.tracking_uri.startswith("http://")
    # The run's version (a later test's retraining may have moved the alias since): the first
    # champion, promoted and deployed.
    [champion] = mlflow.search_model_versions(
        f"name = 'flight_delay' and tags.`airloop.run_id` = '{run_id}'"
    )
    tags = champion.tags
    assert tags["airloop.promotion"].startswith("promoted, first champion"), tags
    assert tags["airloop.feature_service"] == "flight_delay_v1"
    assert tags["airloop.deploy"].startswith(
        f"ok: {settings.serving_url} serves v{champion.version}"
    )
    # Artifacts go through the server to the shared root, not to a local folder.
    artifacts = {a.path for a in mlflow.list_artifacts(champion.run_id)}
    assert {"evaluation", "reference"} <= artifacts
    assert any((settings.shared / "mlflow-artifacts").rglob("reference.parquet"))


def test_the_champion_answers_with_online_features_from_redis(first_training, settings) -> None:
    import redis

    from airloop.core.http import HttpError, request_json
    from airloop.features.store import feature_store

    store = feature_store(settings, _flights())
    online = store.get_online_features(
        features=store.get_feature_service("flight_delay_v1"),
        entity_rows=[FIRST_FLIGHT],
        full_feature_names=True,
    ).to_dict()
    assert online["carrier_delays__count_1d"][0] > 0
    db = int(settings.feast_redis_url.rsplit("db=", 1)[1])
    assert redis.Redis(host="127.0.0.1", port=6379, db=db).dbsize() > 100
    body = {"instances": [FIRST_FLIGHT_REQUEST]}
    url = f"{settings.serving_url}/v1/predict"
    with pytest.raises(HttpError) as refused:
        request_json("POST", url, body)
    assert refused.value.status == 401
    answer = request_json("POST", url, body, token=settings.serving_token.get_secret_value())
    assert answer["model"]["name"] == "flight_delay"
    # Only an input missing by nature may be missing (the aircraft's earlier departure).
    allowed = set(_flights().training.max_null_shares)
    assert set(answer["predictions"][0]["missing_features"]) <= allowed, answer


def _flights() -> Any:
    from airloop.usecase import load_usecase

    return load_usecase("flights")


def test_drift_opens_a_request_that_retrains_through_the_asset(
    client, first_training, settings
) -> None:
    from airloop.metadata.ledger import FeedbackLedger
    from airloop.registry.models import alias_version

    version = alias_version(settings, "flight_delay")
    assert version is not None
    for d in (4, 5):
        rows = drifted(like_the_reference(settings, _flights(), version, d, seed=d), _flights())
        write_served(settings, _flights(), rows, version)
    before = {r["dag_run_id"] for r in client.dag_runs("model_training")}
    runs = client.queue_intervals("monitoring", days(4, 5), "production tier")
    assert wait_all(client, "monitoring", runs) == ["success", "success"]
    ledger = FeedbackLedger(settings.monitoring_root("flights"))
    assert [ledger.decision_for(day(d))["action"] for d in (4, 5)] == ["waiting", "requested"]
    [request] = ledger.requests()
    assert request["reasons"][0]["check"] == "data_drift"
    deadline = time.monotonic() + 180
    retrain: list[dict[str, Any]] = []
    while not retrain and time.monotonic() < deadline:
        retrain = [
            r
            for r in client.dag_runs("model_training")
            if r["dag_run_id"] not in before and r["run_type"] == "asset_triggered"
        ]
        time.sleep(1)
    assert retrain, "the retrain request started no model_training run"
    client.wait_for_run("model_training", retrain[0]["dag_run_id"], timeout=600)
    closed = ledger.request(request["request_id"])
    assert closed is not None and closed["status"] == "closed"
    assert closed["outcome"]["result"] in ("promoted", "refused by the gate")


def test_tasks_ran_under_celery_on_both_workers(first_training, settings) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(settings.airflow_db_conn)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT hostname, count(*), count(external_executor_id) FROM task_instance"
                " WHERE state = 'success' GROUP BY hostname"
            )
        ).fetchall()
    engine.dispose()
    by_host = {host.split(".")[0]: (total, celery) for host, total, celery in rows}
    assert set(by_host) == {"worker-1", "worker-2"}, by_host
    assert all(total == celery and total > 0 for total, celery in by_host.values()), by_host


def test_airloop_metadata_lives_in_the_production_database(first_training, settings) -> None:
    """The listener's records, the feature intervals and the champion history, in PostgreSQL."""
    from airloop.metadata.store import MetadataStore

    store = MetadataStore(settings)
    assert store.url == settings.airflow_db_conn and store.url.startswith("postgresql")
    tasks = store.task_runs("model_training")
    assert tasks and all(t["executor"] == "CeleryExecutor" for t in tasks), tasks[:2]
    assert {t["hostname"].split(".")[0] for t in store.task_runs()} <= {"worker-1", "worker-2"}
    assert [r["partition"] for r in store.intervals("flights")][:FIRST_DAYS] == [
        f"2013-01-{d:02d}" for d in range(1, FIRST_DAYS + 1)
    ]
    assert store.model_events("flight_delay")[0]["kind"] == "promoted"


def test_two_serving_replicas_both_take_a_new_champion(
    first_training, stack, user_env, settings
) -> None:
    from airloop.core.http import request_json
    from airloop.core.polling import wait_until
    from airloop.registry.tracking import configure

    env = {**user_env, "AIRLOOP_SERVING_PORT": str(SECOND_REPLICA_PORT)}
    replica = subprocess.Popen(
        [AIRLOOP, "serve", "--port", str(SECOND_REPLICA_PORT), "--poll", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    urls = [settings.serving_url, f"http://127.0.0.1:{SECOND_REPLICA_PORT}"]
    try:

        def version_at(url: str) -> str | None:
            try:
                return str(request_json("GET", f"{url}/ready", timeout=5)["model"]["version"])
            except Exception:
                return None

        wait_until(lambda: version_at(urls[1]), timeout=120, what="the second replica ready")
        mlflow = configure(settings)
        champion = mlflow.get_model_version_by_alias("flight_delay", "champion")
        import mlflow as mlflow_module

        new = mlflow_module.register_model(f"runs:/{champion.run_id}/model", "flight_delay")
        mlflow.set_registered_model_alias("flight_delay", "champion", new.version)
        both = wait_until(
            lambda: all(version_at(u) == str(new.version) for u in urls),
            timeout=60,
            what="both replicas serving the new champion",
        )
        assert both
    finally:
        replica.terminate()
        replica.wait(timeout=30)
