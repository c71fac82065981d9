"""Metrics of a scored slice: the use case's metrics, per-slice metrics and calibration.

Which metrics exist and which way is better is the catalogue's (``airloop.catalog``); this
module computes them on labels and scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from airloop.catalog import metric
from airloop.core.records import Number, Record, finite_or_none


class SliceMetrics(Record):
    """The metrics of the rows where one slice column has one value."""

    slice: str
    value: str
    rows: int
    metrics: dict[str, Number]
    note: str | None = None  # why there are no metrics (too few rows)


class CalibrationBin(Record):
    """One bin of a reliability table: how often the label was positive at that score."""

    bin: int
    rows: int
    mean_score: float
    observed_rate: float


class Calibration(Record):
    """The reliability table and the expected calibration error (ECE) of a classifier."""

    ece: Number
    table: list[CalibrationBin]


def compute_metrics(names: list[str], task: str, y: Any, score: Any) -> dict[str, Number]:
    """Each named metric on labels ``y`` and scores; None where it cannot be computed."""
    y_arr, s_arr = np.asarray(y), np.asarray(score, dtype=float)
    return {name: finite_or_none(metric(name, task).compute(y_arr, s_arr)) for name in names}


def slice_metrics(
    names: list[str],
    task: str,
    frame: pd.DataFrame,
    score: Any,
    label: str,
    slices: list[str],
    min_rows: int = 30,
) -> list[SliceMetrics]:
    """Metrics per value of each slice column; a slice under ``min_rows`` rows is listed with
    a note instead of metrics that would be noise."""
    rows = []
    scored = frame.assign(_score=np.asarray(score, dtype=float))
    for column in slices:
        for value, part in scored.groupby(column, dropna=False):
            if len(part) < min_rows:
                note = f"too few rows ({len(part)} < {min_rows}, training.slice_min_rows)"
                rows.append(
                    SliceMetrics(
                        slice=column, value=str(value), rows=len(part), metrics={}, note=note
                    )
                )
                continue
            values = compute_metrics(names, task, part[label], part["_score"])
            rows.append(
                SliceMetrics(slice=column, value=str(value), rows=len(part), metrics=values)
            )
    return rows


def calibration(y: Any, score: Any, bins: int = 10) -> Calibration:
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
            CalibrationBin(bin=b, rows=int(mask.sum()), mean_score=mean_score, observed_rate=rate)
        )
        ece += mask.mean() * abs(mean_score - rate)
    return Calibration(ece=float(ece), table=table)


def calibration_plot(cal: Calibration, path: Path) -> None:
    """The reliability diagram of a calibration table, as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = pd.DataFrame([b.model_dump() for b in cal.table])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.plot(
        table["mean_score"],
        table["observed_rate"],
        marker="o",
        label=f"model (ECE {cal.ece or 0:.3f})",
    )
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed rate")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
