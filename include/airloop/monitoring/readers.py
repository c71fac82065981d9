"""What monitoring reads: the prediction log as a table, a version's training reference and its
test metrics from MLflow."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from airloop.core.columns import EVENT_ID, SCORE
from airloop.core.files import atomic_write
from airloop.data.intervals import as_utc
from airloop.registry.tracking import configure
from airloop.serving.prediction_log import read_window
from airloop.settings import Settings
from airloop.training.train import REFERENCE_ARTIFACT
from airloop.usecase import UseCase

MODEL_VERSION, SERVED_AT, EVENT_TIME = "model_version", "served_at", "event_time"


def served_frame(settings: Settings, usecase: UseCase, lo: datetime, hi: datetime) -> pd.DataFrame:
    """The prediction log of [lo, hi) as a table: features, score, version, event id and time."""
    records = read_window(settings.prediction_log_dir(usecase.name), as_utc(lo), as_utc(hi))
    if not records:
        return pd.DataFrame()
    frame = pd.DataFrame.from_records([r["features"] for r in records])
    frame[SCORE] = [r["score"] for r in records]
    frame[MODEL_VERSION] = [str(r["model_version"]) for r in records]
    frame[SERVED_AT] = pd.to_datetime([r["time"] for r in records], utc=True)
    frame[EVENT_ID] = [r.get("event_id") for r in records]
    frame[EVENT_TIME] = pd.to_datetime(
        [r.get("event_time") or r["time"] for r in records], utc=True
    )
    return frame


def latest_version(served: pd.DataFrame) -> str:
    """The model version that served last in this table."""
    return str(served.sort_values(SERVED_AT)[MODEL_VERSION].iloc[-1])


def load_reference(settings: Settings, usecase: UseCase, version: str) -> pd.DataFrame:
    """The training reference of a registered version, cached in the home after one download."""
    cache = settings.monitoring_root(usecase.name) / "references" / f"v{version}.parquet"
    if cache.exists():
        return pd.read_parquet(cache)
    import mlflow

    client = configure(settings)
    run_id = client.get_model_version(usecase.training.model_name, version).run_id
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT)
    frame = pd.read_parquet(path)
    atomic_write(cache, lambda tmp: frame.to_parquet(tmp, index=False))
    return frame


def version_metrics(settings: Settings, usecase: UseCase, version: str) -> dict[str, float]:
    """The test metrics recorded on a registered version when it was trained."""
    client = configure(settings)
    tags = client.get_model_version(usecase.training.model_name, version).tags
    return {
        k.removeprefix("airloop.test_"): float(v)
        for k, v in tags.items()
        if k.startswith("airloop.test_")
    }
