"""The tracking server's artifact store fills up in the middle of a training run.

The artifact destination is a filesystem of its own (a tmpfs, see ``artifact_disk``), filled
to its last byte just before the task that writes the model's artifacts. The task fails with
an error that says the store is full (the tracking server answers only a bare HTTP 500: the
task looks at the store itself, on the shared root); the registry, its aliases and the champion are as they
were, and the MLflow run of the failed try is ended as failed, never left running. Once space
is freed, the task's retry succeeds, and the whole history is checked as for a stopped
tracking server: exactly one version for the run, with its lineage.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.reliability.conftest import TRAINING_WINDOW, ArtifactDisk, registry_state
from tests.reliability.history import check_one_run, training_runs
from tests.reliability.servers import PostgresCluster


def fill(folder: Path) -> Path:
    """A file that takes every free byte of the folder's filesystem."""
    ballast = folder / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 10, 1):  # megabytes, then the last kilobytes and bytes
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return ballast


def test_a_full_artifact_store_fails_the_task_with_the_reason_and_changes_nothing(
    champion: str,
    artifact_disk: ArtifactDisk,
    cluster: PostgresCluster,
    settings: Any,
    flights: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airloop.registry.tracking import ArtifactStoreError
    from airloop.serving.model import REGISTRY_CALLS
    from airloop.training.pipeline import (
        build_training_set,
        evaluate_model,
        promote_model,
        register_model,
        train_model,
        validate_training_set,
    )

    if artifact_disk.problem is not None:
        require_service(
            "a filesystem of its own for the artifact store (tmpfs)", artifact_disk.problem
        )
    for name, value in REGISTRY_CALLS.items():  # MLflow's retries of a 500 bounded, as serving's
        monkeypatch.setenv(name, value)
    run_id = f"manual__artifact_disk_full_{secrets.token_hex(4)}"
    lineage = {"trigger": "reliability tier", "dag_id": "model_training", "run_id": run_id}
    window = {"window_start": TRAINING_WINDOW[0], "window_end": TRAINING_WINDOW[1]}
    before = registry_state(settings)
    training_set = build_training_set(params=window, usecase=flights, settings=settings)
    validation = validate_training_set(training_set, flights, settings)

    ballast = fill(artifact_disk.folder)
    try:
        with pytest.raises(ArtifactStoreError) as failed:
            train_model(training_set, lineage, None, flights, settings)
    finally:
        ballast.unlink()
    message = str(failed.value)
    # The tracking server answered a bare HTTP 500; the task says why, from the shared root.
    assert f"the artifact store {artifact_disk.folder} is full" in message, message[:2000]
    assert "retry the task" in message
    assert registry_state(settings) == before
    runs = training_runs(cluster, run_id)
    assert all(status == "FAILED" for _, status in runs), runs  # never left RUNNING

    trained = train_model(training_set, lineage, None, flights, settings)  # the task's retry
    evaluation = evaluate_model(training_set, trained, flights, settings)
    registered = register_model(
        training_set, validation, trained, evaluation, lineage, flights, settings
    )
    promotion = promote_model(registered, flights, settings)
    version = check_one_run(settings, cluster, before, run_id, promotion.promoted)
    print(
        f"\nthe artifact store full during training: the task failed saying so"
        f" ({message.splitlines()[0][:160]}); registry and aliases unchanged, {len(runs)} MLflow"
        f" run(s) of the failed try ended FAILED; after space was freed the retry made"
        f" v{version} ({'promoted' if promotion.promoted else 'refused'}), one version"
    )
