"""The batched SQLite online store writes what Feast's own SQLite store writes, and is the one
airloop's SQLite profile uses: real Feast stores in tmp_path, side by side."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airloop.features.sqlite_online import (
    BATCHED_SQLITE,
    BatchedSqliteOnlineStore,
    BatchedSqliteOnlineStoreConfig,
)
from airloop.settings import Settings

pytestmark = pytest.mark.integration

VIEW = "carrier_delays"  # share_1d, share_7d (float), count_1d, count_7d (int), by carrier
TABLE = f"flights_{VIEW}"
T0 = datetime(2013, 1, 2, tzinfo=UTC)


def feast_store(home: Settings, flights: Any, online: dict[str, Any]) -> Any:
    """A Feast store with airloop's configuration for this home, this online store in it."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    from airloop.features.store import store_config

    home.feast_dir.mkdir(parents=True, exist_ok=True)
    return FeatureStore(
        config=RepoConfig(
            project=flights.name,
            provider="local",
            entity_key_serialization_version=3,
            repo_path=str(home.feast_dir),
            **{**store_config(home), "online_store": online},
        )
    )


def side_by_side(home: Settings, flights: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Two Feast stores over one registry: SQLite online through Feast's own store (``stock``)
    and through airloop's configuration (``batched``), each in a database of its own."""
    from airloop.features.store import apply_definitions, store_config

    onlines = {
        "stock": {"type": "sqlite", "path": str(home.feast_dir / "stock.db")},
        "batched": store_config(home)["online_store"],
    }
    stores = {}
    for name, online in onlines.items():
        stores[name] = feast_store(home, flights, {**online, **options})
        apply_definitions(home, flights, stores[name])  # the view's table in its database
    assert type(stores["stock"]._get_provider().online_store).__name__ == "SqliteOnlineStore"
    assert type(stores["batched"]._get_provider().online_store) is BatchedSqliteOnlineStore
    return stores


def prepared(store: Any, frame: pd.DataFrame, created: dict[int, datetime]) -> list[Any]:
    """The frame as Feast's provider converts it for ``online_write_batch`` (as airloop's and
    Feast's materialisation do), with a created timestamp on the rows at these positions."""
    view = store.get_feature_view(VIEW)
    rows = store._get_provider()._prep_rows_to_write_for_ingestion(view, frame)
    return [(k, v, ts, created.get(i, c)) for i, (k, v, ts, c) in enumerate(rows)]


def frames() -> list[pd.DataFrame]:
    """Two batches: four carriers with missing values; then UA again (newer, with a value gone
    missing), AA twice in the one batch (the later row wins) and a new carrier."""
    first = pd.DataFrame(
        {
            "carrier": ["UA", "AA", "DL", "B6"],
            "share_1d": [0.25, np.nan, 0.5, 0.125],
            "count_1d": [40, 12, 30, 8],
            "share_7d": [0.3, 0.2, np.nan, np.nan],
            "count_7d": [280, 84, 210, 56],
            "event_timestamp": [T0 + timedelta(hours=h) for h in range(4)],
        }
    )
    second = pd.DataFrame(
        {
            "carrier": ["UA", "AA", "WN", "AA"],
            "share_1d": [np.nan, 0.75, 0.0, 0.625],
            "count_1d": [41, 13, 5, 14],
            "share_7d": [0.35, 0.1, 1.0, 0.15],
            "count_7d": [281, 85, 35, 86],
            "event_timestamp": [T0 + timedelta(days=1, hours=h) for h in range(4)],
        }
    )
    return [first, second]


def table_rows(store: Any) -> list[tuple[Any, ...]]:
    """Every row of the view's table as SQLite holds it, rowid first, in rowid order."""
    path = store.config.online_store.path
    with sqlite3.connect(path) as conn:
        return conn.execute(f'SELECT rowid, * FROM "{TABLE}" ORDER BY rowid').fetchall()


def read_back(store: Any, carriers: list[str]) -> list[Any]:
    """The online store's own read of these carriers: (event timestamp, values) each."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    keys = [EntityKey(join_keys=["carrier"], entity_values=[Value(string_val=c)]) for c in carriers]
    provider = store._get_provider()
    return provider.online_store.online_read(store.config, store.get_feature_view(VIEW), keys)


@pytest.mark.parametrize(
    "options",
    [{}, {"enable_openai_compatible_store": True}, {"vector_enabled": True}],
    ids=["default", "value_num", "vector_value"],
)
def test_the_batched_store_writes_the_rows_feasts_sqlite_store_writes(
    settings, flights, tmp_path: Path, options: dict[str, Any]
) -> None:
    home = settings.model_copy(update={"home": tmp_path})
    stores = side_by_side(home, flights, options)
    created = [{1: T0 + timedelta(hours=9)}, {0: T0 + timedelta(days=1, hours=9)}]
    for name, store in stores.items():
        provider, view = store._get_provider(), store.get_feature_view(VIEW)
        for frame, stamps in zip(frames(), created, strict=True):
            told: list[int] = []
            provider.online_write_batch(
                store.config, view, prepared(store, frame, stamps), told.append
            )
            assert sum(told) == len(frame), name
    stock, batched = table_rows(stores["stock"]), table_rows(stores["batched"])
    assert len(stock) == 5 * 4  # five carriers, four features each
    assert batched == stock
    carriers = ["UA", "AA", "DL", "B6", "WN", "F9"]
    assert read_back(stores["batched"], carriers) == read_back(stores["stock"], carriers)


def test_feasts_own_store_serves_what_the_batched_store_wrote(
    settings, flights, tmp_path: Path
) -> None:
    home = settings.model_copy(update={"home": tmp_path})
    stores = side_by_side(home, flights, {})
    for store in stores.values():
        for frame in frames():
            store.write_to_online_store(VIEW, frame)
    # Feast's stock SQLite store, reading the database the batched store wrote.
    reader = feast_store(home, flights, {"type": "sqlite", "path": str(home.online_store_path)})
    assert type(reader._get_provider().online_store).__name__ == "SqliteOnlineStore"
    rows = [{"carrier": c} for c in ["UA", "AA", "DL", "WN", "F9"]]
    features = [f"{VIEW}:{name}" for name in ["share_1d", "count_1d", "share_7d", "count_7d"]]
    got = reader.get_online_features(features=features, entity_rows=rows).to_dict()
    assert got == stores["stock"].get_online_features(features=features, entity_rows=rows).to_dict()
    # The second batch's values: UA's share_1d gone missing, AA's later row, DL untouched.
    assert got["share_1d"] == [None, 0.625, 0.5, 0.0, None]
    assert got["count_1d"] == [41, 14, 30, 5, None]
    assert got["share_7d"] == [0.35, 0.15, None, 1.0, None]


def test_a_batch_that_fails_part_way_writes_nothing(settings, flights, tmp_path: Path) -> None:
    home = settings.model_copy(update={"home": tmp_path})
    stores = side_by_side(home, flights, {})
    first, second = frames()
    for store in stores.values():
        provider, view = store._get_provider(), store.get_feature_view(VIEW)
        provider.online_write_batch(store.config, view, prepared(store, first, {}), None)
        batch = prepared(store, second, {})
        key, values, ts, created = batch[-1]
        batch[-1] = (key, {**values, "count_1d": "not a Value proto"}, ts, created)
        before = table_rows(store)
        with pytest.raises(AttributeError, match="WhichOneof"):
            provider.online_write_batch(store.config, view, batch, None)
        assert table_rows(store) == before
    assert table_rows(stores["batched"]) == table_rows(stores["stock"])


def test_store_config_selects_the_batched_store_for_sqlite(flights, tmp_path: Path) -> None:
    from airloop.features.store import ONLINE_SQLITE, feature_store, repo_config, store_config

    assert ONLINE_SQLITE == BATCHED_SQLITE  # the name store_config gives is the class's
    embedded = Settings(home=tmp_path / "e")
    assert store_config(embedded)["online_store"] == {
        "type": BATCHED_SQLITE,
        "path": str(tmp_path / "e" / "feast" / "online.db"),
    }
    assert isinstance(repo_config(embedded, flights).online_store, BatchedSqliteOnlineStoreConfig)
    provider = feature_store(embedded, flights)._get_provider()
    assert type(provider.online_store) is BatchedSqliteOnlineStore
    redis = Settings(home=tmp_path / "r", feast_online_store="redis")
    assert store_config(redis)["online_store"]["type"] == "redis"
