"""Whether the stores slow the loop as they grow: their sizes and an online lookup's time.

A replay measures these at its first monitored interval and at its end, so a year's run says
whether the Feast registry, the online store, the prediction log, the monitoring ledger and
MLflow grew into a cost. Sizes of stores that live in a server (PostgreSQL, Redis, an MLflow
server) are not read here: they are None.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from airloop.core.columns import EVENTS_TABLE
from airloop.features.offline import read_partitions
from airloop.features.store import feature_store
from airloop.settings import Settings
from airloop.usecase import UseCase


def tree_bytes(path: Path) -> int | None:
    """Bytes under a file or folder; None when it does not exist."""
    if not path.exists():
        return None
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def online_lookup_ms(
    settings: Settings, usecase: UseCase, entity_rows: list[dict[str, Any]], repeats: int = 15
) -> float | None:
    """Median milliseconds of one lookup of the feature service for these entities (as the
    service makes it for a request of that many instances)."""
    if not entity_rows:
        return None
    store = feature_store(settings, usecase)
    service = store.get_feature_service(usecase.feature_service.name)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        store.get_online_features(
            features=service, entity_rows=entity_rows, full_feature_names=True
        )
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 2)


def store_figures(
    settings: Settings, usecase: UseCase, start: datetime, end: datetime, rows: int = 200
) -> dict[str, Any]:
    """Sizes of the embedded stores, and an online lookup for ``rows`` events of [start, end)."""
    events = read_partitions(settings, usecase, EVENTS_TABLE, start, end)
    entity_rows: list[dict[str, Any]] = []
    if events is not None:
        keys = [k for k in usecase.entity_keys if k in events.columns]
        sample = events.dropna(subset=keys).head(rows)
        entity_rows = [{k: row[k] for k in keys} for row in sample.to_dict("records")]
    registry = None if settings.feast_registry_url else Path(settings.feast_registry)
    embedded_mlflow = settings.mlflow_tracking_uri is None
    return {
        "feast_registry_bytes": tree_bytes(registry) if registry else None,
        "online_store_bytes": (
            tree_bytes(settings.online_store_path)
            if settings.feast_online_store == "sqlite"
            else None
        ),
        "offline_store_bytes": tree_bytes(settings.offline_dir),
        "prediction_log_bytes": tree_bytes(settings.prediction_log_dir(usecase.name)),
        "monitoring_bytes": tree_bytes(settings.monitoring_root(usecase.name)),
        "mlflow_bytes": tree_bytes(settings.mlflow_dir) if embedded_mlflow else None,
        "online_lookup_rows": len(entity_rows),
        "online_lookup_ms": online_lookup_ms(settings, usecase, entity_rows),
    }


__all__ = ["online_lookup_ms", "store_figures", "tree_bytes"]
