"""The offline store's files: one Parquet partition per table and interval, overwritten whole.

Feast's DuckDB offline store reads them through a glob per table; the feature pipeline writes
them, training sets and batch scoring read them back by interval.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from airloop.core.errors import PermanentError
from airloop.core.files import atomic_write
from airloop.data.intervals import as_utc, partition_key
from airloop.settings import Settings
from airloop.usecase import UseCase


class MissingPartitionsError(PermanentError, LookupError):
    """A window the offline store has no partitions for; the feature pipeline must run first."""


def offline_root(settings: Settings, usecase: UseCase) -> Path:
    """The use case's offline store: one folder per table."""
    return settings.offline_dir / usecase.name


def table_dir(settings: Settings, usecase: UseCase, table: str) -> Path:
    """One table's partitions (a feature view, or airloop's events and labels)."""
    return offline_root(settings, usecase) / table


def partition_file(settings: Settings, usecase: UseCase, table: str, start: datetime) -> Path:
    """The table's partition for the interval starting at ``start``."""
    return table_dir(settings, usecase, table) / f"{partition_key(start)}.parquet"


def write_partition(df: pd.DataFrame, path: Path) -> Path:
    """Overwrite one partition file atomically: reruns replace, never append."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    # An empty or all-missing text column has Arrow type null; readers of many partitions
    # (DuckDB behind Feast) need every file to agree, so such columns are written as strings.
    fields = [
        pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema
    ]
    table = table.cast(pa.schema(fields, metadata=table.schema.metadata))
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def read_partitions(
    settings: Settings,
    usecase: UseCase,
    table: str,
    since: datetime,
    until: datetime,
    columns: list[str] | None = None,
) -> pd.DataFrame | None:
    """Concatenate a table's partitions whose interval starts in [since, until) (these columns
    of them, or all); None if none."""
    return read_files(partitions_in(settings, usecase, table, since, until), columns)


def read_files(paths: list[Path], columns: list[str] | None = None) -> pd.DataFrame | None:
    """Concatenate these partition files (these columns of them, or all); None if all are empty."""
    frames = [pd.read_parquet(p, columns=columns) for p in paths]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)


def partitions_in(
    settings: Settings, usecase: UseCase, table: str, since: datetime, until: datetime
) -> list[Path]:
    """A table's partition files whose interval starts in [since, until), oldest first."""
    lo, hi = pd.Timestamp(as_utc(since)), pd.Timestamp(as_utc(until))
    return [
        path
        for path in sorted(table_dir(settings, usecase, table).glob("*.parquet"))
        if lo <= pd.Timestamp(path.stem, tz="UTC") < hi
    ]


def require_partitions(
    settings: Settings, usecase: UseCase, table: str, since: datetime, until: datetime
) -> pd.DataFrame:
    """Like :func:`read_partitions`, but a window without rows is an error that says what to run."""
    rows = read_partitions(settings, usecase, table, since, until)
    if rows is None:
        lo, hi = as_utc(since), as_utc(until)
        raise MissingPartitionsError(
            f"no {table} rows in the offline store for [{lo:%Y-%m-%d %H:%M}, {hi:%Y-%m-%d %H:%M})"
            " UTC: run the feature pipeline over that window first"
        )
    return rows
