"""Which measurements say most about the target, measured as the model will see them.

A measurement is reported with its row's target, so the model can only use what was known
before: its value some intervals back (the label delay, at least one). The ranking scores that
lagged value against the target on the first training window only (the rows the first model
learns from), by mutual information, which catches a relation of any shape. ``airloop init``
gives windows to the best ranked, and the profile shows the ranking.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from airloop.initiation.records import Relevance
from airloop.initiation.times import interval_starts

MAX_ROWS = 20_000  # rows scored at most (a sample beyond): mutual information is k-NN based
MIN_ROWS = 30


def lagged_values(
    frame: pd.DataFrame,
    keys: pd.Series,
    stamps: pd.Series,
    columns: list[str],
    cadence: str,
    lag: int,
) -> pd.DataFrame:
    """Each row's entity's values ``lag`` intervals before its own interval (the mean of that
    interval's rows), as a lag view computes them at the interval's start: never the row's own."""
    starts = interval_starts(stamps, cadence)
    table = pd.DataFrame({"key": keys, "start": starts})
    for column in columns:
        table[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    per = table.dropna(subset=["key", "start"]).groupby(["key", "start"])[columns].mean()
    shift = {
        "hourly": pd.Timedelta(hours=lag),
        "daily": pd.Timedelta(days=lag),
        "weekly": pd.Timedelta(weeks=lag),
        "monthly": pd.DateOffset(months=lag),
    }[cadence]
    wanted = pd.MultiIndex.from_arrays([table["key"], table["start"] - shift])
    return per.reindex(wanted).set_axis(frame.index)


def rank_measurements(
    frame: pd.DataFrame,
    keys: pd.Series,
    stamps: pd.Series,
    labels: pd.Series,
    columns: list[str],
    cadence: str,
    lag: int,
    window_end: pd.Timestamp,
    classification: bool,
) -> list[Relevance]:
    """The columns, best first, by the mutual information of their lagged value with the
    label on the rows before ``window_end``."""
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    if not columns:
        return []
    lagged = lagged_values(frame, keys, stamps, columns, cadence, lag)
    inside = (stamps < window_end) & labels.notna()
    out = []
    for column in columns:
        both = pd.DataFrame({"x": lagged[column], "y": labels})[inside].dropna()
        if len(both) > MAX_ROWS:
            both = both.sample(MAX_ROWS, random_state=0)
        score = 0.0
        if len(both) >= MIN_ROWS and both["x"].nunique() > 1 and both["y"].nunique() > 1:
            x = both[["x"]].to_numpy()
            score_of = mutual_info_classif if classification else mutual_info_regression
            score = float(score_of(x, both["y"].to_numpy(), random_state=0)[0])
        score = score if math.isfinite(score) else 0.0
        out.append(Relevance(column=column, lag_intervals=lag, score=score, rows=len(both)))
    return sorted(out, key=lambda r: (-r.score, columns.index(r.column)))


def feature_budget(labelled_training_rows: float) -> int:
    """How many model inputs the first training window can support: one per 10 labelled rows,
    and at least 20, which the last known values, the past labels and the calendar of a
    table of a dozen columns take."""
    return max(20, int(np.floor(labelled_training_rows / 10)))
