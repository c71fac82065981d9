"""``profile.html``: the profile as a page a person reads before trusting the proposal.

Self-contained: the plots are inlined as PNG, so the file can be mailed or opened anywhere.
matplotlib is imported when a page is drawn, never when the package is.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from airloop.core.html import figure_img, html_table
from airloop.initiation.records import CADENCES, DataProfile

STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
    ".warning{color:#a40}.info{color:#357}img{margin:4px}"
)
MAX_HISTOGRAMS = 12


def render_html(profile: DataProfile) -> str:
    """The page: a summary, the findings first, then time, the columns, the distributions."""
    t, counts, ent, target = profile.time, profile.per_interval, profile.entity, profile.target
    findings = "".join(
        f'<li class="{f.severity}"><b>{f.severity}</b>: {html.escape(f.message)}</li>'
        for f in profile.findings
    )
    columns = [
        {
            **c.model_dump(include={"name", "type", "role", "cardinality", "min", "max", "mean"}),
            "missing": f"{c.missing_share:.1%}",
            "top values": ", ".join(f"{v} ({n})" for v, n in c.top_values),
            "corr. with target": c.target_correlation,
        }
        for c in profile.columns
    ]
    summary: list[dict[str, Any]] = [
        {"": "file", "value": profile.file},
        {"": "rows", "value": profile.rows},
        {"": "time", "value": f"{t.first} .. {t.last} ({t.cadence}, {t.schedule})"},
        {
            "": "intervals",
            "value": f"{counts.intervals} ({counts.empty} empty); rows per "
            f"interval min {counts.min}, median {counts.median:g}, max {counts.max}",
        },
        {
            "": "entity",
            "value": f"{'+'.join(ent.columns)}: {ent.count} values, median "
            f"{ent.rows_median:g} rows each",
        },
        {"": "target", "value": f"{_label(profile)}, {target.labelled} rows labelled"},
    ]
    title = f"airloop profile: {html.escape(Path(profile.file).name)}"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>{STYLE}</style></head><body>
<h1>{title}</h1>
{html_table(summary, ["", "value"])}
<h2>Findings</h2><ul>{findings}</ul>
<h2>Over time</h2>
{_time_plots(profile)}
<h2>Columns</h2>
{html_table(columns, ["name", "type", "role", "missing", "cardinality", "min", "max", "mean", "top values", "corr. with target"])}
<h2>Relevance</h2>
{_relevance(profile)}
<h2>Distributions</h2>
{_histograms(profile)}
</body></html>
"""


def _relevance(profile: DataProfile) -> str:
    """The measurements ranked as the proposal ranked them: the best get windows."""
    if not profile.relevance:
        return "<p>no measurements to rank</p>"
    lag = profile.relevance[0].lag_intervals
    word = CADENCES[profile.time.cadence].word
    rows = [
        {"rank": i, "column": r.column, "mutual information": round(r.score, 4), "rows": r.rows}
        for i, r in enumerate(profile.relevance, start=1)
    ]
    return (
        f"<p>Each measurement's value {lag} {word}(s) back (what a lag feature knows) against "
        "the target, on the first training window's rows: mutual information in nats (0: "
        "nothing in common). The best ranked get windows in the proposal.</p>"
        + html_table(rows, ["rank", "column", "mutual information", "rows"])
    )


def _label(profile: DataProfile) -> str:
    target = profile.target
    if target.threshold is None:
        return f"{target.column} ({target.task})"
    return f"{target.column} ({target.task} of {target.column} > {target.threshold:g})"


def _time_plots(profile: DataProfile) -> str:
    from matplotlib.figure import Figure

    points = profile.over_time
    x = pd.to_datetime([p.start for p in points])
    what = "share positive" if profile.target.task == "classification" else "mean"
    fig = Figure(figsize=(9, 5))
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(x, [p.target if p.target is not None else np.nan for p in points], marker=".")
    top.set_ylabel(f"{profile.target.column} ({what})")
    bottom.fill_between(x, [p.rows for p in points], step="post", alpha=0.5, label="rows")
    bottom.step(x, [p.labelled for p in points], where="post", label="with a label")
    bottom.legend(fontsize=7, loc="lower right")
    bottom.set_ylabel(f"rows per {CADENCES[profile.over_time_freq].word}")
    fig.autofmt_xdate()
    return figure_img(fig, "target and rows over time")


def _histograms(profile: DataProfile) -> str:
    from matplotlib.figure import Figure

    parts = []
    shown = [(c, c.histogram) for c in profile.columns if c.histogram is not None]
    for col, (edges, counts) in shown[:MAX_HISTOGRAMS]:
        fig = Figure(figsize=(3.6, 2.4))
        ax = fig.subplots()
        ax.stairs(counts, edges, fill=True)
        ax.set_title(f"{col.name} ({col.role})", fontsize=9)
        ax.tick_params(labelsize=7)
        parts.append(figure_img(fig, col.name))
    return "\n".join(parts) or "<p>no numeric columns</p>"
