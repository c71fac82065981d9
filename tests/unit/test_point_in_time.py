"""Point-in-time correctness on crafted data: a feature never sees its own future."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from airloop.features import compute
from airloop.usecase import ViewInputs

AS_OF = datetime(2013, 1, 10, tzinfo=UTC)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def view(flights):
    return flights.feature_view("carrier_delays")  # windows 1d and 7d


def _frames(rows: list[tuple[str, str, str, str, int]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """rows: (event_id, carrier, event time, label arrival time, label)."""
    events = pd.DataFrame({"event_id": [r[0] for r in rows], "carrier": [r[1] for r in rows]})
    labels = pd.DataFrame(
        {
            "event_id": [r[0] for r in rows],
            "event_timestamp": [ts(r[2]) for r in rows],
            "available_at": [ts(r[3]) for r in rows],
            "label": [r[4] for r in rows],
        }
    )
    return labels, events


def test_only_labels_known_at_the_snapshot_count(flights, view) -> None:
    labels, events = _frames(
        [
            ("a", "UA", "2013-01-09T10:00Z", "2013-01-09T16:00Z", 1),  # counts in 1d and 7d
            ("b", "UA", "2013-01-09T20:00Z", "2013-01-10T02:00Z", 1),  # label arrives after as_of
            ("c", "UA", "2013-01-09T18:00Z", "2013-01-10T00:00Z", 0),  # arrives exactly at as_of
            ("d", "UA", "2013-01-05T10:00Z", "2013-01-05T16:00Z", 0),  # 7d only
            ("e", "UA", "2013-01-01T10:00Z", "2013-01-01T16:00Z", 1),  # older than 7d
            (
                "f",
                "UA",
                "2013-01-10T00:00Z",
                "2013-01-09T00:00Z",
                1,
            ),  # event at as_of (bogus early label)
            ("g", "AA", "2013-01-09T12:00Z", "2013-01-09T18:00Z", 0),
        ]
    )
    out = view.rates(flights, labels, events, pd.Timestamp(AS_OF)).set_index("carrier")
    # "c" arrived exactly at as_of: known (the boundary rule); "b" after it, "f" is not past.
    assert out.loc["UA", "count_1d"] == 2 and out.loc["UA", "share_1d"] == 0.5
    assert out.loc["UA", "count_7d"] == 3 and out.loc["UA", "share_7d"] == pytest.approx(1 / 3)
    assert out.loc["AA", "share_7d"] == 0.0
    assert (out["event_timestamp"] == ts("2013-01-10T00:00Z")).all()


def test_no_history_gives_an_empty_typed_table(flights, view) -> None:
    labels, events = _frames([("x", "UA", "2013-01-11T00:00Z", "2013-01-11T06:00Z", 1)])
    assert view.rates(flights, labels, events, pd.Timestamp(AS_OF)) is None
    inputs = ViewInputs(
        start=pd.Timestamp(AS_OF), end=pd.Timestamp(AS_OF), sources={}, history=lambda t: None
    )
    assert view.compute(flights, inputs) is None
    out = view.empty(flights)
    assert out.empty
    assert list(out.columns) == ["carrier", "event_timestamp", *view.feature_names(flights)]
    assert str(out["share_1d"].dtype) == "float64" and str(out["count_1d"].dtype) == "Int64"


def test_labels_table_applies_the_threshold_and_drops_missing(flights) -> None:
    raw = pd.DataFrame(
        {
            "flight_id": ["a", "b", "c"],
            "time_hour": [ts("2013-01-01T10:00Z")] * 3,
            "available_at": [ts("2013-01-01T16:00Z")] * 3,
            "arr_delay": [16.0, 15.0, None],
        }
    )
    out = compute.labels_table(flights, raw)
    assert out.set_index("event_id")["label"].to_dict() == {"a": 1, "b": 0}


def test_reference_snapshot_is_stamped_at_interval_start(flights) -> None:
    view = flights.feature_view("plane_attributes")
    table = pd.DataFrame(
        {
            "tailnum": ["N1", "N2", None],
            "year": [2001.0, None, 1999.0],
            "seats": [100, 50, 10],
            "engines": [2, 2, 1],
        }
    )
    inputs = ViewInputs(
        start=pd.Timestamp(AS_OF),
        end=pd.Timestamp(AS_OF),
        sources={"planes": table},
        history=lambda t: None,
    )
    out = view.compute(flights, inputs)
    assert out["tailnum"].tolist() == ["N1", "N2"]
    assert (out["event_timestamp"] == ts("2013-01-10T00:00Z")).all()
    assert out["plane_year"].tolist()[0] == 2001.0
