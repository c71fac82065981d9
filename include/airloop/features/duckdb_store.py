"""Feast's DuckDB offline store, reading only the rows a point-in-time join can use.

Feast's DuckDB store joins each event of a training set with every row its entity has in a
view's table, then keeps the latest one the event may see. The tables grow with the data: a
year into the flights replay, a view keyed by airport holds 8,760 hourly rows per airport,
of which an eight-week training window can use about 1,400; building a training set slowed
as the year went on. This store filters each view's table before the join, to the rows
stamped at or before the latest event and no more than the view's ttl before the earliest.
Every row it leaves out fails the join's own conditions (stamped after its event, or expired
before it), so the training set is the same; DuckDB skips the files and row groups the filter
excludes by their statistics.

The join itself is DuckDB's as-of join (``ASOF LEFT JOIN``): per event and view, the latest
row of its entity stamped at or before the event, then none if that row is older than the
view's ttl. Feast's join pairs each event with every row within the ttl and ranks them: a view
snapshotted hourly with a one-day ttl gave 24 rows per event and view before the ranking, and
that join was most of the time a training set took. The as-of join gives the same rows (the
latest admissible one; where a source stamps two rows of an entity alike, the latest created);
a test compares it with Feast's DuckDB store, row for row. Requests this join does not cover
(on-demand views, field mappings, the created-timestamp cutoff) go through Feast's own.

Selected by ``store_config`` (``offline_store.type`` is this module's store class), for the
embedded and the production profile alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import pandas as pd
from feast.infra.offline_stores.duckdb import (
    DuckDBOfflineStore,
    DuckDBOfflineStoreConfig,
    _read_data_source,
    _write_data_source,
)
from feast.infra.offline_stores.ibis import (
    IbisRetrievalJob,
    _to_utc,
)
from feast.infra.offline_stores.offline_store import RetrievalMetadata
from feast.infra.offline_stores.offline_utils import infer_event_timestamp_from_entity_df
from feast.on_demand_feature_view import OnDemandFeatureView
from pydantic import StrictStr

WINDOWED_DUCKDB = f"{__name__}.WindowedDuckDBOfflineStore"


class WindowedDuckDBOfflineStoreConfig(DuckDBOfflineStoreConfig):
    """The DuckDB store's settings; Feast finds the store by this class's name."""

    type: StrictStr = WINDOWED_DUCKDB


class WindowedDuckDBOfflineStore(DuckDBOfflineStore):
    """An as-of join over the rows each view can contribute to these events."""

    @staticmethod
    def get_historical_features(
        config: Any,
        feature_views: list[Any],
        feature_refs: list[str],
        entity_df: Any,
        registry: Any,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
    ) -> Any:
        """As DuckDB's, by :func:`asof_join` over each view's :func:`joinable_rows`."""
        if (
            not isinstance(entity_df, pd.DataFrame)
            or entity_df.empty
            or filter_by_created_timestamp
            or any(view.batch_source.field_mapping for view in feature_views)
            or OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)
        ):
            return DuckDBOfflineStore.get_historical_features(
                config,
                feature_views,
                feature_refs,
                entity_df,
                registry,
                project,
                full_feature_names,
                filter_by_created_timestamp,
            )
        column = infer_event_timestamp_from_entity_df(entity_df.dtypes.to_dict())
        stamps = pd.to_datetime(entity_df[column], utc=True)
        earliest, latest = stamps.min(), stamps.max()
        entity_df = _to_utc(entity_df.copy(), column)
        reaches = source_reaches(feature_views)
        views = []
        for view in feature_views:
            source = view.batch_source
            rows = joinable_rows(
                _read_data_source(source, str(config.repo_path)),
                source.timestamp_field,
                earliest,
                latest,
                reaches.get(source.name),
            )
            views.append(ViewRows.of(view, rows, feature_refs, full_feature_names))
        return IbisRetrievalJob(
            asof_join(ibis.memtable(entity_df), column, views),
            [],
            full_feature_names,
            metadata=RetrievalMetadata(
                features=feature_refs,
                keys=list(set(entity_df.columns) - {column}),
                min_event_timestamp=earliest.to_pydatetime(),
                max_event_timestamp=latest.to_pydatetime(),
            ),
            data_source_writer=_write_data_source,
            staging_location=config.offline_store.staging_location,
            staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
            repo_path=str(config.repo_path),
        )


@dataclass(frozen=True)
class ViewRows:
    """A view's rows as the join needs them: its table, its timestamp (and created-timestamp)
    column, its join keys (the view's column → the events' column), its features (the table's
    column → the training set's name) and its ttl (none: rows never expire)."""

    table: Any
    timestamp: str
    created: str | None
    keys: dict[str, str]
    features: dict[str, str]
    ttl: timedelta | None

    @classmethod
    def of(
        cls, view: Any, table: Any, feature_refs: list[str], full_feature_names: bool
    ) -> ViewRows:
        """The rows of a Feast feature view the references ask for, named as Feast names them."""
        prefix = view.projection.name_to_use()
        base = view.projection.name_alias or view.name
        wanted = [ref.split(":")[1] for ref in feature_refs if ref.startswith(f"{prefix}:")]
        return cls(
            table=table,
            timestamp=view.batch_source.timestamp_field,
            created=view.batch_source.created_timestamp_column or None,
            keys=view.projection.join_key_map or {e.name: e.name for e in view.entity_columns},
            features={f: f"{base}__{f}" if full_feature_names else f for f in wanted},
            ttl=view.ttl or None,
        )


def asof_join(events: Any, event_timestamp: str, views: list[ViewRows]) -> Any:
    """Each event with, per view, the latest row of its entity stamped at or before the event
    and not older than the view's ttl (else missing values): Feast's point-in-time rule."""
    joined = events
    utc = dt.Timestamp(timezone="UTC")
    stamps = []
    for i, view in enumerate(views):
        table = view.table.mutate(
            **{c: view.table[c].cast(utc) for c in (view.timestamp, view.created) if c}
        )
        if view.created:  # two rows stamped alike: the one created last
            order = [ibis.desc(table[view.created])]
            rank = ibis.row_number().over(group_by=[*view.keys, view.timestamp], order_by=order)
            table = table.mutate(_airloop_rank=rank).filter(lambda t: t._airloop_rank == 0)
        stamps.append(f"_airloop_stamp_{i}")
        keys = {column: f"_airloop_key_{i}_{n}" for n, column in enumerate(view.keys)}
        right = table.select(
            **{name: table[column] for column, name in keys.items()},
            **{stamps[i]: table[view.timestamp]},
            **{name: table[column] for column, name in view.features.items()},
        )
        joined = joined.asof_join(
            right,
            on=joined[event_timestamp] >= right[stamps[i]],
            predicates=[joined[view.keys[column]] == right[name] for column, name in keys.items()],
        )
    columns = {name: joined[name] for name in events.columns}
    for view, stamp in zip(views, stamps, strict=True):
        fresh = (
            joined[stamp] + ibis.literal(view.ttl) >= joined[event_timestamp]
            if view.ttl is not None
            else None
        )
        for name in view.features.values():
            value = joined[name]
            columns[name] = value if fresh is None else fresh.ifelse(value, ibis.null(value.type()))
    return joined.select(**columns)


def source_reaches(feature_views: list[Any]) -> dict[str, timedelta | None]:
    """How far before an event each source's rows can reach it: its views' longest ttl, or
    None (no limit) when one of them has none."""
    reaches: dict[str, timedelta | None] = {}
    for view in feature_views:
        name = view.batch_source.name
        ttl = view.ttl if view.ttl else None
        if name not in reaches:
            reaches[name] = ttl
        elif reaches[name] is not None:
            reaches[name] = None if ttl is None else max(ttl, reaches[name])
    return reaches


def joinable_rows(
    table: Any,
    timestamp_field: str,
    earliest: pd.Timestamp,
    latest: pd.Timestamp,
    reach: timedelta | None,
) -> Any:
    """The rows of a view's table that events stamped in [earliest, latest] can be given:
    stamped at or before ``latest``, and no earlier than ``reach`` before ``earliest``."""
    if timestamp_field not in table.columns:  # renamed by a field mapping: read it all
        return table
    stamp = table[timestamp_field].cast(dt.Timestamp(timezone="UTC"))
    keep = stamp <= ibis.literal(latest.to_pydatetime())
    if reach is not None:
        keep &= stamp >= ibis.literal((earliest - reach).to_pydatetime())
    return table.filter(keep)
