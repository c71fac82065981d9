"""Replay a static data set into the landing zone as if it arrived interval by interval.

The use case's ``replay`` section names, per source, the file to read (a path, or
``package:NAME/relative/path`` inside an installed package) and, for late-arriving sources
such as labels, a shift that sets when each row becomes available.
"""

from __future__ import annotations

import importlib.util
import logging
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from airloop.data.intervals import as_utc
from airloop.data.landing import landing_path, write_raw
from airloop.settings import Settings
from airloop.usecase import ReplaySourceSpec, SourceSpec, UseCase, UseCaseError

log = logging.getLogger(__name__)


def resolve_replay_path(path: str, folder: Path | None = None) -> Path:
    """A replay file: ``package:NAME/rel`` found without importing the package (some data
    packages break on import), an absolute path, or a path relative to the use case's folder."""
    if not path.startswith("package:"):
        found = Path(path).expanduser()
        if not found.is_absolute() and folder is not None:
            found = folder / found
        if not found.is_file():
            raise UseCaseError(f"replay path {path!r}: no such file ({found})")
        return found
    package, _, rel = path.removeprefix("package:").partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UseCaseError(f"replay path {path!r}: package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / rel


def read_replay_file(path: Path) -> pd.DataFrame:
    """A replay file's rows as they are (Parquet, or CSV with ``NA`` for missing)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, na_values=["NA"], low_memory=False)


def load_replay_frame(
    replay: ReplaySourceSpec,
    folder: Path | None = None,
    files: dict[Path, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """A replay source's rows, with the availability column of a late-arriving source added.

    ``files``: the files already read, by path, shared by sources replayed from one file
    (flights, departures and arrivals all come from flights.csv.zip); the file is read into
    it when missing, and left unchanged.
    """
    path = resolve_replay_path(replay.path, folder)
    if files is None:
        files = {}
    if path not in files:
        files[path] = read_replay_file(path)
    df = (files[path][replay.columns] if replay.columns else files[path]).copy()
    if replay.shift is not None and replay.shift_from and replay.shifted_column:
        shifted = replay.shift.after(pd.to_datetime(df[replay.shift_from], utc=True))
        df[replay.shifted_column] = shifted.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return df


def partition_stamps(df: pd.DataFrame, spec: SourceSpec) -> pd.Series:
    """When each row belongs: its ``partition_by`` column, derived first when it is a derived
    timestamp (a date from year and month columns, say)."""
    declared = spec.column(spec.partition_by) if spec.partition_by else None
    if declared is not None and spec.partition_by in df.columns:
        # A time that does not parse falls in no interval (airloop init reports such rows).
        return declared.timestamps(df[spec.partition_by])
    column = spec.add_derived(df)[spec.partition_by]
    return pd.to_datetime(column, utc=True, format="ISO8601", errors="coerce")


def land_window(
    usecase: UseCase, settings: Settings, start: date | datetime, end: date | datetime
) -> dict[str, int]:
    """Land every source's partitions for the intervals of [start, end) in the use case's
    cadence; returns files written per source."""
    if usecase.replay is None:
        raise UseCaseError(f"use case {usecase.name!r} has no 'replay' section to land from")
    intervals = usecase.cadence.intervals(start, end)
    written: dict[str, int] = {}
    files: dict[Path, pd.DataFrame] = {}
    for name, replay in usecase.replay.sources.items():
        spec = usecase.sources[name]
        df = load_replay_frame(replay, usecase.folder, files)
        if spec.kind == "reference":
            write_raw(df, landing_path(settings, usecase, name, None), spec)
            written[name] = 1
            continue
        stamps = partition_stamps(df, spec)
        count = 0
        for lo, hi in intervals:
            rows = df[(stamps >= as_utc(lo)) & (stamps < as_utc(hi))]
            write_raw(rows, landing_path(settings, usecase, name, lo), spec)
            count += 1
        written[name] = count
        log.info("landed %d partitions of %s", count, name)
    return written
