"""Data intervals and the partition keys that name their files."""

from __future__ import annotations

from datetime import UTC, datetime

from airloop.core.periods import to_utc as as_utc  # one conversion for the whole package

__all__ = ["as_utc", "partition_key", "utc_now"]


def partition_key(start: datetime) -> str:
    """``2013-01-05`` for intervals starting at midnight, ``2013-01-05T0600`` otherwise."""
    start = as_utc(start)
    if start.hour == start.minute == start.second == 0:
        return start.strftime("%Y-%m-%d")
    return start.strftime("%Y-%m-%dT%H%M")


def utc_now() -> datetime:
    """Now, in UTC (wall clock: for records of when something happened, never for data)."""
    return datetime.now(UTC)
