"""Point-in-time correct training sets from Feast, split by time, with a stable digest."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from airloop.core.columns import AVAILABLE_AT, EVENT_ID, EVENT_TS, EVENTS_TABLE, LABEL, LABELS_TABLE
from airloop.core.errors import PermanentError
from airloop.core.files import publish
from airloop.core.records import Record
from airloop.data.intervals import as_utc
from airloop.features.offline import partitions_in, read_files, read_partitions
from airloop.features.store import historical_features
from airloop.settings import Settings
from airloop.usecase import UseCase

log = logging.getLogger(__name__)


class TrainingDataError(PermanentError, ValueError):
    """No usable training data for the window; the message says which window and why."""


class TrainingSet(Record):
    """A training set on disk: its window, when its labels were known, its digest and inputs."""

    uri: str
    digest: str
    rows: int
    start: str
    end: str
    as_of: str
    feature_service: str
    feature_columns: list[str]


def resolve_window(
    usecase: UseCase, start: datetime | None, end: datetime | None, params: dict[str, Any] | None
) -> tuple[datetime, datetime]:
    """The params' window when given (a manual run), else the ``training.window`` before ``end``."""
    params = params or {}
    if params.get("window_end"):
        hi = as_utc(datetime.fromisoformat(str(params["window_end"])))
    elif end is not None:
        hi = as_utc(end)
    else:
        raise TrainingDataError("no training window: give window_start and window_end")
    lo = (
        as_utc(datetime.fromisoformat(str(params["window_start"])))
        if params.get("window_start")
        else hi - usecase.training.window
    )
    if lo >= hi:
        raise TrainingDataError(f"empty training window [{lo:%Y-%m-%d}, {hi:%Y-%m-%d})")
    return lo, hi


def frame_digest(df: pd.DataFrame) -> str:
    """A digest of the values and column names, independent of file format and row index."""
    digest = hashlib.sha256(_row_hashes(df))
    digest.update(json.dumps(list(map(str, df.columns))).encode())
    return digest.hexdigest()


def _row_hashes(df: pd.DataFrame) -> bytes:
    return pd.util.hash_pandas_object(df.reset_index(drop=True), index=False).to_numpy().tobytes()


def file_digest(uri: str | Path) -> str:
    """:func:`frame_digest` of a training set's file, read a row group at a time.

    The rows are hashed as :func:`load_training_set` would read them whole: an integer or
    boolean column with a missing value anywhere in the file is read as pandas reads it whole
    (floats, objects), though a row group without one would read as integers or booleans.
    """
    import pyarrow.parquet as pq

    source = pq.ParquetFile(uri)
    schema = source.schema_arrow
    widened = _types_read_whole(source)
    digest = hashlib.sha256()
    for group in range(source.num_row_groups):
        frame = source.read_row_group(group).to_pandas()
        digest.update(_row_hashes(frame.astype(widened) if widened else frame))
    digest.update(json.dumps(list(schema.names)).encode())
    return digest.hexdigest()


def _types_read_whole(source: Any) -> dict[str, str]:
    """The pandas types of the columns whose type depends on how much of the file is read: an
    integer or boolean column with a missing value anywhere reads whole as floats or objects,
    but a row group (or a selection of rows) without one reads as integers or booleans."""
    import pyarrow as pa

    return {
        field.name: "float64" if pa.types.is_integer(field.type) else "object"
        for field in source.schema_arrow
        if (pa.types.is_integer(field.type) or pa.types.is_boolean(field.type))
        and _has_nulls(source, field.name)
    }


def _has_nulls(source: Any, column: str) -> bool:
    """Whether a Parquet column holds a missing value: from its row groups' statistics, or
    from the column itself where a writer kept none."""
    index = source.schema_arrow.get_field_index(column)
    for group in range(source.num_row_groups):
        stats = source.metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_null_count:
            return bool(source.read(columns=[column]).column(0).null_count)
        if stats.null_count:
            return True
    return False


# Labelled events per piece of a training set: each piece's point-in-time join is made and
# written on its own, so building a set holds one piece in memory, whatever the window holds.
# Measured at x100 of the flights (90,000 events a day): a 21-day window whole would have
# needed about 20 GB, a piece stays under 1.2 GB.
PIECE_ROWS = 100_000


def retrieve_training_set(
    settings: Settings,
    usecase: UseCase,
    start: datetime,
    end: datetime,
    as_of: datetime | None = None,
) -> TrainingSet:
    """Events in [start, end) with their features as of each event and labels known by ``as_of``.

    ``as_of`` (default: ``end``) is when training happens in data time: a label that arrived
    later is not used, exactly as it could not have been in production.

    The events are joined in pieces of about :data:`PIECE_ROWS` (whole partitions, oldest
    first), each written to disk before the next is read; the pieces are then written as one
    file in time order (:func:`combine_pieces`). The rows and the digest are those of the whole
    window joined at once.
    """
    lo, hi = as_utc(start), as_utc(end)
    cutoff = pd.Timestamp(as_utc(as_of or end))
    labels = read_partitions(
        settings, usecase, LABELS_TABLE, lo, cutoff.to_pydatetime(), [EVENT_ID, LABEL, AVAILABLE_AT]
    )
    event_files = partitions_in(settings, usecase, EVENTS_TABLE, lo, hi)
    if not event_files or labels is None:
        raise TrainingDataError(
            f"no events or labels in the offline store for [{lo:%Y-%m-%d}, {hi:%Y-%m-%d}): "
            "run the feature pipeline over that window first"
        )
    # Known by the cutoff: arriving exactly at it counts (the boundary rule of the features).
    labels = labels[labels[AVAILABLE_AT] <= cutoff][[EVENT_ID, LABEL]]
    folder = settings.datasets_dir / usecase.name
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".pieces-") as scratch:
        pieces: list[Path] = []
        for group in _piece_files(event_files):
            events = read_files(group)
            if events is None:
                continue
            entity_rows = events.merge(labels, on=EVENT_ID, how="inner")
            if entity_rows.empty:
                continue
            frame = _training_rows(settings, usecase, events.columns, entity_rows)
            piece = Path(scratch) / f"{len(pieces):05d}.parquet"
            frame.to_parquet(piece, index=False)
            pieces.append(piece)
            del events, entity_rows, frame
        if not pieces:
            raise TrainingDataError(
                f"no labelled events in [{lo:%Y-%m-%d}, {hi:%Y-%m-%d}) known by {cutoff}"
            )
        combined = combine_pieces(pieces, Path(scratch) / "combined.parquet")
        digest = file_digest(combined)
        rows = parquet_rows(combined)
        path = folder / f"{lo:%Y%m%d}-{hi:%Y%m%d}-{digest[:12]}.parquet"
        if not path.exists():
            publish(combined, path)
    log.info("training set %s: %d rows in %d piece(s)", path.name, rows, len(pieces))
    return TrainingSet(
        uri=str(path),
        digest=digest,
        rows=rows,
        start=lo.isoformat(),
        end=hi.isoformat(),
        as_of=cutoff.isoformat(),
        feature_service=usecase.feature_service.name,
        feature_columns=usecase.model_inputs,
    )


def _piece_files(files: list[Path]) -> list[list[Path]]:
    """Consecutive partition files in groups of about :data:`PIECE_ROWS` rows (a larger
    partition is a group of its own), by the row counts in their footers."""
    groups: list[list[Path]] = [[]]
    held = 0
    for path in files:
        rows = parquet_rows(path)
        if groups[-1] and held + rows > PIECE_ROWS:
            groups.append([])
            held = 0
        groups[-1].append(path)
        held += rows
    return groups


def _training_rows(
    settings: Settings, usecase: UseCase, event_columns: pd.Index, entity_rows: pd.DataFrame
) -> pd.DataFrame:
    """The events' features as of each event, with their labels: the event's own columns, the
    model's inputs and the label, in time order."""
    frame = historical_features(settings, usecase, entity_rows)
    frame[EVENT_TS] = pd.to_datetime(frame[EVENT_TS], utc=True).astype("datetime64[ns, UTC]")
    frame = frame.sort_values([EVENT_TS, EVENT_ID]).reset_index(drop=True)
    keep = [
        EVENT_ID,
        EVENT_TS,
        *dict.fromkeys([*event_columns.drop([EVENT_ID, EVENT_TS]), *usecase.model_inputs]),
        LABEL,
    ]
    return frame[[c for c in dict.fromkeys(keep) if c in frame.columns]]


def parquet_rows(path: Path) -> int:
    """The rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def combine_pieces(pieces: list[Path], out: Path) -> Path:
    """The pieces' rows as one Parquet file ordered by event time, then event id.

    Each piece is in that order already. Pieces of partitions that follow each other in time
    are copied one after another; where two pieces' times overlap (events partitioned by a
    column other than their time), DuckDB sorts the rows, spilling to disk beyond its memory
    limit. A column that one piece holds as integers and another as floats (a missing value)
    becomes floats, and one without any value in a piece takes the others' type.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas = [pq.read_schema(p).remove_metadata() for p in pieces]
    schema = pa.unify_schemas(schemas, promote_options="permissive")
    with pq.ParquetWriter(out, schema) as writer:
        if _in_time_order(pieces):
            for piece in pieces:
                writer.write_table(_conform(pq.read_table(piece), schema))
        else:
            for batch in _sorted_batches(pieces):
                writer.write_table(_conform(pa.Table.from_batches([batch]), schema))
    return out


def _conform(table: Any, schema: Any) -> Any:
    """The table in the schema's columns and types, a column it lacks as missing values."""
    import pyarrow as pa

    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _in_time_order(pieces: list[Path]) -> bool:
    """Whether each piece's first event time is after the previous piece's last."""
    import pyarrow.parquet as pq

    last = None
    for piece in pieces:
        stamps = pq.read_table(piece, columns=[EVENT_TS]).column(EVENT_TS)
        first = stamps[0].as_py()
        if last is not None and first <= last:
            return False
        last = stamps[len(stamps) - 1].as_py()
    return True


def _sorted_batches(pieces: list[Path]) -> Any:
    """The pieces' rows by event time then id, from DuckDB's sort (out of core)."""
    import duckdb

    files = [str(p) for p in pieces]
    # The two column names are airloop's constants; the files are a parameter.
    query = (
        "SELECT * FROM read_parquet($files, union_by_name = true) "  # nosec B608
        f'ORDER BY "{EVENT_TS}", "{EVENT_ID}"'
    )
    with duckdb.connect() as con:  # closed with its spill files once the batches are read
        con.execute("SET memory_limit = '2GB'")
        yield from con.sql(query, params={"files": files}).fetch_record_batch(PIECE_ROWS)


def _training_file(uri: str) -> Any:
    """A training set's Parquet file, opened for its footer and row groups; a clear error
    where it is gone."""
    import pyarrow.parquet as pq

    if not Path(uri).is_file():
        raise TrainingDataError(f"training set {uri} does not exist (was the home cleaned?)")
    return pq.ParquetFile(uri)


def load_training_set(uri: str, max_rows: int | None = None) -> pd.DataFrame:
    """The rows of a training set written by :func:`retrieve_training_set`; with ``max_rows``
    (``training.max_rows``), at most that many: an even sample of its rows, in their order,
    the same on every read, taken a row group at a time so the whole set is never in memory."""
    import pyarrow as pa

    source = _training_file(uri)
    total = source.metadata.num_rows
    if max_rows is None or total <= max_rows:
        return pd.read_parquet(uri)
    kept = np.sort(np.random.default_rng(SAMPLE_SEED).choice(total, max_rows, replace=False))
    parts, first = [], 0
    for group in range(source.num_row_groups):
        rows = source.metadata.row_group(group).num_rows
        chosen = kept[np.searchsorted(kept, first) : np.searchsorted(kept, first + rows)] - first
        if len(chosen):
            parts.append(source.read_row_group(group).take(pa.array(chosen)))
        first += rows
    log.info(
        "training set %s: %d of its %d rows (training.max_rows)", Path(uri).name, max_rows, total
    )
    return pa.concat_tables(parts).to_pandas(self_destruct=True)


def load_training_rows(uri: str, event_ids: Any) -> pd.DataFrame:
    """The rows of a training set whose event is one of ``event_ids`` (pandas' ``isin``), in
    their order and typed as :func:`load_training_set` reads the whole set; read a row group
    at a time, so only those rows are ever held (``airloop ci`` needs the candidate's rows of
    the base's held-out events, a fraction of a set that can be millions of rows)."""
    import pyarrow as pa

    source = _training_file(uri)
    wanted = pd.Index(pd.unique(pd.Series(event_ids)))
    parts = []
    for group in range(source.num_row_groups):
        ids = source.read_row_group(group, columns=[EVENT_ID]).column(0).to_pandas()
        keep = ids.isin(wanted).to_numpy()
        if keep.any():
            parts.append(source.read_row_group(group).filter(pa.array(keep)))
    table = pa.concat_tables(parts) if parts else source.schema_arrow.empty_table()
    frame = table.to_pandas(self_destruct=True)
    widened = _types_read_whole(source)
    return frame.astype(widened) if widened else frame


# The sample of a training set larger than ``training.max_rows`` is fixed: every stage that
# reads the set (the gate, training, evaluation, the smoke test) sees the same rows.
SAMPLE_SEED = 0


def split_by_time(
    frame: pd.DataFrame, validation_fraction: float, test_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, validation and test in time order; an event timestamp never straddles two parts."""
    stamps = frame[EVENT_TS]
    cut_val = stamps.quantile(1 - validation_fraction - test_fraction)
    cut_test = stamps.quantile(1 - test_fraction)
    if stamps.is_monotonic_increasing:  # a training set's order: the parts are slices, not copies
        first, last = stamps.searchsorted(cut_val), stamps.searchsorted(cut_test)
        train, valid, test = frame.iloc[:first], frame.iloc[first:last], frame.iloc[last:]
    else:
        train = frame[stamps < cut_val]
        valid = frame[(stamps >= cut_val) & (stamps < cut_test)]
        test = frame[stamps >= cut_test]
    if min(len(train), len(valid), len(test)) == 0:
        raise TrainingDataError(
            f"the time split left an empty part (train {len(train)}, validation {len(valid)}, "
            f"test {len(test)}): widen the window"
        )
    return train, valid, test
