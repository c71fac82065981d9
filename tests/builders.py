"""Builders of test data and settings that several tiers use (kept out of test modules, so no
test module imports another)."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pandas as pd

from airloop.data.landing import landing_path, read_raw
from airloop.data.replay import land_window
from airloop.quality.expectations import validate_frame
from airloop.settings import Settings
from airloop.usecase import UseCase


def production(tmp_path: Path, **changes: object) -> dict[str, object]:
    """The values of a complete production profile (placeholder hosts and secrets), with
    ``changes`` on top: ``Settings(**production(tmp_path))``."""
    values: dict[str, object] = {
        "profile": "production",
        "home": tmp_path / "home",
        "shared_root": tmp_path / "shared",
        "airflow_db_url": "postgresql+psycopg2://u@db:5432/airflow",
        "celery_broker_url": "redis://redis:6379/0",
        "celery_result_backend": "db+postgresql://u@db:5432/airflow",
        "mlflow_tracking_uri": "http://mlflow:5000",
        "feast_registry_url": "postgresql+psycopg2://u@db:5432/feast",
        "feast_online_store": "redis",
        "feast_redis_url": "redis:6379,db=1",
        "airflow_fernet_key": base64.urlsafe_b64encode(b"k" * 32).decode(),
        "airflow_secret_key": "s" * 32,
        "airflow_jwt_secret": "j" * 64,
        "airflow_admin_password": "p" * 16,
        "serving_token": "t" * 24,
    }
    return {**values, **changes}


def replay_through_the_gate(
    usecase: UseCase, home: Path, intervals: int | None = None
) -> list[str]:
    """Land the file partition by partition (its first ``intervals``, or all), then read and
    validate each as the pipeline does: the reasons the gate would give, per partition."""
    assert usecase.replay is not None
    settings = Settings(home=home)
    window = usecase.cadence.intervals(usecase.replay.start, usecase.replay.end)[:intervals]
    land_window(usecase, settings, window[0][0], window[-1][1])
    name = usecase.events.source
    spec = usecase.sources[name]
    reasons = []
    for lo, _ in window:
        frame, problems = read_raw(landing_path(settings, usecase, name, lo), spec)
        failures, _ = validate_frame(frame, spec, name, lo)
        reasons += [p.reason for p in problems] + [f.reason for f in failures]
    return reasons


def monthly_panel(regions: int = 3, months: int = 36, seed: int = 0) -> pd.DataFrame:
    """Sales and a price per region and month: the shape of txhousing, small."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(regions):
        for m in range(months):
            price = 100 + 10 * r + m + rng.normal(0, 3)
            rows.append(
                {
                    "region": f"r{r}",
                    "year": 2000 + m // 12,
                    "month": m % 12 + 1,
                    "sales": int(rng.integers(20, 80)),
                    "kind": ["house", "flat"][int(rng.integers(0, 2))],
                    "price": round(price, 1),
                }
            )
    return pd.DataFrame(rows)
