"""Data intervals and the partition keys that name their files."""

from __future__ import annotations

from datetime import UTC, date, datetime

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


def utc_now() -> datetime:
    """Now, in UTC (wall clock: for records of when something happened, never for data)."""
    return datetime.now(UTC)
