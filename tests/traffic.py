"""Served traffic for monitoring tests: rows like the champion's training reference, written
through the service's own prediction-log writer, with or without drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from airloop.core.columns import EVENT_ID, EVENT_TS, LABEL, SCORE
from airloop.usecase import load_usecase

_FLIGHTS = load_usecase("flights")
# 2013's first flight, UA 1545 Newark to Houston: the flights use case's example request
# (events.example), and its entity keys.
FIRST_FLIGHT_REQUEST: dict[str, Any] = dict(_FLIGHTS.events.example or {})
FIRST_FLIGHT = {key: FIRST_FLIGHT_REQUEST[key] for key in _FLIGHTS.entity_keys}


def day(d: int) -> datetime:
    """Midnight UTC of 2013-01-d."""
    return datetime(2013, 1, d, tzinfo=UTC)


def days(*ds: int) -> list[tuple[datetime, datetime]]:
    """The daily data intervals of 2013-01-d for each d."""
    return [(day(d), day(d) + timedelta(days=1)) for d in ds]


def write_served(settings: Any, usecase: Any, rows: pd.DataFrame, version: str) -> None:
    """Append rows as the service logs predictions, with the events' ids and times."""
    from airloop.serving.prediction_log import PredictionLog

    inputs = [c for c in rows.columns if c not in (EVENT_ID, EVENT_TS, LABEL, SCORE)]
    writer = PredictionLog(settings.prediction_log_dir(usecase.name))
    now = datetime.now(UTC).isoformat()
    writer.append_many(
        [
            {
                "request_id": f"test-{i}",
                "index": 0,
                "time": now,
                "event_id": row[EVENT_ID],
                "event_time": pd.Timestamp(row[EVENT_TS]).tz_convert(UTC).isoformat(),
                "entities": {},
                "features": {c: (None if pd.isna(row[c]) else row[c]) for c in inputs},
                "model": usecase.training.model_name,
                "model_version": version,
                "score": float(row[SCORE]),
            }
            for i, row in enumerate(rows.to_dict("records"))
        ]
    )
    writer.close()


def like_the_reference(
    settings: Any, usecase: Any, version: str, d: int, n: int = 3200, seed: int = 0
) -> pd.DataFrame:
    """Traffic drawn from the training distribution itself, stamped inside day d: no drift.

    3,200 rows a day: the flights use case gives no verdict on fewer than 3,000 in its window.
    """
    from airloop.monitoring.readers import load_reference

    reference = load_reference(settings, usecase, version)
    rows = reference.sample(n, random_state=seed, replace=len(reference) < n).copy()
    rng = np.random.default_rng(seed)
    rows[EVENT_TS] = day(d) + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
    return rows


def drifted(rows: pd.DataFrame, usecase: Any) -> pd.DataFrame:
    """Every numeric input moved by five standard deviations; categories left as they are."""
    out = rows.copy()
    for column in out.columns:
        if column in (EVENT_ID, EVENT_TS, LABEL, SCORE) or column in usecase.training.categorical:
            continue
        if pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column] + 5 * (out[column].std() or 1.0)
    return out
