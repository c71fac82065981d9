"""The replay clock writes only the rows that change what the online store holds; every event
must still be served what the point-in-time join gives it, with the ttl rule of the service."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from airloop.core.columns import EVENT_TS
from airloop.core.periods import Span
from airloop.demo.traffic import changes_only

START = pd.Timestamp("2013-03-01", tz="UTC")


def snapshots(key: str, hours: list[int], values: list[float | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tailnum": key,
            EVENT_TS: [START + pd.Timedelta(hours=h) for h in hours],
            "delay": pd.array(values, dtype="Float64"),
            "count": pd.array([None if v is None else 1 for v in values], dtype="Int64"),
        }
    )


def served(rows: pd.DataFrame, ttl: timedelta, at: pd.Timestamp) -> dict[str, object]:
    """What an entity's event at ``at`` is given: the latest row written at or before it,
    missing when that row is older than the ttl (``serving.predict.expire_stale``)."""
    answer: dict[str, object] = {}
    for key, group in rows.groupby("tailnum"):
        known = group[group[EVENT_TS] <= at]
        if known.empty or known[EVENT_TS].iloc[-1] < at - ttl:
            answer[str(key)] = None
            continue
        last = known.iloc[-1]
        answer[str(key)] = (
            None if pd.isna(last["delay"]) else float(last["delay"]),
            None if pd.isna(last["count"]) else int(last["count"]),
        )
    return answer


@pytest.mark.parametrize("ttl_hours", [2, 5, 24])
def test_every_moment_is_served_as_if_every_row_had_been_written(ttl_hours: int) -> None:
    ttl = timedelta(hours=ttl_hours)
    rows = pd.concat(
        [
            # An aircraft's departure held for hours, then the window empties.
            snapshots("N1", list(range(0, 13)), [12.0] * 12 + [None]),
            # Values that come back after a change, and a gap longer than some ttls.
            snapshots("N2", [1, 2, 3, 4, 10, 11, 20], [5.0, 5.0, 7.0, 5.0, 5.0, 5.0, 5.0]),
            # A single row, and a run of missing values.
            snapshots("N3", [6], [3.0]),
            snapshots("N4", [2, 3, 4, 5], [None, None, None, 1.0]),
        ]
    )
    rows = rows.sort_values(EVENT_TS, kind="stable").reset_index(drop=True)
    kept = changes_only(rows, "tailnum", ttl)
    assert len(kept) < len(rows)  # the point: repeats are not written
    for minute in range(0, 26 * 60, 15):
        at = START + pd.Timedelta(minutes=minute)
        assert served(kept, ttl, at) == served(rows, ttl, at), at
    # The store ends as the pipeline left it: each entity's last row is written.
    last = rows.groupby("tailnum").tail(1)
    assert set(map(tuple, last[["tailnum", EVENT_TS]].to_numpy())) <= set(
        map(tuple, kept[["tailnum", EVENT_TS]].to_numpy())
    )


def test_a_repeat_is_written_again_before_the_row_it_repeats_would_expire() -> None:
    rows = snapshots("N1", list(range(0, 10)), [4.0] * 10)
    kept = changes_only(rows, "tailnum", timedelta(hours=3))
    hours = ((kept[EVENT_TS] - START) / pd.Timedelta(hours=1)).astype(int).tolist()
    assert hours[0] == 0 and hours[-1] == 9
    assert np.all(np.diff(hours) <= 3)


def test_a_month_long_ttl_is_taken_at_its_shortest() -> None:
    assert Span.parse("1mo").shortest == timedelta(days=28)
    assert Span.parse("1d").shortest == timedelta(days=1)
