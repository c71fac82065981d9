"""The report's charts: a feature's distribution, reference against served, and the recent
history of drift and live performance, as inline SVG (:mod:`airloop.core.svg`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from airloop.core.svg import PALETTE, Chart, date_ticks, value_range

MAX_PLOTS = 8
VERSION_SHADES = ("#e8f0fe", "#fef3e0")  # alternate between the runs of versions that served


def distribution_chart(reference: pd.Series, served: pd.Series, title: str) -> str:
    """One feature, reference against served: shared-bin densities for a number, the shares
    of the most frequent values otherwise."""
    if pd.api.types.is_numeric_dtype(reference) and pd.api.types.is_numeric_dtype(served):
        ref, cur = reference.dropna().astype("float64"), served.dropna().astype("float64")
        both = pd.concat([ref, cur])
        if both.empty:
            return ""
        distinct = int(both.nunique())
        lo, hi = float(both.min()), float(both.max())
        edges = np.linspace(
            lo, hi if hi > lo else lo + 1.0, (20 if distinct > 20 else max(distinct, 1)) + 1
        )
        ref_density = np.histogram(ref, bins=edges, density=True)[0] if len(ref) else edges[:-1] * 0
        cur_density = np.histogram(cur, bins=edges, density=True)[0] if len(cur) else edges[:-1] * 0
        top = float(max(ref_density.max(initial=0), cur_density.max(initial=0))) or 1.0
        chart = Chart(
            title, (float(edges[0]), float(edges[-1])), (0.0, top * 1.05), y_label="density"
        )
        lefts, widths = edges[:-1].tolist(), np.diff(edges).tolist()
        chart.bars(lefts, widths, ref_density.tolist(), colour=PALETTE[0], label="reference")
        chart.bars(lefts, widths, cur_density.tolist(), colour=PALETTE[1], label="served")
        return chart.render()
    shares = (
        pd.DataFrame(
            {
                "reference": reference.astype("string").value_counts(normalize=True),
                "served": served.astype("string").value_counts(normalize=True),
            }
        )
        .fillna(0.0)
        .sort_values("reference", ascending=False)
        .head(15)
    )
    if shares.empty:
        return ""
    n = len(shares)
    chart = Chart(
        title,
        (0.0, float(n)),
        (0.0, float(shares.to_numpy().max()) * 1.05 or 1.0),
        x_ticks=[(i + 0.5, str(label)[:8]) for i, label in enumerate(shares.index)],
        y_label="share",
    )
    for offset, (side, colour) in enumerate(zip(shares.columns, PALETTE, strict=False)):
        lefts = [i + 0.1 + 0.4 * offset for i in range(n)]
        chart.bars(lefts, [0.4] * n, shares[side].tolist(), colour=colour, label=side)
    return chart.render()


def distribution_plots(reference: pd.DataFrame, served: pd.DataFrame, columns: list[str]) -> str:
    """The first ``MAX_PLOTS`` of ``columns`` that both frames hold, one chart each."""
    return "\n".join(
        distribution_chart(reference[column], served[column], column)
        for column in columns[:MAX_PLOTS]
        if column in reference.columns and column in served.columns
    )


def history_plot(history: pd.DataFrame, requests: list[dict[str, Any]]) -> str:
    """The recent history as two inline SVG panels: drift above (share of drifting features,
    prediction PSI), the live metric against the metric at training below, shaded by the
    model version that served; retrain requests as red lines."""
    if history.empty:
        return "<p>No monitored intervals yet.</p>"
    starts = pd.to_datetime(history["interval_start"], utc=True)
    xs = [t.timestamp() for t in starts]
    step = float(np.median(np.diff(xs))) if len(xs) > 1 else 86400.0
    x_range = (xs[0], xs[-1] + step)
    ticks = date_ticks(*x_range)
    asked = [
        pd.Timestamp(r["interval_start"]).timestamp()
        for r in requests
        if x_range[0] <= pd.Timestamp(r["interval_start"]).timestamp() <= x_range[1]
    ]

    def values(column: str) -> list[float | None]:
        return [None if pd.isna(v) else float(v) for v in history[column]]

    drift_series = {
        "share of drifting features": values("share_drifted"),
        "prediction PSI": values("prediction_psi"),
    }
    drift = Chart(
        "drift",
        x_range,
        value_range([v for vs in drift_series.values() for v in vs if v is not None] + [0.0], 0.05),
        width=900,
        height=200,
        x_ticks=ticks,
    )
    live_series = {"live metric": values("live_metric"), "at training": values("expected_metric")}
    live = Chart(
        "live metric",
        x_range,
        value_range([v for vs in live_series.values() for v in vs if v is not None], 0.1),
        width=900,
        height=200,
        x_ticks=ticks,
    )
    for i, (first, last, version) in enumerate(version_runs(xs, list(history["model_version"]))):
        if version is not None and not pd.isna(version):
            live.band(first, last + step, VERSION_SHADES[i % 2], f"v{version}")
    for chart in (drift, live):
        for when in asked:
            chart.vline(when, "red")
    for (label, ys), colour in zip(drift_series.items(), PALETTE, strict=False):
        drift.line(xs, ys, colour, label)
    live.line(xs, live_series["live metric"], "black", "live metric")
    live.line(xs, live_series["at training"], "grey", "at training", dashed=True, dots=False)
    if asked:
        drift.legend.append(("retrain request", "red", "line"))
    return f'<div class="history">{drift.render()}<br>{live.render()}</div>'


def version_runs(xs: list[Any], versions: list[Any]) -> list[tuple[Any, Any, Any]]:
    """Consecutive intervals one model version served: (first x, last x, version)."""
    runs: list[tuple[Any, Any, Any]] = []
    for x, version in zip(xs, versions, strict=True):
        if runs and runs[-1][2] == version:
            runs[-1] = (runs[-1][0], x, version)
        else:
            runs.append((x, x, version))
    return runs
