"""The whole stack of a profile, set up and brought to readiness: what ``up`` and the demo run.

Embedded: Airflow on SQLite with the preloading LocalExecutor, the serving API, the MLflow UI.
Production: Airflow on PostgreSQL with Celery workers, the MLflow tracking server, the serving
API, Feast's SQL registry and Redis online store.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable

from airloop.features.store import apply_definitions
from airloop.registry.tracking import init_tracking
from airloop.runtime.airflow_cli import migrate_db
from airloop.runtime.api import ApiClient
from airloop.runtime.services import Services, tracking_server_is_local, wait_http
from airloop.settings import Settings
from airloop.usecase import UseCase, active_usecases, scoped


def set_up_home(settings: Settings, usecase: UseCase) -> None:
    """Create the folders, migrate Airflow's DB, register the Feast definitions of every use
    case this Airflow runs (each its own Feast project), and (embedded)
    create MLflow's store; a tracking server migrates its own store when it starts."""
    folders = (settings.home, settings.shared, settings.landing_dir, settings.feast_dir)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    migrate_db(settings)
    usecases = {uc.name: uc for uc, _ in active_usecases(settings)}
    usecases.setdefault(usecase.name, usecase)
    for each in usecases.values():
        apply_definitions(settings, each)
    if settings.mlflow_tracking_uri is None:
        settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
        _init_tracking_quietly(settings)


def _init_tracking_quietly(settings: Settings) -> None:
    # MLflow announces its schema migrations and SQLAlchemy warns about MLflow's mappers.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init_tracking(settings)


def wait_until_ready(
    settings: Settings, client: ApiClient, services: Services, dags: Iterable[str]
) -> None:
    """Wait for Airflow and these DAGs, the tracking server (production), and the serving API."""
    client.wait_healthy(services.check_alive)
    for dag_id in dags:
        client.wait_for_dag(dag_id, services.check_alive)
    if settings.mlflow_tracking_uri is not None and tracking_server_is_local(settings):
        wait_http(f"{settings.tracking_uri.rstrip('/')}/health", services)
    if settings.mlflow_tracking_uri is not None:
        _init_tracking_quietly(settings)
    for usecase, _ in active_usecases(settings):
        wait_http(f"{scoped(settings, usecase).serving_url}/health", services)
