"""Feast, configured from settings and defined from the use case.

The same functions build the store for the embedded default (DuckDB offline, SQLite online,
file registry) and for production (Redis online store, SQL registry), so nothing here assumes
one machine. ``feature_repo/`` exposes the same definitions to the ``feast`` CLI.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.data.intervals import as_utc, partition_key
from airloop.features.compute import EVENT_TS, feature_dtype_kind
from airloop.settings import Settings
from airloop.usecase import UseCase

log = logging.getLogger(__name__)

EVENTS_TABLE = "_events"
LABELS_TABLE = "_labels"


def offline_root(settings: Settings, usecase: UseCase) -> Path:
    return settings.offline_dir / usecase.name


def table_dir(settings: Settings, usecase: UseCase, table: str) -> Path:
    return offline_root(settings, usecase) / table


def partition_file(settings: Settings, usecase: UseCase, table: str, start: datetime) -> Path:
    return table_dir(settings, usecase, table) / f"{partition_key(start)}.parquet"


def write_partition(df: pd.DataFrame, path: Path) -> Path:
    """Overwrite one partition file atomically: reruns replace, never append."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    # An empty or all-missing text column has Arrow type null; readers of many partitions
    # (DuckDB behind Feast) need every file to agree, so such columns are written as strings.
    fields = [
        pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema
    ]
    table = table.cast(pa.schema(fields, metadata=table.schema.metadata))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def read_partitions(
    settings: Settings, usecase: UseCase, table: str, since: datetime, until: datetime
) -> pd.DataFrame | None:
    """Concatenate a table's partitions whose interval starts in [since, until)."""
    lo, hi = pd.Timestamp(as_utc(since)), pd.Timestamp(as_utc(until))
    frames = []
    for path in sorted(table_dir(settings, usecase, table).glob("*.parquet")):
        started = pd.Timestamp(path.stem, tz="UTC")
        if lo <= started < hi:
            frames.append(pd.read_parquet(path))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)


def repo_config(settings: Settings, usecase: UseCase) -> Any:
    from feast.repo_config import RepoConfig

    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    if settings.feast_online_store == "redis":
        online: dict[str, Any] = {"type": "redis", "connection_string": settings.feast_redis_url}
    else:
        online = {"type": "sqlite", "path": str(settings.online_store_path)}
    registry: Any = settings.feast_registry
    if settings.feast_registry_url and "://" in settings.feast_registry_url:
        registry = {
            "registry_type": "sql",
            "path": settings.feast_registry_url,
            "cache_ttl_seconds": 60,
        }
    return RepoConfig(
        project=usecase.name,
        provider="local",
        registry=registry,
        offline_store={"type": "duckdb"},
        online_store=online,
        entity_key_serialization_version=3,
        repo_path=str(settings.feast_dir),
    )


def feature_store(settings: Settings, usecase: UseCase) -> Any:
    from feast import FeatureStore

    return FeatureStore(config=repo_config(settings, usecase))


def definitions(settings: Settings, usecase: UseCase) -> dict[str, list[Any]]:
    """Feast objects for the use case: entities, file sources, feature views, the service."""

    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64, String

    dtypes = {"float": Float64, "int": Int64, "string": String}
    tags = {"usecase": usecase.name, "managed_by": "airloop"}
    entities = {
        e.name: Entity(
            name=e.name,
            join_keys=[e.join_key],
            value_type=ValueType.STRING,
            description=e.description,
            owner=usecase.owner,
            tags=tags,
        )
        for e in usecase.entities
    }
    sources, views = [], []
    for spec in usecase.feature_views:
        source = FileSource(
            name=f"{spec.name}_source",
            path=str(table_dir(settings, usecase, spec.name) / "*.parquet"),
            timestamp_field=EVENT_TS,
            owner=usecase.owner,
            tags=tags,
        )
        key = usecase.entity(spec.entity).join_key
        schema = [Field(name=key, dtype=String)] + [
            Field(name=name, dtype=dtypes[feature_dtype_kind(spec, name)])
            for name in spec.feature_names()
        ]
        views.append(
            FeatureView(
                name=spec.name,
                entities=[entities[spec.entity]],
                ttl=spec.ttl if spec.ttl else timedelta(0),
                schema=schema,
                source=source,
                online=True,
                description=spec.description,
                owner=usecase.owner,
                tags={**tags, "kind": spec.kind},
            )
        )
        sources.append(source)
    by_name = {v.name: v for v in views}
    service = FeatureService(
        name=usecase.feature_service.name,
        features=[by_name[v.name] for v in usecase.service_views],
        description=usecase.feature_service.description,
        owner=usecase.owner,
        tags=tags,
    )
    return {
        "entities": list(entities.values()),
        "data_sources": sources,
        "feature_views": views,
        "feature_services": [service],
    }


def apply_definitions(settings: Settings, usecase: UseCase, store: Any | None = None) -> Any:
    """Register the use case's objects in the Feast registry (idempotent)."""
    store = store or feature_store(settings, usecase)
    objects = [obj for group in definitions(settings, usecase).values() for obj in group]
    store.apply(objects)
    return store


def ensure_registered(settings: Settings, usecase: UseCase) -> Any:
    """The store, applying the definitions first if the registry does not know the service."""
    store = feature_store(settings, usecase)
    try:
        store.get_feature_service(usecase.feature_service.name)
    except Exception:
        apply_definitions(settings, usecase, store)
    return store


def materialized_until(store: Any, view_names: list[str]) -> datetime | None:
    """The latest end of any materialised window among the views (the online watermark)."""
    ends = []
    for name in view_names:
        for _, end in store.get_feature_view(name).materialization_intervals:
            ends.append(as_utc(end))
    return max(ends) if ends else None


def materialize_interval(
    settings: Settings, usecase: UseCase, start: datetime, end: datetime
) -> dict[str, Any]:
    """Load the interval's feature rows into the online store.

    The window runs from the interval's start to the later of its end and the online
    watermark: rerunning an old interval then rewrites the newest values last, so the online
    store always ends up holding the latest row per entity, whatever order runs finish in.
    """
    store = ensure_registered(settings, usecase)
    names = [v.name for v in usecase.feature_views]
    watermark = materialized_until(store, names)
    lo, hi = as_utc(start), as_utc(end)
    until = max(hi, watermark) if watermark else hi
    store.materialize(start_date=lo, end_date=until, feature_views=names)
    return {"start": lo.isoformat(), "end": until.isoformat(), "feature_views": names}


def materialize_as_of(
    settings: Settings, usecase: UseCase, when: datetime, store: Any | None = None
) -> None:
    """Make the online store hold each entity's latest row at ``when`` (the replay's clock).

    A replay serves a past day; this gives its requests the values a live store, fed as the
    data arrived, would have held at that moment, instead of the day's last ones. It rewrites
    rows, so only the replay client calls it, between the feature pipeline's runs.
    """
    store = store or ensure_registered(settings, usecase)
    horizon = max(v.ttl for v in usecase.feature_views)
    hi = as_utc(when)
    # Feast prints a progress report per call; a replay makes hundreds of calls.
    quiet = io.StringIO()
    with (
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", DeprecationWarning)
        store.materialize(
            start_date=hi - horizon,
            end_date=hi,
            feature_views=[v.name for v in usecase.feature_views],
        )
