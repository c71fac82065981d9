"""The timeline: the life of a model on one page and one figure (matplotlib), over every
monitored interval, with the retrain requests and the demo's promotions and refusals."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.core.files import write_text
from airloop.core.html import figure_img, html_table, write_png
from airloop.metadata.ledger import FeedbackLedger
from airloop.monitoring.report.charts import VERSION_SHADES, version_runs
from airloop.monitoring.report.history import at_target, history_frame
from airloop.monitoring.report.page import STYLE
from airloop.settings import Settings
from airloop.usecase import UseCase

# What the demo's timeline events look like on the figure: (marker, colour, legend).
EVENT_MARKS = {
    "champion": ("*", "tab:green", "first champion"),
    "promoted": ("^", "tab:green", "promoted"),
    "gate": ("x", "tab:orange", "refused by the gate"),
}


def timeline_figure(
    history: pd.DataFrame,
    requests: list[dict[str, Any]],
    events: Sequence[dict[str, Any]],
    target: float | None = None,
) -> Any:
    """The life of a model at a glance, one point per monitored interval: the share of drifting
    features and the served scores' PSI above; below, the live metric against the metric at
    training and the use case's ``target``, shaded by the model version that served; retrain
    requests as red lines, and the promotions and refusals of the ``events`` as marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(12, 5.2), sharex=True)
    drift, live = axes
    if not history.empty:
        x = pd.to_datetime(history["interval_start"])
        drift.plot(x, history["share_drifted"], marker=".", label="share of drifting features")
        drift.plot(x, history["prediction_psi"], marker=".", label="prediction PSI")
        _served_versions(live, x, history["model_version"])
        live.plot(x, history["live_metric"], marker=".", color="black", label="live metric")
        live.plot(x, history["expected_metric"], linestyle="--", color="grey", label="at training")
        if target is not None:
            live.axhline(target, color="tab:green", linestyle=":", label=f"target {target:g}")
        for request in requests:
            when = datetime.fromisoformat(request["interval_start"])
            for ax in axes:
                ax.axvline(when, color="red", alpha=0.4)
        if requests:
            drift.plot([], [], color="red", alpha=0.4, label="retrain request")
    top = live.get_ylim()[1]  # the marks sit on the top edge of the live metric's panel
    for kind, (marker, colour, label) in EVENT_MARKS.items():
        days = [pd.Timestamp(e["day"], tz="UTC") for e in events if e.get("kind") == kind]
        if days:
            live.scatter(
                days, [top] * len(days), marker=marker, color=colour, s=70, label=label, zorder=3
            )
    drift.set_ylabel("drift")
    live.set_ylabel("live metric")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.autofmt_xdate()
    plt.close(fig)
    return fig


LABELLED_SHARE = 1 / 60  # a version's run narrower than this share of the axis goes unnamed


def _served_versions(ax: Any, x: pd.Series, versions: pd.Series) -> None:
    """Shade each run of intervals one model version served, labelled with the version where
    the run is wide enough to read (over a year, a version that served two days would print
    its name over its neighbours'); the labels alternate between two heights."""
    step = x.diff().median() if len(x) > 1 else pd.Timedelta(days=1)
    span = (x.max() + step - x.min()) if len(x) else step
    labelled = 0
    for i, (first, last, version) in enumerate(version_runs(list(x), list(versions))):
        if version is None or pd.isna(version):
            continue
        ax.axvspan(first, last + step, color=VERSION_SHADES[i % 2], zorder=0)
        if (last + step - first) / span >= LABELLED_SHARE:
            height = 0.02 if labelled % 2 == 0 else 0.09
            ax.annotate(
                f"v{version}", (first, height), xycoords=("data", "axes fraction"), fontsize=7
            )
            labelled += 1


def render_timeline(
    settings: Settings,
    usecase: UseCase,
    events: list[dict[str, Any]],
    path: Path,
    history: pd.DataFrame | None = None,
) -> Path:
    """The life of the model on one page: drift and live performance, requests and promotions;
    its figure also as a PNG beside the page. ``history``: :func:`history_frame`, when the
    caller has already read it."""
    requests = FeedbackLedger(settings.monitoring_root(usecase.name)).requests()
    history = history_frame(settings, usecase) if history is None else history
    target = usecase.monitoring.live_target
    figure = timeline_figure(history, requests, events, target)
    png = write_png(path.with_suffix(".png"), figure)
    met = at_target(usecase, history)
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>airloop timeline: {html.escape(usecase.name)}</title><style>{STYLE}</style></head><body>
<h1>The life of {html.escape(usecase.training.model_name)} ({html.escape(usecase.name)})</h1>
<p>Red lines mark retrain requests. Each monitored interval's own report is under
<code>{html.escape(str(settings.monitoring_root(usecase.name) / "intervals"))}</code> and in MLflow
(experiment <code>{html.escape(usecase.name)}/monitoring</code>).</p>
{figure_img(figure, "timeline")}
{f"<p>Live {html.escape(usecase.metrics[0])} at its target ({target:g}) or better on <b>{met[0]} of {met[1]}</b> monitored intervals with a live figure.</p>" if met else ""}
<p>The same figure as a PNG: <code>{html.escape(str(png))}</code>.</p>
<h2>Events</h2>
{html_table(events, ["day", "kind", "detail", "at"])}
<h2>Retrain requests</h2>
{html_table([{**r, "outcome": (r.get("outcome") or {}).get("result"), "checks": ", ".join(x["check"] for x in r.get("reasons", []))} for r in requests], ["request_id", "interval_start", "checks", "status", "outcome"])}
<h2>Every monitored interval</h2>
{html_table(history.to_dict("records") if not history.empty else [], ["interval_start", "share_drifted", "prediction_psi", "live_metric", "model_version", "action", "detail"])}
</body></html>
"""
    return write_text(path, page)
