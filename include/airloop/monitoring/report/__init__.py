"""The monitoring report: an HTML page per interval, its figures in MLflow and for Prometheus.

The page shows each drifting feature's distribution (reference against served), the drift and
live-performance history, and the decision with its reason. It is logged to MLflow in a run of
the use case's ``monitoring`` experiment, tagged with the serving model version; the same
figures are written as a Prometheus text file that the serving API's ``/metrics`` appends.

One module per part: ``page`` (the interval's HTML page), ``charts`` (its SVG charts),
``history`` (the monitored intervals so far), ``prometheus`` (the text file), ``tracking``
(the MLflow run) and ``timeline`` (the life of a model, over every interval). This module
publishes an interval's report with them: :func:`publish_report`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from airloop.core.files import read_json, write_text
from airloop.data.intervals import as_utc
from airloop.metadata.ledger import FeedbackLedger
from airloop.monitoring.checks import interval_dir
from airloop.monitoring.records import Decision, DriftCheck, PerformanceCheck, ReportPublished
from airloop.monitoring.report.page import render_report
from airloop.monitoring.report.prometheus import prometheus_text
from airloop.monitoring.report.tracking import log_report
from airloop.settings import Settings
from airloop.usecase import UseCase, resolve


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
    latest = publish_latest(st, uc, start, prom)
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


def publish_latest(settings: Settings, usecase: UseCase, start: datetime, prom: str) -> Path:
    """The figures the serving API's ``/metrics`` appends: the newest monitored interval's.

    A rerun (or a backfill) of an older interval leaves a later interval's figures in place.
    """
    latest = settings.monitoring_metrics_file(usecase.name)
    decisions = FeedbackLedger(settings.monitoring_root(usecase.name)).decisions()
    newer = [d for d in decisions if datetime.fromisoformat(d["interval_start"]) > start]
    if not newer or not latest.exists():
        write_text(latest, prom)
    return latest
