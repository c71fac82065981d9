"""What ``airloop init`` proposes for monitoring: windows and minimums sized to the data's rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airloop.initiation import InitOptions, init_usecase
from airloop.monitoring.minimums import MIN_LABELLED, MIN_ROWS
from airloop.usecase import UseCase, load_usecase


def daily_panel(entities: int, days: int, seed: int = 0) -> pd.DataFrame:
    """One row per entity and day: two measurements and a true/false outcome."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2022-01-01", periods=days, freq="D")
    rows = [
        {
            "site": f"s{e}",
            "day": ts.strftime("%Y-%m-%d"),
            "level": float(rng.normal(10, 2)),
            "flow": float(rng.gamma(2.0)),
            "alert": bool(rng.random() < 0.4),
        }
        for ts in stamps
        for e in range(entities)
    ]
    return pd.DataFrame(rows)


def proposed(tmp_path: Path, frame: pd.DataFrame) -> UseCase:
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    options = InitOptions(
        name="panel",
        data=data,
        entity=["site"],
        timestamp="day",
        target="alert",
        into=tmp_path / "case",
    )
    init_usecase(options)
    return load_usecase(str(tmp_path / "case"))


def test_five_rows_a_day_get_the_longest_window_and_never_a_verdict_on_noise(
    tmp_path: Path,
) -> None:
    # 5 rows a day: 200 predictions would take 40 days; the window stops at four weeks (140
    # rows), and a verdict needs half of that, never fewer than the engine's floors.
    uc = proposed(tmp_path, daily_panel(entities=5, days=120))
    spec = uc.monitoring
    assert uc.schedule == "@daily"
    assert str(spec.window) == "28d"
    assert spec.min_rows == 70 and spec.min_labelled == 70
    assert spec.min_rows >= MIN_ROWS and spec.min_labelled >= MIN_LABELLED
    assert spec.exclude == []  # the calendar features are the engine's to skip, not the YAML's
    assert uc.events.calendar_features  # and there are some


def test_a_dense_day_keeps_a_one_day_window(tmp_path: Path) -> None:
    # 400 rows a day: one day holds twice the 100 predictions and the 50 labels a verdict needs.
    uc = proposed(tmp_path, daily_panel(entities=400, days=40))
    spec = uc.monitoring
    assert str(spec.window) == "1d"
    assert spec.min_rows == 200 and spec.min_labelled == 200


@pytest.mark.parametrize("entities", [1, 2])
def test_the_minimums_never_fall_below_the_engines_floors(tmp_path: Path, entities: int) -> None:
    uc = proposed(tmp_path, daily_panel(entities=entities, days=90))
    assert str(uc.monitoring.window) == "28d"
    assert uc.monitoring.min_rows == MIN_ROWS and uc.monitoring.min_labelled == MIN_LABELLED
