"""The MLflow tracking server stops in the middle of a training run.

The run is a ``model_training`` DAG run's tasks, called as its tasks call them (one stage
function each, the Airflow run's id in the lineage), and each task that fails is tried again
as Airflow retries it. The server is stopped twice: before the task that opens the MLflow run
(nothing of the run is written yet) and after it (the run and its model are written, nothing
is registered). Each time the task fails with an error that names the server, and changes
nothing in the registry; once the server is back, its retry succeeds. At the end the whole
history is checked: exactly one version for the run, with its lineage, one finished MLflow
run, one decision, the aliases as the decision says. Then every task is run a second time
for the same DAG run (a clear and rerun): still one version.

The tasks here bound MLflow's HTTP calls as the serving API does (2 tries, here 30 s each): with
MLflow's defaults (8 tries with exponential backoff, up to 120 s each) a call to a stopped
server fails only after about two minutes, which Airflow's retry follows just the same.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest

from tests.reliability.conftest import MODEL, TRAINING_WINDOW, registry_state
from tests.reliability.history import check_one_run, training_runs
from tests.reliability.servers import AirloopServer, PostgresCluster


def test_training_fails_naming_the_stopped_tracking_server_and_its_retry_registers_one_version(
    champion: str,
    tracking_server: AirloopServer,
    cluster: PostgresCluster,
    settings: Any,
    flights: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airloop.core.errors import PermanentError
    from airloop.serving.model import REGISTRY_CALLS
    from airloop.training.pipeline import (
        build_training_set,
        evaluate_model,
        promote_model,
        register_model,
        train_model,
        validate_training_set,
    )

    for name, value in REGISTRY_CALLS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")  # a shared machine's slow answer
    server = settings.tracking_uri.removeprefix("http://")
    run_id = f"manual__tracking_server_down_{secrets.token_hex(4)}"
    lineage = {"trigger": "reliability tier", "dag_id": "model_training", "run_id": run_id}
    window = {"window_start": TRAINING_WINDOW[0], "window_end": TRAINING_WINDOW[1]}
    before = registry_state(settings)

    def fails_naming_the_server(task: Any, *args: Any) -> float:
        """The task, with the server stopped: an error that names the server and that a retry
        may fix (not a PermanentError); the registry as it was. The seconds it took to fail."""
        started = time.monotonic()
        with pytest.raises(Exception) as failed:  # MLflow's, or its HTTP client's
            task(*args, flights, settings)
        took = time.monotonic() - started
        assert server in str(failed.value), str(failed.value)[:1000]
        assert not isinstance(failed.value, PermanentError)
        return took

    training_set = build_training_set(params=window, usecase=flights, settings=settings)
    validation = validate_training_set(training_set, flights, settings)

    tracking_server.stop()
    failed_train = fails_naming_the_server(train_model, training_set, lineage, None)
    restarted = [tracking_server.start()]
    assert registry_state(settings) == before
    assert training_runs(cluster, run_id) == []
    trained = train_model(training_set, lineage, None, flights, settings)  # the task's retry

    tracking_server.stop()
    failed_evaluate = fails_naming_the_server(evaluate_model, training_set, trained)
    restarted.append(tracking_server.start())
    assert registry_state(settings) == before
    evaluation = evaluate_model(training_set, trained, flights, settings)
    registered = register_model(
        training_set, validation, trained, evaluation, lineage, flights, settings
    )
    promotion = promote_model(registered, flights, settings)
    version = check_one_run(settings, cluster, before, run_id, promotion.promoted)
    assert (registered.name, registered.version, registered.created) == (MODEL, version, True)

    # Every task of the same DAG run once more: it finds what its earlier tries made.
    again = train_model(training_set, lineage, None, flights, settings)
    assert again.run_id == trained.run_id
    evaluation = evaluate_model(training_set, again, flights, settings)
    rerun = register_model(training_set, validation, again, evaluation, lineage, flights, settings)
    assert (rerun.version, rerun.created) == (version, False)
    promote_model(rerun, flights, settings)
    check_one_run(settings, cluster, before, run_id, promotion.promoted)
    print(
        f"\ntracking server stopped twice in one training run: the train task failed in"
        f" {failed_train:.1f} s, the evaluate task in {failed_evaluate:.1f} s, each naming"
        f" {server}; the server ready again in {restarted[0]:.1f} s and {restarted[1]:.1f} s;"
        f" the retries made v{version} ({'promoted' if promotion.promoted else 'refused'}),"
        f" one version, one MLflow run; the rerun of every task made none"
    )
