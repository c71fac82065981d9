"""A cleared training run, rerun: its stages return what their first tries returned.

Found by tests/integration/test_rerun_identical.py: a rerun of ``evaluate_model`` after the
run's own promotion compared the model with itself (its version had become the champion), and
a rerun of ``train_model`` returned the ``test_*`` metrics evaluate had since logged to its run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from airloop.settings import Settings

RUN = {"dag_id": "model_training", "run_id": "manual__rerun"}


@pytest.fixture
def local(tmp_path, settings: Settings) -> Iterator[Settings]:
    """A home of its own: its MLflow store and its metadata tables (MLflow's process-wide URI
    pointed back at the session's after)."""
    from airloop.registry.tracking import configure

    yield Settings(home=tmp_path)
    configure(settings)


def version_of(settings: Settings, name: str) -> tuple[str, str]:
    """A new run with a registered version (no model file: the champion lookup reads neither)."""
    from airloop.registry.tracking import configure, experiment_id

    client = configure(settings)
    run = client.create_run(experiment_id(settings, "flights/training"))
    client.set_terminated(run.info.run_id)
    try:
        client.get_registered_model(name)
    except Exception:
        client.create_registered_model(name)
    mv = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    return str(mv.version), run.info.run_id


def unused_set() -> Any:
    """A reused run reads no training set: this one does not exist."""
    from airloop.training.dataset import TrainingSet

    return TrainingSet(
        uri="/nowhere.parquet",
        digest="",
        rows=0,
        start="2013-01-01",
        end="2013-01-09",
        as_of="2013-01-09",
        feature_service="flight_delay_v1",
        feature_columns=[],
    )


def promoted(settings: Settings, usecase: Any, version: str, before: str | None) -> None:
    from airloop.metadata.store import MetadataStore

    MetadataStore(settings).record_model_event(
        {
            "usecase": usecase.name,
            "model": usecase.training.model_name,
            "kind": "promoted",
            "version": version,
            "champion_before": before,
            "champion_after": version,
            "effective_at": datetime(2013, 1, 9, tzinfo=UTC),
            "actor": "the gate",
            "reason": "",
            "evidence": {},
            **RUN,
        }
    )


def test_a_run_is_evaluated_against_the_champion_its_promotion_replaced(local, flights) -> None:
    from airloop.registry.models import CHAMPION, champion_to_beat
    from airloop.registry.tracking import configure

    client = configure(local)
    name = flights.training.model_name
    old, old_run = version_of(local, name)
    new, new_run = version_of(local, name)
    assert champion_to_beat(local, flights, new_run) is None, "no champion yet"
    client.set_registered_model_alias(name, CHAMPION, old)
    assert champion_to_beat(local, flights, new_run) == old
    # The run's version was promoted over the old one: its rerun still compares with the old.
    promoted(local, flights, new, old)
    client.set_registered_model_alias(name, CHAMPION, new)
    assert champion_to_beat(local, flights, new_run) == old
    assert champion_to_beat(local, flights, old_run) == new, "another run's: the champion"


def test_a_first_champion_or_one_set_by_hand_is_never_its_own_rival(local, flights) -> None:
    from airloop.registry.models import CHAMPION, champion_to_beat
    from airloop.registry.tracking import configure

    client = configure(local)
    name = flights.training.model_name
    first, first_run = version_of(local, name)
    promoted(local, flights, first, None)
    client.set_registered_model_alias(name, CHAMPION, first)
    assert champion_to_beat(local, flights, first_run) is None
    by_hand, by_hand_run = version_of(local, name)
    client.set_registered_model_alias(name, CHAMPION, by_hand)
    assert champion_to_beat(local, flights, by_hand_run) is None


def test_a_reused_training_run_returns_its_validation_metrics_only(local, flights) -> None:
    import mlflow

    from airloop.registry.tracking import configure, experiment_id
    from airloop.training.train import lineage_tags, train_and_log

    configure(local)
    with mlflow.start_run(experiment_id=experiment_id(local, "flights/training")) as run:
        mlflow.set_tags({**lineage_tags(RUN), "airloop.stage": "train"})
        mlflow.log_metrics({f"val_{m}": 0.5 for m in flights.metrics})
        mlflow.log_metrics({f"test_{m}": 0.25 for m in flights.metrics})  # evaluate's, later
    trained = train_and_log(local, flights, unused_set(), lineage=RUN)
    assert trained.run_id == run.info.run_id
    assert trained.metrics == {f"val_{m}": 0.5 for m in flights.metrics}


def test_a_reused_training_run_returns_the_configuration_it_kept(local, flights) -> None:
    """Candidate selection may have kept another family than the one asked for: a retried
    task returns the one its run kept, as its first try did."""
    import mlflow

    from airloop.registry.tracking import configure, experiment_id
    from airloop.training.train import CONFIG_TAG, TrainConfig, lineage_tags, train_and_log

    kept = TrainConfig(family="logistic", seed=7)
    configure(local)
    with mlflow.start_run(experiment_id=experiment_id(local, "flights/training")):
        mlflow.set_tags(
            {**lineage_tags(RUN), "airloop.stage": "train", CONFIG_TAG: kept.model_dump_json()}
        )
    trained = train_and_log(local, flights, unused_set(), lineage=RUN)
    assert trained.config == kept
