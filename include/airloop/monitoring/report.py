"""The monitoring report: an HTML page per interval, its figures in MLflow and for Prometheus.

The page shows each drifting feature's distribution (reference against served), the drift and
live-performance history, and the decision with its reason. It is logged to MLflow in a run of
the use case's ``monitoring`` experiment, tagged with the serving model version; the same
figures are written as a Prometheus text file that the serving API's ``/metrics`` appends.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from airloop.catalog import is_better
from airloop.core.columns import SCORE
from airloop.core.files import read_json, write_text
from airloop.core.html import figure_img, html_table, write_png
from airloop.core.svg import PALETTE, Chart, date_ticks, value_range
from airloop.data.intervals import as_utc
from airloop.metadata.ledger import FeedbackLedger
from airloop.monitoring.checks import interval_dir
from airloop.monitoring.readers import load_reference
from airloop.monitoring.records import Decision, DriftCheck, PerformanceCheck, ReportPublished
from airloop.registry.tracking import configure, experiment_id, experiment_name, note_run
from airloop.settings import Settings
from airloop.usecase import UseCase, resolve

MAX_PLOTS = 8
VERSION_SHADES = ("#e8f0fe", "#fef3e0")  # alternate between the runs of versions that served
# An interval's page shows the recent history: over a year, the whole of it made each page
# slower to draw than the last (the timeline page has all of it).
REPORT_HISTORY = 90


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


def _distribution_plots(reference: pd.DataFrame, served: pd.DataFrame, columns: list[str]) -> str:
    return "\n".join(
        distribution_chart(reference[column], served[column], column)
        for column in columns[:MAX_PLOTS]
        if column in reference.columns and column in served.columns
    )


def history_frame(settings: Settings, usecase: UseCase, last: int | None = None) -> pd.DataFrame:
    """One row per monitored interval (the ``last`` ones only, if given): drift share,
    prediction drift, live metric, decision."""
    rows = []
    decisions = FeedbackLedger(settings.monitoring_root(usecase.name)).decisions()
    for decision in decisions[-last:] if last else decisions:
        start = datetime.fromisoformat(decision["interval_start"])
        folder = interval_dir(settings, usecase, start)
        drift = read_json(folder / "drift.json")
        perf = read_json(folder / "performance.json")
        data = drift.get("data") or {}
        primary = perf.get("metric")
        rows.append(
            {
                "interval_start": start,
                "share_drifted": data.get("share_drifted"),
                "prediction_psi": (drift.get("prediction") or {}).get("score"),
                "live_metric": (perf.get("live") or {}).get(primary) if primary else None,
                "expected_metric": (perf.get("expected") or {}).get(primary) if primary else None,
                "model_version": drift.get("model_version") or perf.get("model_version"),
                "action": decision["action"],
                "detail": decision.get("detail"),
                "request_id": decision.get("request_id"),
            }
        )
    return pd.DataFrame(rows)


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
    for i, (first, last, version) in enumerate(_version_runs(xs, list(history["model_version"]))):
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


def _version_runs(xs: list[Any], versions: list[Any]) -> list[tuple[Any, Any, Any]]:
    """Consecutive intervals one model version served: (first x, last x, version)."""
    runs: list[tuple[Any, Any, Any]] = []
    for x, version in zip(xs, versions, strict=True):
        if runs and runs[-1][2] == version:
            runs[-1] = (runs[-1][0], x, version)
        else:
            runs.append((x, x, version))
    return runs


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
    for i, (first, last, version) in enumerate(_version_runs(list(x), list(versions))):
        if version is None or pd.isna(version):
            continue
        ax.axvspan(first, last + step, color=VERSION_SHADES[i % 2], zorder=0)
        if (last + step - first) / span >= LABELLED_SHARE:
            height = 0.02 if labelled % 2 == 0 else 0.09
            ax.annotate(
                f"v{version}", (first, height), xycoords=("data", "axes fraction"), fontsize=7
            )
            labelled += 1


def _label(value: Any) -> str:
    """A Prometheus label value, escaped as the text format requires."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


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
        plots = _distribution_plots(reference, served, [*drifting, SCORE])
    requests = FeedbackLedger(settings.monitoring_root(usecase.name)).requests()
    history = history_frame(settings, usecase, last=REPORT_HISTORY)
    note = ""
    if decision.request is not None and decision.request.note_uri:
        note = Path(decision.request.note_uri).read_text()
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


def prometheus_text(
    usecase: UseCase, full: dict[str, Any], performance: PerformanceCheck, decision: Decision
) -> str:
    """The interval's figures in Prometheus' text format (node_exporter's textfile style)."""
    uc = usecase.name
    lines = [
        "# HELP airloop_drift_score Drift of a served feature against the training reference",
        "# TYPE airloop_drift_score gauge",
    ]
    for f in (full.get("data") or {}).get("features", []):
        lines.append(
            f'airloop_drift_score{{usecase="{uc}",feature="{_label(f["feature"])}",'
            f'measure="{_label(f["measure"])}"}} {f["score"]}'
        )
    share = (full.get("data") or {}).get("share_drifted")
    prediction = full.get("prediction") or {}
    gauges = {
        "airloop_drift_share": ("Share of features drifting", share),
        "airloop_prediction_drift": (
            "PSI of served scores against the reference",
            prediction.get("score"),
        ),
        "airloop_labelled_predictions": (
            "Predictions with labels in the window",
            performance.labelled,
        ),
        "airloop_retrain_requested": (
            "1 when the last interval opened a retrain request",
            float(decision.action == "requested"),
        ),
    }
    for name, (text, value) in gauges.items():
        if value is not None:
            lines += [
                f"# HELP {name} {text}",
                f"# TYPE {name} gauge",
                f'{name}{{usecase="{uc}"}} {value}',
            ]
    live = performance.live or {}
    if live:
        lines += [
            "# HELP airloop_live_metric Live metric on labelled predictions",
            "# TYPE airloop_live_metric gauge",
        ]
        lines += [
            f'airloop_live_metric{{usecase="{uc}",metric="{_label(k)}"}} {v}'
            for k, v in live.items()
            if v is not None
        ]
    return "\n".join(lines) + "\n"


def publish_report(
    start: datetime,
    end: datetime,
    drift: DriftCheck,
    performance: PerformanceCheck,
    decision: Decision,
    lineage: dict[str, Any] | None = None,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> ReportPublished:
    """Write the page and the Prometheus file; log both and the figures to MLflow (idempotent)."""
    uc, st = resolve(usecase, settings)
    start, end = as_utc(start), as_utc(end)
    folder = interval_dir(st, uc, start)
    full = read_json(Path(drift.uri))
    page = write_text(
        folder / "report.html", render_report(st, uc, start, end, full, performance, decision)
    )
    prom = prometheus_text(uc, full, performance, decision)
    write_text(folder / "metrics.prom", prom)
    latest = write_text(st.monitoring_metrics_file(uc.name), prom)
    version = drift.model_version or performance.model_version
    experiment, run_id = log_report(
        st, uc, start, end, full, performance, decision, version, lineage
    )
    url = f"{st.mlflow_ui_url}/#/experiments/{experiment}/runs/{run_id}"
    note = (
        f"**{decision.action}**"
        + (f": {decision.detail}" if decision.detail else "")
        + f"\n\n[Monitoring report in MLflow]({url}) · `{page}`"
    )
    return ReportPublished(
        report_uri=str(page),
        mlflow_run_id=run_id,
        mlflow_experiment_id=experiment,
        metrics_uri=str(latest),
        note=note,
    )


def report_metrics(full: dict[str, Any], performance: PerformanceCheck) -> dict[str, float]:
    """The interval's figures as MLflow metrics: drift per feature, shares, live metrics."""
    data = full.get("data") or {}
    metrics: dict[str, float] = {}
    for f in data.get("features", []):
        metrics[f"drift.{f['feature']}"] = float(f["score"])
    if data.get("share_drifted") is not None:
        metrics["drift_share"] = float(data["share_drifted"])
    if full.get("prediction"):
        metrics["prediction_psi"] = float(full["prediction"]["score"])
    for k, v in (performance.live or {}).items():
        if v is not None:
            metrics[f"live_{k}"] = float(v)
    return metrics


def log_report(
    settings: Settings,
    usecase: UseCase,
    start: datetime,
    end: datetime,
    full: dict[str, Any],
    performance: PerformanceCheck,
    decision: Decision,
    version: str | None,
    lineage: dict[str, Any] | None,
) -> tuple[str, str]:
    """One MLflow run per interval (a re-run reuses it), against the serving version's model.

    Returns the experiment id and the run id.
    """
    import mlflow

    client = configure(settings)
    exp = experiment_id(settings, experiment_name(usecase.name, "monitoring"))
    key = start.isoformat()
    found = client.search_runs(
        [exp], filter_string=f"tags.`airloop.interval_start` = '{key}'", max_results=1
    )
    tags = {
        "airloop.stage": "monitoring",
        "airloop.usecase": usecase.name,
        "airloop.interval_start": key,
        "airloop.interval_end": end.isoformat(),
        "airloop.model_version": str(version),
        "airloop.decision": decision.action,
        **{f"airloop.{k}": str(v) for k, v in (lineage or {}).items() if v is not None},
    }
    if decision.request_id:
        tags["airloop.retrain_request"] = decision.request_id
    folder = interval_dir(settings, usecase, start)
    with mlflow.start_run(
        run_id=found[0].info.run_id if found else None,
        experiment_id=exp,
        run_name=f"monitoring {start:%Y-%m-%d}",
    ) as run:
        note_run(run.info.run_id)
        mlflow.set_tags(tags)
        model_id = _model_id(client, usecase, version)
        step, timestamp = int(start.timestamp() // 86400), int(end.timestamp() * 1000)
        # One batch: a call per metric cost 8 ms each, 41 of them a day.
        mlflow.log_metrics(
            report_metrics(full, performance), step=step, timestamp=timestamp, model_id=model_id
        )
        for name in ("report.html", "drift.json", "performance.json"):
            if (folder / name).exists():
                mlflow.log_artifact(str(folder / name), artifact_path="report")
    return exp, run.info.run_id


def _model_id(client: Any, usecase: UseCase, version: Any) -> str | None:
    """The logged model behind a registered version, so its page shows the live figures."""
    if version is None:
        return None
    try:
        return client.get_model_version(usecase.training.model_name, str(version)).model_id
    except Exception:
        return None


def at_target(usecase: UseCase, history: pd.DataFrame) -> tuple[int, int] | None:
    """The monitored intervals whose live metric met ``monitoring.live_target`` (at it or
    better, in the metric's direction), and those with a live figure; None without a target."""
    target = usecase.monitoring.live_target
    if target is None or history.empty:
        return None
    live = history["live_metric"].dropna().astype(float)
    met = sum(is_better(usecase.metrics[0], usecase.task, value, target) for value in live)
    return met, len(live)


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
