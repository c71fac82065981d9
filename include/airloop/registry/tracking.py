"""MLflow as registry and metadata store, configured from settings (no work at import time)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


LOW_SPACE_BYTES = (
    16 << 20
)  # less than this free where artifacts go: the likely reason a write failed


def artifact_store(settings: Settings) -> Path | None:
    """The folder where this deployment's MLflow keeps artifacts, when this process can see it:
    the embedded root, or the tracking server's destination on the shared root (a ``file:`` URI);
    None for a remote store (``s3://``, ...)."""
    if settings.mlflow_tracking_uri is None:
        return Path(settings.mlflow_artifact_root)
    destination = settings.mlflow_artifacts
    if destination.startswith("file://"):
        return Path(destination.removeprefix("file://"))
    if "://" not in destination:
        return Path(destination)
    return None


def artifact_store_problem(settings: Settings) -> str | None:
    """Why artifacts cannot be written where MLflow keeps them, as far as this process can
    tell: the folder missing, full, or refusing a write. A tracking server answers such a
    failure with a bare HTTP 500, so the task that saw it says the reason from here."""
    import os
    import shutil
    import tempfile

    folder = artifact_store(settings)
    if folder is None:
        return None
    if not folder.is_dir():
        return f"the artifact store {folder} does not exist or is not a folder"
    free = shutil.disk_usage(folder).free
    if free < LOW_SPACE_BYTES:
        return f"the artifact store {folder} is full: {free:,} bytes free"
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".airloop-probe-") as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return f"the artifact store {folder} refuses a write: {exc.strerror or exc}"
    return None


class ArtifactStoreError(OSError):
    """Artifacts could not be stored; the message says why and what to do."""


@contextmanager
def artifacts_stored(settings: Settings) -> Iterator[None]:
    """Around writes of artifacts: a failure whose reason this process can see (a full or
    unwritable store) is raised as :class:`ArtifactStoreError` saying it."""
    try:
        yield
    except Exception as exc:
        problem = artifact_store_problem(settings)
        if problem is None:
            raise
        raise ArtifactStoreError(
            f"storing the model's artifacts failed: {problem}. Free space (or fix the folder)"
            f" and retry the task; MLflow said: {exc}"
        ) from exc


def end_abandoned_runs(settings: Settings, experiment: str, tags: dict[str, str]) -> list[str]:
    """Runs of an earlier try of this task still marked running: ended as ``KILLED``.

    A try killed with its process (a worker's ``kill -9``, a lost machine) cannot end its MLflow
    run; Airflow starts the next try only once it has given that one up, so the next try ends
    it, and no run is left half-open. Returns the runs it ended."""
    client = configure(settings)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    filters = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    runs = client.search_runs(
        [found.experiment_id], filter_string=f"{filters} and attributes.status = 'RUNNING'"
    )
    for run in runs:
        client.set_tag(run.info.run_id, "airloop.ended_by", "the next try of its task")
        client.set_terminated(run.info.run_id, status="KILLED")
    return [run.info.run_id for run in runs]
