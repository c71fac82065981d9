"""The windowed offline store's bounds: which rows of a view's table can reach an event."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import ibis
import pandas as pd

from airloop.features.duckdb_store import (
    WINDOWED_DUCKDB,
    ViewRows,
    asof_join,
    joinable_rows,
    source_reaches,
)
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


def _feasts_join(events: pd.DataFrame, views: list[ViewRows]) -> pd.DataFrame:
    """Feast's own point-in-time join (its DuckDB store's) of the same rows."""
    from feast.infra.offline_stores.ibis import point_in_time_join

    tables = [
        (
            v.table.rename({new: old for old, new in v.features.items()}),
            v.timestamp,
            v.created,
            v.keys,
            list(v.features.values()),
            v.ttl,
        )
        for v in views
    ]
    return point_in_time_join(ibis.memtable(events), tables, "event_timestamp").to_pandas()


def test_the_asof_join_gives_what_feasts_point_in_time_join_gives() -> None:
    """Boundaries included: a row stamped at the event, one exactly a ttl before it, one a
    second older; an entity with no row; two rows stamped alike (the later created wins); a
    view with two keys; a view without ttl."""
    t = pd.Timestamp("2013-01-02T12:00", tz="UTC")
    hour, day = timedelta(hours=1), timedelta(days=1)
    events = pd.DataFrame(
        {
            "event_id": ["e1", "e2", "e3", "e4", "e5", "e6", "e7"],
            "event_timestamp": [t, t, t + hour, t - day, t + 2 * day, t, t + 3 * day],
            "origin": ["EWR", "JFK", "EWR", "LGA", "EWR", "XXX", "JFK"],
            "carrier": ["UA", "B6", "UA", "DL", "AA", "UA", "B6"],
        }
    )
    weather = pd.DataFrame(
        {
            "origin": ["EWR", "EWR", "JFK", "JFK", "EWR", "LGA"],
            "stamp": [t - day, t, t - day - pd.Timedelta(seconds=1), t - 2 * hour, t + day, t],
            "created": [t] * 4 + [t + day, t],
            "temp": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    weather = pd.concat(  # a second row for EWR at t, created later: it wins
        [weather, weather.iloc[[1]].assign(created=t + hour, temp=2.5)], ignore_index=True
    )
    routes = pd.DataFrame(
        {
            "origin": ["EWR", "EWR", "JFK"],
            "carrier": ["UA", "AA", "B6"],
            "ts": [t - 30 * day, t - hour, t - 2 * hour],
            "share": [0.1, 0.2, 0.3],
        }
    )
    views = [
        ViewRows(
            ibis.memtable(weather),
            "stamp",
            "created",
            {"origin": "origin"},
            {"temp": "weather__temp"},
            day,
        ),
        ViewRows(
            ibis.memtable(routes),
            "ts",
            None,
            {"origin": "origin", "carrier": "carrier"},
            {"share": "routes__share"},
            None,
        ),
    ]
    ours = asof_join(ibis.memtable(events), "event_timestamp", views).to_pandas()
    feasts = _feasts_join(events, views)
    by_event = ["event_id"]
    pd.testing.assert_frame_equal(
        ours.sort_values(by_event).reset_index(drop=True),
        feasts.sort_values(by_event).reset_index(drop=True)[ours.columns],
    )
    got = ours.set_index("event_id")
    assert got.loc["e1", "weather__temp"] == 2.5  # stamped at the event, created last
    assert got.loc["e2", "weather__temp"] == 4.0
    assert pd.isna(got.loc["e4", "weather__temp"])  # LGA's only row is after the event
    assert got.loc["e5", "weather__temp"] == 5.0  # exactly a ttl old
    assert pd.isna(got.loc["e6", "weather__temp"])  # no such airport
    assert got.loc["e1", "routes__share"] == 0.1  # 30 days old: no ttl, still served
    assert pd.isna(got.loc["e7", "weather__temp"])  # its airport's latest row expired
    assert got.loc["e7", "routes__share"] == 0.3
