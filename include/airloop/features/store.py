"""Feast, configured from settings and defined from the use case.

The same functions build the store for the embedded default (DuckDB offline, SQLite online,
file registry) and for production (Redis online store, SQL registry), so nothing here assumes
one machine. ``feature_repo/`` exposes the same definitions to the ``feast`` CLI.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from airloop.core.columns import EVENT_TS
from airloop.core.periods import Span
from airloop.core.records import Record
from airloop.data.intervals import as_utc
from airloop.features.offline import read_partitions, table_dir
from airloop.settings import Settings
from airloop.usecase import Duration, FeatureView, UseCase

log = logging.getLogger(__name__)


class Materialized(Record):
    """The window written to the online store, and the views it covered."""

    start: str
    end: str
    feature_views: list[str]


# Feast's DuckDB store, reading only the rows a training set's join can use (named here, not
# imported: the module imports Feast, which Feast's config loading does when it is needed).
OFFLINE_STORE = "airloop.features.duckdb_store.WindowedDuckDBOfflineStore"
# Feast's SQLite online store, writing each batch with one executemany (named here likewise).
ONLINE_SQLITE = "airloop.features.sqlite_online.BatchedSqliteOnlineStore"


def store_config(settings: Settings) -> dict[str, Any]:
    """Feast's registry and stores for the profile: one source for airloop and the ``feast`` CLI.

    Embedded: a registry file, SQLite online. Production: the SQL registry (required for
    concurrent materialisation), Redis online. Both: DuckDB over the Parquet partitions
    (``features.duckdb_store``). SQLite, in whichever profile: Feast's store with batched
    writes (``features.sqlite_online``), the same tables.
    """
    if settings.feast_online_store == "redis":
        online: dict[str, Any] = {"type": "redis", "connection_string": settings.feast_redis_url}
    else:
        online = {"type": ONLINE_SQLITE, "path": str(settings.online_store_path)}
    registry: Any = settings.feast_registry
    if settings.feast_registry_url and "://" in settings.feast_registry_url:
        registry = {
            "registry_type": "sql",
            "path": settings.feast_registry_url,
            "cache_ttl_seconds": 60,
            # A pooled connection is tested before use: after PostgreSQL restarts, a process's
            # next registry read reconnects instead of failing once on a dead connection.
            "sqlalchemy_config_kwargs": {"echo": False, "pool_pre_ping": True},
        }
    return {"registry": registry, "offline_store": {"type": OFFLINE_STORE}, "online_store": online}


def online_store_name(settings: Settings) -> str:
    """The online store as an operator knows it, for errors and ``/ready``: ``Redis at
    127.0.0.1:6379`` (the address only: the connection string's options may hold a password),
    ``SQLite at <path>``."""
    if settings.feast_online_store == "redis":
        return f"Redis at {settings.feast_redis_url.split(',')[0]}"
    return f"SQLite at {settings.online_store_path}"


# redis-py waits without end for a Redis that accepts connections and never answers (a stopped
# process, a host gone without a reset) unless it has socket timeouts, and Feast sets none. The
# serving API's lookups get these (an operator's own values in the URL win).
SERVING_REDIS_TIMEOUTS = {"socket_timeout": "2", "socket_connect_timeout": "2"}


def bounded_lookups(settings: Settings) -> Settings:
    """The settings for the serving API: its Redis connection with :data:`SERVING_REDIS_TIMEOUTS`."""
    if settings.feast_online_store != "redis":
        return settings
    url = settings.feast_redis_url
    given = {part.split("=", 1)[0].strip() for part in url.split(",") if "=" in part}
    extra = [f"{k}={v}" for k, v in SERVING_REDIS_TIMEOUTS.items() if k not in given]
    return settings.model_copy(update={"feast_redis_url": ",".join([url, *extra])})


def repo_config(settings: Settings, usecase: UseCase) -> Any:
    """Feast's configuration for the use case, from the settings (embedded or production)."""
    from feast.repo_config import RepoConfig

    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    return RepoConfig(
        project=usecase.name,
        provider="local",
        entity_key_serialization_version=3,
        repo_path=str(settings.feast_dir),
        **store_config(settings),
    )


def feature_store(settings: Settings, usecase: UseCase) -> Any:
    """A Feast FeatureStore for the use case (nothing registered here: see apply_definitions)."""
    from feast import FeatureStore

    return FeatureStore(config=repo_config(settings, usecase))


TAGS = {"managed_by": "airloop"}


def feast_ttl(ttl: Duration) -> timedelta:
    """Feast wants a fixed length: months count at their longest, so no row expires early."""
    return Span.parse(ttl).longest if ttl else timedelta(0)


def feast_view(
    settings: Settings, usecase: UseCase, spec: FeatureView, entity: Any
) -> tuple[Any, Any]:
    """A feature view of the use case as Feast's FeatureView, with its Parquet file source."""
    from feast import FeatureView as FeastView
    from feast import Field, FileSource
    from feast.types import Float64, Int64, String

    dtypes = {"float": Float64, "int": Int64, "string": String}
    tags = {**TAGS, "usecase": usecase.name}
    source = FileSource(
        name=f"{spec.name}_source",
        path=str(table_dir(settings, usecase, spec.name) / "*.parquet"),
        timestamp_field=EVENT_TS,
        owner=usecase.owner,
        tags=tags,
    )
    key = usecase.entity(spec.entity).join_key
    schema = [Field(name=key, dtype=String)] + [
        Field(name=name, dtype=dtypes[dtype])
        for name, dtype in spec.feature_dtypes(usecase).items()
    ]
    view = FeastView(
        name=spec.name,
        entities=[entity],
        ttl=feast_ttl(spec.ttl),
        schema=schema,
        source=source,
        online=True,
        description=spec.description,
        owner=usecase.owner,
        tags={**tags, "kind": spec.kind},
    )
    return view, source


def definitions(settings: Settings, usecase: UseCase) -> dict[str, list[Any]]:
    """Feast objects for the use case: entities, file sources, feature views, the service."""
    from feast import Entity, FeatureService, ValueType

    tags = {**TAGS, "usecase": usecase.name}
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
    built = [feast_view(settings, usecase, v, entities[v.entity]) for v in usecase.feature_views]
    by_name = {view.name: view for view, _ in built}
    service = FeatureService(
        name=usecase.feature_service.name,
        features=[by_name[v.name] for v in usecase.service_views],
        description=usecase.feature_service.description,
        owner=usecase.owner,
        tags=tags,
    )
    return {
        "entities": list(entities.values()),
        "data_sources": [source for _, source in built],
        "feature_views": [view for view, _ in built],
        "feature_services": [service],
    }


def apply_definitions(settings: Settings, usecase: UseCase, store: Any | None = None) -> Any:
    """Register the use case's objects in the Feast registry (idempotent)."""
    store = store or feature_store(settings, usecase)
    objects = [obj for group in definitions(settings, usecase).values() for obj in group]
    store.apply(objects)
    return store


def historical_features(settings: Settings, usecase: UseCase, entity_rows: Any) -> Any:
    """The feature service's point-in-time values for these rows (entity keys, event_id and
    event_timestamp), by full feature name: what the service would have looked up then."""
    store = feature_store(settings, usecase)
    return store.get_historical_features(
        entity_df=entity_rows,
        features=store.get_feature_service(usecase.feature_service.name),
        full_feature_names=True,
    ).to_df()


class OnlineRows:
    """A view's rows, converted once into what Feast's online store writes, then written in
    slices of positions.

    ``FeatureStore.write_to_online_store`` converts its frame (pandas to Arrow to protobuf)
    and looks the view up in the registry on every call: for the replay clock's many small
    writes (six views, every hour of a replayed day) that was most of its time. Here a day's
    rows are converted once; a write is then the online store's own batch write of the rows
    at some positions. As in ``write_to_online_store``, a write whose rows hold no feature
    value at all is not made (Feast refuses it). It calls the provider's conversion and
    batch write, which ``write_to_online_store`` calls, by their private names (the lock file
    pins Feast): the replay-clock integration test compares what is then served with Feast's
    point-in-time join and fails if an upgrade changes them.
    """

    def __init__(self, store: Any, view_name: str, rows: Any) -> None:
        self.store = store
        self.view = store.get_feature_view(view_name)
        rows = rows.reset_index(drop=True)
        self.provider = store._get_provider()
        self.prepared = self.provider._prep_rows_to_write_for_ingestion(self.view, rows)
        features = [f.name for f in self.view.features]
        self.empty = rows[features].isna().all(axis=1).to_numpy()

    def write(self, positions: Any) -> None:
        """Write the rows at these positions (in this order) in one batch."""
        if len(positions) == 0 or self.empty[positions].all():
            return
        batch = [self.prepared[i] for i in positions]
        self.provider.online_write_batch(self.store.config, self.view, batch, progress=None)


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


# Rows per online write: Feast converts a write's rows to protobuf all at once, so a view's
# interval at x100 (about 90,000 rows) held several times its size in memory; in slices, the
# peak stays the same whatever the interval holds.
ONLINE_WRITE_ROWS = 20_000


def materialize_interval(
    settings: Settings,
    usecase: UseCase,
    start: datetime,
    end: datetime,
    views: Sequence[str] | None = None,
) -> Materialized:
    """Load the interval's feature rows into the online store, for every view or these.

    Each view's window runs from the interval's start to the later of its end and the view's
    online watermark: rerunning an old interval then rewrites the newest values last, so the
    online store always ends up holding the latest row per entity, whatever order runs finish
    in.

    Each view's latest row per entity in the window is read from the partitions that hold the
    window, and written through Feast's online write in slices of :data:`ONLINE_WRITE_ROWS`;
    the window is recorded in the registry as Feast's own materialisation records it. Feast's
    ``materialize`` asks its offline store for the window instead, which reads every partition
    of the table: over five months of a replay, a day's materialisation grew from 0.9 s to
    1.8 s; this one stays as it started. Views are independent: the feature pipeline writes
    groups of them from tasks side by side where the stores allow it
    (``Settings.online_writers``).
    """
    store = ensure_registered(settings, usecase)
    known = [v.name for v in usecase.feature_views]
    unknown = sorted(set(views or ()) - set(known))
    if unknown:
        raise ValueError(
            f"use case {usecase.name!r} has no feature view {', '.join(unknown)} "
            f"(its views: {', '.join(known)})"
        )
    chosen = [v for v in usecase.feature_views if views is None or v.name in views]
    lo, hi = as_utc(start), as_utc(end)
    latest_end = hi
    for view in chosen:
        watermark = materialized_until(store, [view.name])
        until = max(hi, watermark) if watermark else hi
        latest_end = max(latest_end, until)
        latest = latest_rows(settings, usecase, view, lo, until, margin=hi - lo)
        if latest is not None and not latest.empty:
            for first in range(0, len(latest), ONLINE_WRITE_ROWS):
                store.write_to_online_store(
                    view.name, latest.iloc[first : first + ONLINE_WRITE_ROWS]
                )
        # Committed view by view: the next view's lookup reads the registry afresh
        # (``get_feature_view`` skips the cache), which drops a record not yet committed.
        feast_view = store.get_feature_view(view.name)
        store.registry.apply_materialization(feast_view, store.project, lo, until, commit=True)
    return Materialized(
        start=lo.isoformat(), end=latest_end.isoformat(), feature_views=[v.name for v in chosen]
    )


def latest_rows(
    settings: Settings,
    usecase: UseCase,
    view: FeatureView,
    start: datetime,
    end: datetime,
    margin: timedelta = timedelta(0),
) -> Any:
    """Each entity's latest row of a view stamped in [start, end] (both ends, as Feast's
    materialisation window), from the partitions that can hold them; None without any.

    A partition holds rows stamped from its interval's start on: ``margin`` reaches back to
    the partitions of that much before ``start``, for rows stamped after their own interval.
    """
    import pandas as pd

    since, until = start - margin, end + timedelta(microseconds=1)
    rows = read_partitions(settings, usecase, view.name, since, until)
    if rows is None:
        return None
    stamps = pd.to_datetime(rows[EVENT_TS], utc=True)
    rows = rows[(stamps >= start) & (stamps <= end)].assign(**{EVENT_TS: stamps})
    key = usecase.entity(view.entity).join_key
    return rows.sort_values(EVENT_TS, kind="stable").groupby(key, sort=False).tail(1)
