"""PostgreSQL under a training run: its connections killed over and over, and the cluster
stopped and started again.

The tier's cluster holds the MLflow tracking server's store and airloop's metadata tables
(the champion decisions). A whole training run (``run_training``, with a DAG run's id in its
lineage, tried again as Airflow retries a failed task) runs in a thread while the main
thread injects the faults, keyed to what the run has written: once the run's MLflow run
exists, the cluster is stopped (fast shutdown: every session ended) for
:data:`STOP_SECONDS` and started again; then every connection to both databases is ended
with ``pg_terminate_backend`` every half second until the run ends. Connection pools must
recover (the tracking server's and this process's), and the history must hold exactly one of
everything: one version with its lineage, one finished MLflow run, one decision.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from tests.reliability.conftest import TRAINING_WINDOW, registry_state
from tests.reliability.history import check_one_run, training_runs
from tests.reliability.servers import AirloopServer, PostgresCluster, wait_for

STOP_SECONDS = 20.0  # the cluster down, mid-run
TERMINATE_EVERY = 0.5  # seconds between two rounds of pg_terminate_backend
TRIES = 3  # a task's tries (the DAGs' retries)
RUN_BUDGET = 300.0  # the run must end (succeed or give up) within this


def test_killed_connections_and_a_restarted_cluster_leave_one_of_everything(
    champion: str,
    tracking_server: AirloopServer,
    cluster: PostgresCluster,
    settings: Any,
    flights: Any,
) -> None:
    from airloop.metadata.store import MetadataStore
    from airloop.training.pipeline import TrainingRun, run_training

    run_id = f"manual__database_faults_{secrets.token_hex(4)}"
    lineage = {"trigger": "reliability tier", "dag_id": "model_training", "run_id": run_id}
    before = registry_state(settings)
    MetadataStore(settings).model_events()  # this process's pool holds a connection now
    failures: list[str] = []
    done: list[TrainingRun] = []

    def task() -> None:
        for _ in range(TRIES):
            try:
                done.append(run_training(*TRAINING_WINDOW, None, lineage, flights, settings))
                return
            except Exception as exc:  # a try that failed: Airflow would try it again
                failures.append(f"{type(exc).__name__}: {str(exc)[:300]}")

    started = time.monotonic()
    thread = threading.Thread(target=task, name="model_training")
    thread.start()
    wait_for(
        lambda: training_runs(cluster, run_id) or not thread.is_alive(),
        "the run opened no MLflow run",
        RUN_BUDGET,
    )
    assert thread.is_alive(), f"the run ended before any fault: {failures}"
    cluster.stop()
    stopped = time.monotonic()
    time.sleep(STOP_SECONDS)  # the outage itself, not a wait for an event
    cluster.start()
    down = time.monotonic() - stopped
    terminated = rounds = 0
    while thread.is_alive() and time.monotonic() - started < RUN_BUDGET:
        terminated += cluster.terminate_backends(["mlflow", "airloop"])
        rounds += 1
        thread.join(TERMINATE_EVERY)
    assert not thread.is_alive(), f"the run did not end within {RUN_BUDGET:.0f} s: {failures}"
    took = time.monotonic() - started

    assert done, f"every try failed: {failures}"
    [result] = done
    version = check_one_run(settings, cluster, before, run_id, result.promotion.promoted)
    assert result.registered.version == version
    # The pools recovered: this process and the tracking server answer at once.
    assert MetadataStore(settings).model_events() is not None
    assert registry_state(settings)["aliases"]["challenger"] == version
    print(
        f"\ntraining under PostgreSQL faults: the cluster down {down:.1f} s mid-run, then"
        f" {terminated} connections ended in {rounds} rounds of pg_terminate_backend;"
        f" {len(failures) + 1} tries ({failures or 'none failed'}), {took:.0f} s in all;"
        f" one version (v{version}), one MLflow run, one decision"
    )


def test_the_feast_sql_registry_reconnects_after_postgresql_restarts(
    cluster: PostgresCluster, settings: Any, flights: Any, tmp_path: Any
) -> None:
    """Production's Feast registry is SQL on PostgreSQL: a long-lived process (a worker, the
    service) that read it before a restart reads it again after, at the first try."""
    from airloop.features.store import apply_definitions, feature_store

    cluster.sql("CREATE DATABASE feast_registry")
    registry = settings.model_copy(
        update={
            "feast_registry_url": cluster.url("feast_registry", "postgresql+psycopg2"),
            "feast_online_store": "sqlite",
            "home": tmp_path,
        }
    )
    store = apply_definitions(registry, flights)
    view = flights.feature_views[0].name
    assert store.registry.get_feature_view(view, flights.name, allow_cache=False).name == view

    cluster.stop()  # every session ended: the pool's connection is dead
    cluster.start()

    assert store.registry.get_feature_view(view, flights.name, allow_cache=False).name == view
    again = feature_store(registry, flights)  # a new store in the same process, as a task makes
    assert again.get_feature_view(view).name == view
