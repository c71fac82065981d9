"""The interval's page: the decision and its reason, data and prediction drift with the
thresholds applied, live performance, the drifting features' distributions and the history."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

import pandas as pd

from airloop.core.columns import SCORE
from airloop.core.html import html_table
from airloop.metadata.ledger import FeedbackLedger
from airloop.monitoring.feedback import REQUESTED, request_note_path
from airloop.monitoring.readers import load_reference
from airloop.monitoring.records import Decision, PerformanceCheck
from airloop.monitoring.report.charts import distribution_plots, history_plot
from airloop.monitoring.report.history import history_frame
from airloop.settings import Settings
from airloop.usecase import UseCase

# An interval's page shows the recent history: over a year, the whole of it made each page
# slower to draw than the last (the timeline page has all of it).
REPORT_HISTORY = 90

STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1100px}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
    ".drifted{color:#b00}img{margin:4px}"
)


THRESHOLD_RULE = (
    "A score drifts when it reaches the threshold applied: the larger of the use case's"
    " (configured) and the noise threshold, the score that samples of these counts from one"
    " distribution exceed by chance with probability monitoring.significance (for PSI,"
    " (1/n + 1/m) times the chi-squared quantile with bins - 1 degrees of freedom)."
)


def _without_verdict(count: int, min_rows: int | None) -> str:
    """The clause saying how many features had too few values for a verdict, if any."""
    if not count:
        return ""
    return f"; {count} more without a verdict (fewer than {min_rows} values: not enough data)"


def render_report(
    settings: Settings,
    usecase: UseCase,
    start: datetime,
    end: datetime,
    full: dict[str, Any],
    performance: PerformanceCheck,
    decision: Decision,
) -> str:
    """The interval's page. ``full`` is the drift check's own record (drift.json), not its summary."""
    data = full.get("data") or {}
    features = data.get("features", [])
    drifting = [f["feature"] for f in sorted(features, key=lambda f: -f["score"]) if f["drifted"]]
    checked = data.get("checked", len(features))
    plots = ""
    if drifting and full.get("served_uri") and full.get("model_version"):
        reference = load_reference(settings, usecase, full["model_version"])
        served = pd.read_parquet(full["served_uri"])
        plots = distribution_plots(reference, served, [*drifting, SCORE])
    # The history as it stood at this interval: a rerun of an older interval, after later
    # ones, draws the page it drew the first time.
    requests = [
        r
        for r in FeedbackLedger(settings.monitoring_root(usecase.name)).requests()
        if datetime.fromisoformat(r["interval_start"]) <= start
    ]
    history = history_frame(settings, usecase, last=REPORT_HISTORY, until=start)
    # The note of the request this interval opened (by its id: a rerun opens none again).
    note = ""
    if decision.action == REQUESTED and decision.request_id:
        path = request_note_path(settings, usecase, decision.request_id)
        note = path.read_text() if path.exists() else ""
    live = performance.live or {}
    expected = performance.expected or {}
    target = usecase.monitoring.live_target  # the use case's promise for its primary metric
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>airloop monitoring: {usecase.name} {start:%Y-%m-%d}</title><style>{STYLE}</style></head><body>
<h1>Monitoring {html.escape(usecase.name)}: {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC</h1>
<p>Model version served: <b>{html.escape(str(full.get("model_version")))}</b>;
predictions in the drift window: {full.get("rows")}; {html.escape(str(full.get("status")))}.</p>
<h2>Decision: {html.escape(decision.action)}</h2>
<p>{html.escape(decision.detail or "")}</p>
<pre>{html.escape(note)}</pre>
<h2>Data drift</h2>
<p>{len(drifting)} of {checked} features drifted
(dataset drift at ≥ {usecase.monitoring.share_of_drifting_features:.0%}){_without_verdict(len(features) - checked, data.get("min_rows"))}.
</p>
{html_table(features, ["feature", "kind", "measure", "score", "threshold", "drifted", "missing_share_current"])}
<h3>The thresholds applied, and the counts behind them</h3>
<p>{THRESHOLD_RULE}</p>
{html_table(features, ["feature", "status", "reference_rows", "current_rows", "bins", "configured_threshold", "noise_threshold", "threshold"])}
<h2>Prediction drift</h2>
{html_table([full["prediction"]], ["measure", "score", "threshold", "drifted", "reference_mean", "current_mean"]) + html_table([full["prediction"]], ["reference_rows", "current_rows", "bins", "configured_threshold", "noise_threshold", "threshold"]) if full.get("prediction") else f"<p>{html.escape(str(full.get('prediction_status') or full.get('status')))}</p>"}
<h2>Live performance</h2>
<p>{performance.labelled} labelled, {performance.pending} pending;
{html.escape(performance.status)}</p>
{html_table([{"metric": k, "live": v, "at training": expected.get(k), "target": target if k == usecase.metrics[0] else None} for k, v in live.items()], ["metric", "live", "at training", "target"])}
<h2>Distributions of drifting features (reference against served)</h2>
{plots or "<p>none drifted</p>"}
<h2>History (the last {REPORT_HISTORY} intervals at most)</h2>
{history_plot(history, requests)}
{html_table(history.to_dict("records") if not history.empty else [], ["interval_start", "share_drifted", "prediction_psi", "live_metric", "model_version", "action", "detail"])}
</body></html>
"""
