"""Point-in-time correct training sets from Feast, split by time, with a stable digest."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.core.columns import AVAILABLE_AT, EVENT_ID, EVENT_TS, EVENTS_TABLE, LABEL, LABELS_TABLE
from airloop.core.errors import PermanentError
from airloop.core.files import atomic_write
from airloop.core.records import Record
from airloop.data.intervals import as_utc
from airloop.features.offline import read_partitions
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
    hashed = pd.util.hash_pandas_object(df.reset_index(drop=True), index=False).to_numpy()
    digest = hashlib.sha256(hashed.tobytes())
    digest.update(json.dumps(list(map(str, df.columns))).encode())
    return digest.hexdigest()


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
    """
    lo, hi = as_utc(start), as_utc(end)
    cutoff = pd.Timestamp(as_utc(as_of or end))
    events = read_partitions(settings, usecase, EVENTS_TABLE, lo, hi)
    labels = read_partitions(settings, usecase, LABELS_TABLE, lo, cutoff.to_pydatetime())
    if events is None or labels is None:
        raise TrainingDataError(
            f"no events or labels in the offline store for [{lo:%Y-%m-%d}, {hi:%Y-%m-%d}): "
            "run the feature pipeline over that window first"
        )
    # Known by the cutoff: arriving exactly at it counts (the boundary rule of the features).
    labels = labels[labels[AVAILABLE_AT] <= cutoff][[EVENT_ID, LABEL]]
    entity_rows = events.merge(labels, on=EVENT_ID, how="inner")
    if entity_rows.empty:
        raise TrainingDataError(
            f"no labelled events in [{lo:%Y-%m-%d}, {hi:%Y-%m-%d}) known by {cutoff}"
        )
    frame = historical_features(settings, usecase, entity_rows)
    frame[EVENT_TS] = pd.to_datetime(frame[EVENT_TS], utc=True).astype("datetime64[ns, UTC]")
    frame = frame.sort_values([EVENT_TS, EVENT_ID]).reset_index(drop=True)
    keep = [
        EVENT_ID,
        EVENT_TS,
        *dict.fromkeys([*events.columns.drop([EVENT_ID, EVENT_TS]), *usecase.model_inputs]),
        LABEL,
    ]
    frame = frame[[c for c in dict.fromkeys(keep) if c in frame.columns]]
    digest = frame_digest(frame)
    path = settings.datasets_dir / usecase.name / f"{lo:%Y%m%d}-{hi:%Y%m%d}-{digest[:12]}.parquet"
    if not path.exists():
        atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    log.info("training set %s: %d rows, digest %s", path.name, len(frame), digest[:12])
    return TrainingSet(
        uri=str(path),
        digest=digest,
        rows=len(frame),
        start=lo.isoformat(),
        end=hi.isoformat(),
        as_of=cutoff.isoformat(),
        feature_service=usecase.feature_service.name,
        feature_columns=usecase.model_inputs,
    )


def load_training_set(uri: str) -> pd.DataFrame:
    """The rows of a training set written by :func:`retrieve_training_set`."""
    path = Path(uri)
    if not path.is_file():
        raise TrainingDataError(f"training set {uri} does not exist (was the home cleaned?)")
    return pd.read_parquet(path)


def split_by_time(
    frame: pd.DataFrame, validation_fraction: float, test_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, validation and test in time order; an event timestamp never straddles two parts."""
    stamps = frame[EVENT_TS]
    cut_val = stamps.quantile(1 - validation_fraction - test_fraction)
    cut_test = stamps.quantile(1 - test_fraction)
    train = frame[stamps < cut_val]
    valid = frame[(stamps >= cut_val) & (stamps < cut_test)]
    test = frame[stamps >= cut_test]
    if min(len(train), len(valid), len(test)) == 0:
        raise TrainingDataError(
            f"the time split left an empty part (train {len(train)}, validation {len(valid)}, "
            f"test {len(test)}): widen the window"
        )
    return train, valid, test
