"""Writing ``transforms.py``: the example transform the proposal's ``transform`` view calls."""

from __future__ import annotations

import json

from airloop.initiation.plan import Plan
from airloop.initiation.records import DataProfile


def render_transforms(profile: DataProfile, plan: Plan) -> str:
    """``transforms.py``: the example transform the use case's ``transform`` view calls."""
    key, ts, target = plan.entity_key, plan.timestamp, profile.target.column
    return f'''"""Transforms of the {plan.name} use case: features computed in Python from past rows.

A feature view of ``kind: transform`` in usecase.yaml names a function here. For each interval,
airloop calls it with the rows of the view's source from its ``lookback`` before the interval
(``history``) and the interval's start (``as_of``); it returns one row per entity: the entity
key and the view's features. It sees only rows from before ``as_of``, so it cannot peek at the
outcome it helps to predict. Edit this one, or add your own and a view that names it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ENTITY = {_py(key)}
TIMESTAMP = {_py(ts)}
TARGET = {_py(target)}
MIN_POINTS = 3  # fewer rows give no trend


def {plan.trend_function}(history: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Each {key}'s trend of {target}: the slope of a straight line through its recent values,
    per 30 days, and how many rows it was fitted on.

    A level says where a series is; the slope says where it is heading, which lags and window
    means do not. Fewer than MIN_POINTS rows give no slope (missing, not zero).
    """
    columns = [ENTITY, {_py(plan.trend_feature)}, "n_periods"]
    rows = history.dropna(subset=[ENTITY, TIMESTAMP, TARGET])
    if rows.empty:
        return pd.DataFrame(columns=columns)
    when = pd.to_datetime(rows[TIMESTAMP], utc=True)
    days = (when - when.max()).dt.total_seconds() / 86400
    values = pd.to_numeric(rows[TARGET], errors="coerce").astype("float64")
    out = []
    for entity, index in rows.groupby(ENTITY).groups.items():
        x, y = days.loc[index].to_numpy(), values.loc[index].to_numpy()
        keep = np.isfinite(y)
        x, y = x[keep], y[keep]
        slope = np.nan
        if len(x) >= MIN_POINTS and np.ptp(x) > 0:
            slope = float(np.polyfit(x, y, 1)[0]) * 30
        out.append({{ENTITY: entity, {_py(plan.trend_feature)}: slope, "n_periods": len(x)}})
    return pd.DataFrame(out, columns=columns)
'''


def _py(text: str) -> str:
    """A Python string literal, double-quoted as ruff formats them."""
    return json.dumps(text)
