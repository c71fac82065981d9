"""The monitoring of one interval: its checks and decision, then its report.

The monitoring DAG runs two tasks, :func:`check_interval` (which emits the retrain request's
Asset event when the decision opens one) and :func:`~airloop.monitoring.report.publish_report`.
``airloop monitor --in-process`` runs :func:`monitor_interval`, both in one process: there a
request is recorded in the ledger (and its note written) but no Asset event starts
``model_training``; the caller decides what to do with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airloop.monitoring.checks import (
    check_drift,
    check_performance,
    drift_window,
    performance_window,
)
from airloop.monitoring.feedback import decide_retraining
from airloop.monitoring.readers import served_frame
from airloop.monitoring.records import IntervalChecked, ReportPublished
from airloop.monitoring.report import publish_report
from airloop.settings import Settings
from airloop.usecase import UseCase, resolve


class MonitoredInterval(IntervalChecked):
    """The checks, the decision and the report of one interval."""

    report: ReportPublished


def check_interval(
    start: datetime,
    end: datetime,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> IntervalChecked:
    """Drift and live performance of [start, end), and the decision on retraining.

    One stage, because the three are one question (does the model still hold?) asked of the
    same prediction log, which is read once for both checks; and the decision is what the
    replay and the scheduler wait for, so it comes as early as the checks allow.
    """
    uc, st = resolve(usecase, settings)
    (drift_lo, hi), (perf_lo, _) = drift_window(uc, start, end), performance_window(uc, start, end)
    served = served_frame(st, uc, min(drift_lo, perf_lo), hi)
    drift = check_drift(start, end, uc, st, served=served)
    performance = check_performance(start, end, uc, st, served=served)
    decision = decide_retraining(start, end, drift, performance, uc, st)
    return IntervalChecked(drift=drift, performance=performance, decision=decision)


def monitor_interval(
    start: datetime,
    end: datetime,
    lineage: dict[str, Any] | None = None,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> MonitoredInterval:
    """check_interval → publish_report, for [start, end), in this process."""
    uc, st = resolve(usecase, settings)
    lineage = lineage or {"trigger": "cli"}
    checked = check_interval(start, end, uc, st)
    report = publish_report(
        start, end, checked.drift, checked.performance, checked.decision, lineage, uc, st
    )
    return MonitoredInterval(**dict(checked), report=report)
