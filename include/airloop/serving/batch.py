"""Batch inference (C8): the champion scores an interval's events from the offline store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from airloop.core.columns import EVENT_ID, EVENT_TS, EVENTS_TABLE
from airloop.core.records import Record
from airloop.data.intervals import as_utc, partition_key
from airloop.features.offline import require_partitions, write_partition
from airloop.features.store import historical_features
from airloop.registry.models import require_champion
from airloop.registry.tracking import configure
from airloop.settings import Settings
from airloop.training.models import model_inputs, score
from airloop.usecase import UseCase, resolve


class BatchScores(Record):
    """One interval's predictions, written whole, and the version that made them."""

    uri: str
    rows: int
    model_version: str


def predictions_path(settings: Settings, usecase: UseCase, start: datetime) -> Path:
    """The file of the interval starting at ``start`` (overwritten on a rerun)."""
    return settings.batch_predictions_dir / usecase.name / f"{partition_key(start)}.parquet"


def score_interval(
    start: datetime,
    end: datetime,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> BatchScores:
    """Point-in-time features for the interval's events, scored by the champion; overwrites."""
    import mlflow

    uc, st = resolve(usecase, settings)
    lo, hi = as_utc(start), as_utc(end)
    events = require_partitions(st, uc, EVENTS_TABLE, lo, hi)
    version = require_champion(st, uc)
    frame = historical_features(st, uc, events)
    frame = frame.sort_values([EVENT_TS, EVENT_ID]).reset_index(drop=True)
    configure(st)
    name = uc.training.model_name
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    columns = model.metadata.get_input_schema().input_names()
    scores = score(model.get_raw_model(), uc.task, model_inputs(frame, columns))
    out = pd.DataFrame({EVENT_ID: frame[EVENT_ID], EVENT_TS: frame[EVENT_TS], "score": scores})
    if uc.task == "classification":
        out["prediction"] = (out["score"] >= 0.5).astype("int64")
    out["model_name"], out["model_version"] = name, version
    path = write_partition(out, predictions_path(st, uc, lo))
    return BatchScores(uri=str(path), rows=len(out), model_version=version)
