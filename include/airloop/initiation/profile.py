"""Profile a user's table before it becomes a use case: what each column holds, how time runs
through it, and what would make a model of it wrong.

The profile is what ``airloop init`` proposes a use case from, and what the person reads
before trusting that proposal: the findings say in plain words what looks wrong (timestamps
that do not parse, a target that is mostly missing, a column that copies the target). What
makes a use case impossible is not a finding but an :class:`InitError`, raised before anything
is written.

This module reads the file and puts the profile together: measuring is
:mod:`airloop.initiation.times` (the moment of each row, the cadence) and
:mod:`airloop.initiation.measures` (columns, target, entities, intervals); judging is
:mod:`airloop.initiation.roles` (what each column is for) and
:mod:`airloop.initiation.findings` (what looks wrong); the records they fill are in
:mod:`airloop.initiation.records`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from airloop.initiation.findings import plain_findings
from airloop.initiation.measures import (
    column_type,
    count_per_interval,
    entity_keys,
    numeric,
    profile_column,
    profile_entities,
    profile_time,
    series_over_time,
    target_labels,
    text_markers,
)
from airloop.initiation.records import DataProfile, InitError, Task
from airloop.initiation.roles import column_roles
from airloop.initiation.times import (
    detect_cadence,
    event_times,
    parse_timestamp_option,
    time_parts,
)

# -- reading ----------------------------------------------------------------------------------


def read_table(path: Path) -> tuple[pd.DataFrame, Literal["csv", "parquet"]]:
    """The user's file as a frame, read as the landing zone will read its partitions."""
    if not path.is_file():
        raise InitError(f"{path}: no such file (give --data a CSV or parquet file)")
    name = path.name.lower()
    fmt: Literal["csv", "parquet"]
    if name.endswith((".parquet", ".pq")):
        fmt = "parquet"
    elif ".csv" in path.suffixes or name.endswith(".csv"):
        fmt = "csv"
    else:
        raise InitError(f"{path}: expected a .csv (optionally compressed) or .parquet file")
    try:
        if fmt == "csv":
            df = pd.read_csv(path, na_values=["NA"], low_memory=False)
        else:
            df = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise InitError(f"{path}: the file is empty (no header, no rows)") from None
    except Exception as exc:
        raise InitError(f"{path}: cannot be read as {fmt}: {type(exc).__name__}: {exc}") from None
    if df.empty:
        raise InitError(f"{path}: the file has a header but no rows")
    df.columns = [str(c) for c in df.columns]
    return df, fmt


def require_columns(df: pd.DataFrame, path: Path, named: dict[str, list[str]]) -> None:
    """Every column an option names exists; the error names the option and lists the columns."""
    for option, columns in named.items():
        for column in columns:
            if column not in df.columns:
                raise InitError(
                    f"{path}: no column {column!r} (given to {option}); "
                    f"the file's columns are: {', '.join(df.columns)}"
                )


# -- the whole profile ------------------------------------------------------------------------


def profile_data(
    df: pd.DataFrame,
    path: Path,
    fmt: Literal["csv", "parquet"],
    entity: list[str],
    timestamp: str,
    target: str,
    task: Task | None = None,
    threshold: float | None = None,
    timestamp_format: str | None = None,
) -> DataProfile:
    """Profile the table for a use case keyed by ``entity``, timed by ``timestamp``, predicting
    ``target``; raise :class:`InitError` when no use case can be made of it."""
    column, parts = parse_timestamp_option(timestamp, list(df.columns))
    time_columns = [column] if column else list(parts.values())
    require_columns(
        df, path, {"--entity": entity, "--timestamp": time_columns, "--target": [target]}
    )
    if target in entity or target in time_columns:
        raise InitError(f"--target {target!r} is also given as an entity or the timestamp")
    parts = time_parts(df, parts)
    stamps, time_format = event_times(df, path, column, parts, timestamp_format)
    markers = {name: found for name in df.columns if (found := text_markers(df[name]))}
    df = df.assign(**{name: numeric(df[name]) for name in markers if name not in time_columns})
    target_profile, labels = target_labels(df, path, target, task, threshold)
    keys = entity_keys(df, entity)
    cadence, gap = detect_cadence(stamps, keys)
    types = {name: column_type(df[name]) for name in df.columns}
    if column is not None:
        types[column] = "timestamp"
    roles = column_roles(df, types, entity, column, parts, target, stamps, labels, keys)
    over_time, freq = series_over_time(stamps, labels, cadence)
    columns = [
        profile_column(name, df[name], types[name], *roles[name]).model_copy(
            update={"markers": markers.get(name, [])}
        )
        for name in df.columns
    ]
    profile = DataProfile(
        file=str(path),
        format=fmt,
        rows=len(df),
        columns=columns,
        time=profile_time(df, stamps, keys, column, parts, cadence, gap).model_copy(
            update={"format": time_format}
        ),
        per_interval=count_per_interval(stamps, cadence),
        entity=profile_entities(entity, keys, stamps),
        target=target_profile,
        over_time=over_time,
        over_time_freq=freq,
        findings=[],
    )
    return profile.model_copy(update={"findings": plain_findings(profile)})
