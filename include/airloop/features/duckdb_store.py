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

Selected by ``store_config`` (``offline_store.type`` is this module's store class), for the
embedded and the production profile alike.
"""

from __future__ import annotations

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
from feast.infra.offline_stores.ibis import get_historical_features_ibis
from feast.infra.offline_stores.offline_utils import infer_event_timestamp_from_entity_df
from pydantic import StrictStr

WINDOWED_DUCKDB = f"{__name__}.WindowedDuckDBOfflineStore"


class WindowedDuckDBOfflineStoreConfig(DuckDBOfflineStoreConfig):
    """The DuckDB store's settings; Feast finds the store by this class's name."""

    type: StrictStr = WINDOWED_DUCKDB


class WindowedDuckDBOfflineStore(DuckDBOfflineStore):
    """DuckDB's point-in-time join over the rows each view can contribute to these events."""

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
        """As DuckDB's, with each view's table read through :func:`joinable_rows`."""
        if not isinstance(entity_df, pd.DataFrame) or entity_df.empty:
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
        reaches = source_reaches(feature_views)

        def read(source: Any, repo_path: str) -> Any:
            return joinable_rows(
                _read_data_source(source, repo_path),
                source.timestamp_field,
                earliest,
                latest,
                reaches.get(source.name),
            )

        return get_historical_features_ibis(
            config=config,
            feature_views=feature_views,
            feature_refs=feature_refs,
            entity_df=entity_df,
            registry=registry,
            project=project,
            full_feature_names=full_feature_names,
            data_source_reader=read,
            data_source_writer=_write_data_source,
            staging_location=config.offline_store.staging_location,
            staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
            filter_by_created_timestamp=filter_by_created_timestamp,
        )


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
