"""What a ``model_training`` run of the tier left in MLflow, checked the same way by every
fault test: exactly one model version for the run, with its lineage."""

from __future__ import annotations

from typing import Any


def run_version(settings: Any, run_id: str) -> tuple[Any, list[Any]]:
    """The run's one model version (its lineage tags checked) and the MLflow runs of its
    training."""
    from airloop.registry.tracking import configure

    mlflow = configure(settings)
    versions = mlflow.search_model_versions(
        f"name = 'flight_delay' and tags.`airloop.run_id` = '{run_id}'"
    )
    assert len(versions) == 1, [v.version for v in versions]
    [version] = versions
    assert version.tags["airloop.training_set_digest"] and version.tags["airloop.feature_views"]
    experiment = mlflow.get_experiment_by_name("flights/training")
    runs = mlflow.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`airloop.run_id` = '{run_id}' and tags.`airloop.stage` = 'train'",
    )
    return version, list(runs)


def champion_ready(settings: Any) -> bool:
    """The champion alias points at a version MLflow has ready."""
    from airloop.registry.tracking import configure

    mlflow = configure(settings)
    champion = mlflow.get_model_version_by_alias("flight_delay", "champion")
    return bool(mlflow.get_model_version("flight_delay", champion.version).status == "READY")
