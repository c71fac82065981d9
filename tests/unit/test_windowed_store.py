"""The windowed offline store's bounds: which rows of a view's table can reach an event."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import ibis
import pandas as pd

from airloop.features.duckdb_store import WINDOWED_DUCKDB, joinable_rows, source_reaches
from airloop.features.store import OFFLINE_STORE


def view(source: str, ttl: timedelta | None) -> SimpleNamespace:
    return SimpleNamespace(batch_source=SimpleNamespace(name=source), ttl=ttl)


def test_the_store_config_names_the_windowed_store() -> None:
    assert OFFLINE_STORE == WINDOWED_DUCKDB


def test_a_source_reaches_as_far_as_its_longest_ttl_or_without_limit() -> None:
    reaches = source_reaches(
        [
            view("a", timedelta(hours=3)),
            view("a", timedelta(days=1)),
            view("b", timedelta(0)),  # Feast's "no ttl"
            view("c", timedelta(days=2)),
            view("c", None),
        ]
    )
    assert reaches == {"a": timedelta(days=1), "b": None, "c": None}


def test_joinable_rows_keep_the_rows_the_join_can_use_boundaries_included() -> None:
    stamps = pd.to_datetime(
        [
            "2013-01-01T00:00",
            "2013-01-03T23:00",
            "2013-01-04T00:00",
            "2013-01-05T12:00",
            "2013-01-06T00:00",
            "2013-01-06T00:01",
        ],
        utc=True,
    )
    table = ibis.memtable(pd.DataFrame({"event_timestamp": stamps, "v": range(6)}))
    earliest, latest = pd.Timestamp("2013-01-05", tz="UTC"), pd.Timestamp("2013-01-06", tz="UTC")

    def kept(reach: timedelta | None) -> list[int]:
        rows = joinable_rows(table, "event_timestamp", earliest, latest, reach).to_pandas()
        return sorted(rows["v"])

    # A row a ttl before the first event still reaches it; one after the last event does not.
    assert kept(timedelta(days=1)) == [2, 3, 4]
    assert kept(None) == [0, 1, 2, 3, 4]
    assert joinable_rows(table, "ts", earliest, latest, None) is table  # renamed: all of it
