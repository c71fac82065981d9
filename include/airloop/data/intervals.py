"""Data intervals and the partition keys that name their files."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd


def as_utc(value: datetime | date | str | pd.Timestamp) -> datetime:
    """A timezone-aware UTC datetime from what Airflow, the CLI or a test hands over."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def partition_key(start: datetime) -> str:
    """``2013-01-05`` for intervals starting at midnight, ``2013-01-05T0600`` otherwise."""
    start = as_utc(start)
    if start.hour == start.minute == start.second == 0:
        return start.strftime("%Y-%m-%d")
    return start.strftime("%Y-%m-%dT%H%M")


def daily_intervals(
    start: date | datetime, end: date | datetime
) -> list[tuple[datetime, datetime]]:
    """Consecutive one-day intervals covering [start, end)."""
    first, last = as_utc(start), as_utc(end)
    out = []
    while first < last:
        out.append((first, first + timedelta(days=1)))
        first += timedelta(days=1)
    return out


def utc_now() -> datetime:
    """Now, in UTC (wall clock: for records of when something happened, never for data)."""
    return datetime.now(UTC)


def day_interval(day: date) -> tuple[datetime, datetime]:
    """The data interval of one calendar day, [midnight, next midnight) in UTC."""
    start = datetime.combine(day, datetime.min.time(), UTC)
    return start, start + timedelta(days=1)
