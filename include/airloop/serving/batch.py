"""Batch inference (C8): the champion scores an interval's events from the offline store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.data.intervals import as_utc, partition_key
from airloop.features.compute import EVENT_ID, EVENT_TS
from airloop.features.store import EVENTS_TABLE, feature_store, read_partitions, write_partition
from airloop.registry.models import CHAMPION, champion_version
from airloop.settings import Settings
from airloop.training.dataset import TrainingDataError
from airloop.training.models import model_inputs, score
from airloop.usecase import UseCase, resolve


def predictions_path(settings: Settings, usecase: UseCase, start: datetime) -> Path:
    return settings.home / "batch_predictions" / usecase.name / f"{partition_key(start)}.parquet"


def score_interval(
    start: datetime,
    end: datetime,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Point-in-time features for the interval's events, scored by the champion; overwrites."""
    import mlflow

    from airloop.tracking import configure

    uc, st = resolve(usecase, settings)
    lo, hi = as_utc(start), as_utc(end)
    events = read_partitions(st, uc, EVENTS_TABLE, lo, hi)
    if events is None:
        raise TrainingDataError(
            f"no events for [{lo:%Y-%m-%d}, {hi:%Y-%m-%d}): run the feature pipeline first"
        )
    name = uc.training.model_name
    version = champion_version(st, name)
    if version is None:
        raise TrainingDataError(f"{name} has no {CHAMPION}: train and promote a model first")
    store = feature_store(st, uc)
    frame = store.get_historical_features(
        entity_df=events,
        features=store.get_feature_service(uc.feature_service.name),
        full_feature_names=True,
    ).to_df()
    frame = frame.sort_values([EVENT_TS, EVENT_ID]).reset_index(drop=True)
    configure(st)
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    columns = model.metadata.get_input_schema().input_names()
    scores = score(model.get_raw_model(), uc.task, model_inputs(frame, columns))
    out = pd.DataFrame({EVENT_ID: frame[EVENT_ID], EVENT_TS: frame[EVENT_TS], "score": scores})
    if uc.task == "classification":
        out["prediction"] = (out["score"] >= 0.5).astype("int64")
    out["model_name"], out["model_version"] = name, version
    path = write_partition(out, predictions_path(st, uc, lo))
    return {"uri": str(path), "rows": len(out), "model_version": version}
