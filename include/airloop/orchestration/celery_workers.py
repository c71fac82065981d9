"""Celery's configuration for airloop's workers: Airflow's own, plus the ML stack imported once
per worker, before its pool forks the processes that run tasks.

Without it, every task a Celery worker runs imports Feast, MLflow, Great Expectations,
scikit-learn and pandas again (seconds per task); the embedded profile's executor does the
same preloading (``orchestration.executor``). The production profile points Airflow at
``CELERY_CONFIG`` here (``[celery] celery_config_options``).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_init

from airloop.orchestration.executor import preload_modules

CELERY_CONFIG: dict[str, Any] = dict(DEFAULT_CELERY_CONFIG)


@worker_init.connect
def preload_before_the_pool_forks(**_: Any) -> None:
    """Celery calls this in a worker's main process, before it starts its pool (only there:
    the scheduler imports this module for the configuration and preloads nothing)."""
    preload_modules()
