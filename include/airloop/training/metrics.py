"""Metrics by task type, per-slice metrics and calibration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm


@dataclass(frozen=True)
class Metric:
    name: str
    task: str
    higher_is_better: bool
    fn: Callable[[np.ndarray, np.ndarray], float]


def _safe_auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(skm.roc_auc_score(y, s)) if len(np.unique(y)) > 1 else float("nan")


def _safe_ap(y: np.ndarray, s: np.ndarray) -> float:
    return float(skm.average_precision_score(y, s)) if len(np.unique(y)) > 1 else float("nan")


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("roc_auc", "classification", True, _safe_auc),
        Metric("average_precision", "classification", True, _safe_ap),
        Metric(
            "log_loss",
            "classification",
            False,
            lambda y, s: float(skm.log_loss(y, s, labels=[0, 1])),
        ),
        Metric(
            "brier_score", "classification", False, lambda y, s: float(skm.brier_score_loss(y, s))
        ),
        Metric(
            "accuracy", "classification", True, lambda y, s: float(skm.accuracy_score(y, s >= 0.5))
        ),
        Metric(
            "rmse", "regression", False, lambda y, s: float(np.sqrt(skm.mean_squared_error(y, s)))
        ),
        Metric("mae", "regression", False, lambda y, s: float(skm.mean_absolute_error(y, s))),
        Metric("r2", "regression", True, lambda y, s: float(skm.r2_score(y, s))),
    ]
}


def metric(name: str, task: str) -> Metric:
    found = METRICS.get(name)
    if found is None or found.task != task:
        known = sorted(n for n, m in METRICS.items() if m.task == task)
        raise ValueError(f"unknown {task} metric {name!r}; known: {known}")
    return found


def compute_metrics(names: list[str], task: str, y: Any, score: Any) -> dict[str, float]:
    y_arr, s_arr = np.asarray(y), np.asarray(score, dtype=float)
    return {name: metric(name, task).fn(y_arr, s_arr) for name in names}


def slice_metrics(
    names: list[str],
    task: str,
    frame: pd.DataFrame,
    score: Any,
    label: str,
    slices: list[str],
    min_rows: int = 30,
) -> list[dict[str, Any]]:
    """Metrics per value of each slice column (slices smaller than ``min_rows`` are skipped)."""
    rows = []
    scored = frame.assign(_score=np.asarray(score, dtype=float))
    for column in slices:
        for value, part in scored.groupby(column, dropna=False):
            if len(part) < min_rows:
                continue
            values = compute_metrics(names, task, part[label], part["_score"])
            rows.append({"slice": column, "value": str(value), "rows": len(part), **values})
    return rows


def calibration(y: Any, score: Any, bins: int = 10) -> dict[str, Any]:
    """Reliability table and expected calibration error (classification)."""
    y_arr, s_arr = np.asarray(y, dtype=float), np.asarray(score, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(s_arr, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = index == b
        if not mask.any():
            continue
        mean_score, rate = float(s_arr[mask].mean()), float(y_arr[mask].mean())
        table.append(
            {"bin": b, "rows": int(mask.sum()), "mean_score": mean_score, "observed_rate": rate}
        )
        ece += mask.mean() * abs(mean_score - rate)
    return {"ece": float(ece), "table": table}


def is_better(name: str, task: str, a: float, b: float, margin: float = 0.0) -> bool:
    """Whether ``a`` is no worse than ``b`` by more than ``margin`` on metric ``name``."""
    m = metric(name, task)
    return a >= b - margin if m.higher_is_better else a <= b + margin
