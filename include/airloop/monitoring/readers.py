"""What monitoring reads: the prediction log as a table, a version's training reference and its
test metrics from MLflow."""

from __future__ import annotations

import hashlib
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.core.columns import EVENT_ID, SCORE
from airloop.core.files import atomic_write
from airloop.data.intervals import as_utc
from airloop.registry.tracking import configure
from airloop.serving.prediction_log import day_files, log_days, read_files
from airloop.settings import Settings
from airloop.training.train import REFERENCE_ARTIFACT
from airloop.usecase import UseCase

MODEL_VERSION, SERVED_AT, EVENT_TIME = "model_version", "served_at", "event_time"


def served_frame(settings: Settings, usecase: UseCase, lo: datetime, hi: datetime) -> pd.DataFrame:
    """The prediction log of [lo, hi) as a table: features, score, version, event id and time.

    Each day of the log is parsed from JSON once and kept as a table (:func:`served_day`):
    monitoring reads a week of predictions every day, and parsing it again was a third of
    the check.
    """
    lo, hi = as_utc(lo), as_utc(hi)
    root = settings.prediction_log_dir(usecase.name)
    cache = settings.monitoring_root(usecase.name) / "served"
    days = [served_day(root, cache, day) for day in log_days(lo, hi)]
    frames = [f for f in days if not f.empty]
    if not frames:
        return pd.DataFrame()
    frame = frames[0] if len(frames) == 1 else _joined(frames)
    times = frame[EVENT_TIME]
    return frame[(times >= lo) & (times < hi)].reset_index(drop=True)


def _joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The days' tables as one. A column all missing on a day is untyped there (objects);
    typed again once joined, whatever pandas makes of such columns when it concatenates."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return pd.concat(frames, ignore_index=True).infer_objects()


def served_day(root: Path, cache: Path, day: datetime) -> pd.DataFrame:
    """One UTC day of the prediction log as a table, from ``cache`` when the day's log files
    are as they were when it was written (a late prediction appends to a file and changes its
    size: the day is read again)."""
    files = day_files(root, day)
    if not files:
        return pd.DataFrame()
    stats = [(f.name, st.st_size, st.st_mtime_ns) for f in files for st in [f.stat()]]
    digest = hashlib.sha256(repr(stats).encode()).hexdigest()[:16]
    kept = cache / f"date={day:%Y-%m-%d}.{digest}.parquet"
    if kept.exists():
        return pd.read_parquet(kept)
    frame = records_frame(read_files(files, day, day + timedelta(days=1)))
    if not frame.empty:
        atomic_write(kept, lambda tmp: frame.to_parquet(tmp, index=False))
        for stale in cache.glob(f"date={day:%Y-%m-%d}.*.parquet"):
            if stale != kept:
                stale.unlink(missing_ok=True)
    return frame


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Prediction-log records as a table: their features, score, version, event id and time."""
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
