"""MLflow as registry and metadata store, configured from settings (no work at import time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airloop.settings import Settings

# The MLflow runs this process started or reused since the last forget_runs(): the listener
# records them on the task instance, so Airflow links to MLflow as MLflow links to Airflow.
_TOUCHED: list[str] = []


def note_run(run_id: str) -> str:
    """Remember that the current task wrote to this MLflow run."""
    if run_id not in _TOUCHED:
        _TOUCHED.append(run_id)
    return run_id


def touched_runs() -> list[str]:
    """The MLflow runs noted since the last :func:`forget_runs`."""
    return list(_TOUCHED)


def forget_runs() -> None:
    """Start a new task's list (tasks share a process under ``dag.test()``)."""
    _TOUCHED.clear()


def configure(settings: Settings) -> Any:
    """Point MLflow at airloop's tracking store and return a client."""
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    from mlflow import MlflowClient

    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def open_stores(settings: Settings) -> bool:
    """Build MLflow's tracking and registry stores in this process, then close their database
    connections; False (nothing built) while the embedded tracking database does not exist.

    MLflow keeps one store per URI for the life of a process, and building a database store
    checks its schema (about 0.15 s). The executor builds them before it forks its workers, so
    each task finds them built and opens connections of its own. It reads MLflow's private
    handles on the stores and their engines (the lock file pins MLflow).
    """
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    uri = settings.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return False  # the first task creates it, as before
    client = configure(settings)
    _ = client._tracking_client.store, client._get_registry_client().store
    for engine in [*TrackingStore._engine_map.values(), *RegistryStore._engine_map.values()]:
        engine.dispose()  # no connection crosses a fork
    return True


def experiment_id(settings: Settings, name: str) -> str:
    """The experiment's id, creating it with an artifact root inside the home when local."""
    client = configure(settings)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if settings.mlflow_tracking_uri is None:
        location = f"file://{settings.mlflow_artifact_root}/{name.replace('/', '__')}"
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except Exception:  # another task created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def experiment_name(usecase_name: str, kind: str) -> str:
    """The MLflow experiment of a use case's runs of one kind (training, monitoring, ...)."""
    return f"{usecase_name}/{kind}"


def init_tracking(settings: Settings) -> None:
    """Create the tracking store's schema once, at set-up, not in the first process to need it."""
    client = configure(settings)
    client.search_experiments(max_results=1)
