"""Every monitoring stage of one interval, in one process: ``airloop monitor --in-process``.

The monitoring DAG runs the same stages as tasks. Without Airflow, a request is recorded in
the ledger (and its note written) but no Asset event starts ``model_training``: the caller
decides what to do with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airloop.core.records import Record
from airloop.monitoring.checks import check_drift, check_performance
from airloop.monitoring.feedback import decide_retraining
from airloop.monitoring.records import Decision, DriftCheck, PerformanceCheck, ReportPublished
from airloop.monitoring.report import publish_report
from airloop.settings import Settings
from airloop.usecase import UseCase, resolve


class MonitoredInterval(Record):
    """The checks, the decision and the report of one interval."""

    drift: DriftCheck
    performance: PerformanceCheck
    decision: Decision
    report: ReportPublished


def monitor_interval(
    start: datetime,
    end: datetime,
    lineage: dict[str, Any] | None = None,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> MonitoredInterval:
    """check_drift, check_performance → decide_retraining → publish_report, for [start, end)."""
    uc, st = resolve(usecase, settings)
    lineage = lineage or {"trigger": "cli"}
    drift = check_drift(start, end, uc, st)
    performance = check_performance(start, end, uc, st)
    decision = decide_retraining(start, end, drift, performance, uc, st)
    report = publish_report(start, end, drift, performance, decision, lineage, uc, st)
    return MonitoredInterval(drift=drift, performance=performance, decision=decision, report=report)
