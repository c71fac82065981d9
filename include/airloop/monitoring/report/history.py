"""The monitored intervals so far, one row each, read back from the ledger and each interval's
drift and performance records; what the page, the timeline and the lineage page draw."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from airloop.catalog import is_better
from airloop.core.files import read_json
from airloop.metadata.ledger import FeedbackLedger
from airloop.monitoring.checks import interval_dir
from airloop.settings import Settings
from airloop.usecase import UseCase


def history_frame(
    settings: Settings, usecase: UseCase, last: int | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """One row per monitored interval (the ``last`` ones only, if given; none after the
    interval starting at ``until``, if given): drift share, prediction drift, live metric,
    decision."""
    rows = []
    decisions = FeedbackLedger(settings.monitoring_root(usecase.name)).decisions()
    if until is not None:
        decisions = [d for d in decisions if datetime.fromisoformat(d["interval_start"]) <= until]
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


def at_target(usecase: UseCase, history: pd.DataFrame) -> tuple[int, int] | None:
    """The monitored intervals whose live metric met ``monitoring.live_target`` (at it or
    better, in the metric's direction), and those with a live figure; None without a target."""
    target = usecase.monitoring.live_target
    if target is None or history.empty:
        return None
    live = history["live_metric"].dropna().astype(float)
    met = sum(is_better(usecase.metrics[0], usecase.task, value, target) for value in live)
    return met, len(live)
