"""From breaches to retrain requests: hysteresis, cooldown, de-duplication and a budget.

Every monitored interval leaves one decision record, whatever the outcome ("no breach",
"waiting for hysteresis", "suppressed by cooldown", "requested"), so the history of why a
model was or was not retrained is on disk and in the report. A re-run of an interval replaces
its record and never opens a second request for it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airloop.core.files import write_text
from airloop.data.intervals import as_utc
from airloop.metadata.ledger import FeedbackLedger
from airloop.monitoring.records import Decision, DriftCheck, PerformanceCheck, RetrainRequest
from airloop.settings import Settings
from airloop.usecase import RetrainingSpec, UseCase, resolve

log = logging.getLogger(__name__)
REQUESTED, NO_BREACH = "requested", "no breach"
OPEN_REQUEST_TIMEOUT = timedelta(hours=24)  # wall clock: a request nobody closed stops blocking

__all__ = ["FeedbackLedger", "breach_reasons", "decide", "decide_retraining"]


def _interval_count(later: datetime, earlier: datetime, length: timedelta) -> float:
    return (later - earlier) / length if length.total_seconds() > 0 else float("inf")


def breach_streak(history: list[dict[str, Any]], start: datetime) -> int:
    """How many breaching intervals in a row end just before ``start`` (from the ledger)."""
    by_end = {d["interval_end"]: d for d in history}
    streak, cursor = 0, start
    while (previous := by_end.get(cursor.isoformat())) is not None and previous["breach"]:
        streak += 1
        cursor = datetime.fromisoformat(previous["interval_start"])
    return streak


def suppression(
    requests: list[dict[str, Any]],
    controls: RetrainingSpec,
    end: datetime,
    length: timedelta,
    now: datetime,
) -> str | None:
    """Why a request due now must wait (an open one, the cooldown, the budget), or None."""
    open_ones = [
        r
        for r in requests
        if r.get("status") == "open"
        and now - datetime.fromisoformat(r["opened_at"]) < OPEN_REQUEST_TIMEOUT
    ]
    if open_ones:
        return f"de-duplication: retraining {open_ones[-1]['request_id']} is still open"
    past = [r for r in requests if datetime.fromisoformat(r["interval_end"]) <= end]
    if past:
        last = past[-1]
        since = _interval_count(end, datetime.fromisoformat(last["interval_end"]), length)
        if since <= controls.cooldown:
            return f"cooldown: {controls.cooldown} intervals after request {last['request_id']}"
    in_budget = [
        r for r in past if datetime.fromisoformat(r["interval_end"]) > end - controls.budget_window
    ]
    if len(in_budget) >= controls.budget:
        return (
            f"budget: {len(in_budget)} of {controls.budget} retrainings used in the last"
            f" {controls.budget_window}"
        )
    return None


def verdict(
    ledger: FeedbackLedger,
    controls: RetrainingSpec,
    start: datetime,
    end: datetime,
    streak: int,
    now: datetime,
) -> tuple[str, str | None]:
    """The action for an interval with ``streak`` breaches in a row (0: none), and why."""
    earlier = next((r for r in ledger.requests() if r["interval_end"] == end.isoformat()), None)
    if earlier is not None:
        return "already requested", f"request {earlier['request_id']} covers this interval"
    if not streak:
        return NO_BREACH, None
    if streak < controls.hysteresis:
        return "waiting", f"hysteresis: {streak} of {controls.hysteresis} breaching intervals"
    reason = suppression(ledger.requests(), controls, end, end - start, now)
    return ("suppressed", reason) if reason is not None else (REQUESTED, None)


def decide(
    ledger: FeedbackLedger,
    controls: RetrainingSpec,
    start: datetime,
    end: datetime,
    reasons: list[dict[str, Any]],
    context: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Decision:
    """Apply the controls to this interval's breaches and record the decision.

    ``reasons`` lists the checks that breached (empty: none). When the decision's ``action``
    is ``requested`` it carries the new request, which the caller publishes.
    """
    now = now or datetime.now(UTC)
    context = context or {}
    key_start, key_end = start.isoformat(), end.isoformat()
    history = [d for d in ledger.decisions() if d["interval_start"] != key_start]
    streak = 1 + breach_streak(history, start) if reasons else 0
    # A rerun of the interval that opened a request (a cleared task, a retry) decides what its
    # first try decided, and names the same request; it opens none (nothing is emitted twice).
    opened = next((r for r in ledger.requests() if r["interval_start"] == key_start), None)
    if opened is not None:
        action, detail = REQUESTED, None
    else:
        action, detail = verdict(ledger, controls, start, end, streak, now)
    request = None
    if action == REQUESTED and opened is None:
        request = RetrainRequest(
            request_id=f"retrain-{start:%Y%m%dT%H%M}",
            interval_start=key_start,
            interval_end=key_end,
            opened_at=now.isoformat(),
            status="open",
            streak=streak,
            reasons=reasons,
            **context,
        )
        ledger.open_request(request.to_dict())
    decision = Decision(
        interval_start=key_start,
        interval_end=key_end,
        breach=bool(reasons),
        streak=streak,
        action=action,
        detail=detail,
        reasons=reasons,
        request_id=opened["request_id"] if opened else (request.request_id if request else None),
        decided_at=now.isoformat(),
        request=request,
        **context,
    )
    ledger.record({k: v for k, v in decision.to_dict().items() if k != "request"})
    return decision


def breach_reasons(drift: DriftCheck, performance: PerformanceCheck) -> list[dict[str, Any]]:
    """The checks that breached, each with the figures that made it breach."""
    reasons: list[dict[str, Any]] = []
    if drift.dataset_drift:
        reasons.append(
            {
                "check": "data_drift",
                "share_drifted": drift.share_drifted,
                "features": [f.to_dict() for f in drift.drifted_features],
            }
        )
    if drift.prediction is not None and drift.prediction.drifted:
        prediction = drift.prediction
        reasons.append(
            {
                "check": "prediction_drift",
                "score": prediction.score,
                "threshold": prediction.threshold,
                "configured_threshold": prediction.configured_threshold,
                "noise_threshold": prediction.noise_threshold,
                "reference_rows": prediction.reference_rows,
                "current_rows": prediction.current_rows,
            }
        )
    if performance.breach and performance.metric:
        reasons.append(
            {
                "check": "live_performance",
                "metric": performance.metric,
                "live": (performance.live or {}).get(performance.metric),
                "expected": (performance.expected or {}).get(performance.metric),
                "allowed_drop": performance.allowed_drop,
                "labelled": performance.labelled,
            }
        )
    return reasons


def decide_retraining(
    start: datetime,
    end: datetime,
    drift: DriftCheck,
    performance: PerformanceCheck,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> Decision:
    """Breaches → a decision under the use case's controls; a request carries its reason."""
    uc, st = resolve(usecase, settings)
    root = st.monitoring_root(uc.name)
    context = {
        "usecase": uc.name,
        "model_version": drift.model_version or performance.model_version,
        "live": performance.live,
    }
    decision = decide(
        FeedbackLedger(root),
        uc.monitoring.retraining,
        as_utc(start),
        as_utc(end),
        breach_reasons(drift, performance),
        context,
    )
    if decision.request is not None:
        note = write_text(
            request_note_path(st, uc, decision.request.request_id),
            request_note(uc, decision.request, performance),
        )
        decision = decision.model_copy(
            update={"request": decision.request.model_copy(update={"note_uri": str(note)})}
        )
    log.info("interval %s: %s (%s)", decision.interval_start, decision.action, decision.detail)
    return decision


def request_note_path(settings: Settings, usecase: UseCase, request_id: str) -> Path:
    """Where a retrain request's note is kept (the monitoring report shows it)."""
    return settings.monitoring_root(usecase.name) / "requests" / f"{request_id}.md"


def _threshold(figures: dict[str, Any]) -> str:
    """The threshold a drift score was held to, with the use case's and chance's parts and the
    counts, where the record has them (a record written before they were kept has not)."""
    text = f"threshold {figures['threshold']}"
    if figures.get("noise_threshold") is None:
        return text
    return (
        f"{text}: the larger of {figures.get('configured_threshold')} and"
        f" {figures['noise_threshold']}, chance's at {figures.get('reference_rows')} reference"
        f" and {figures.get('current_rows')} served rows"
    )


def request_note(uc: UseCase, request: RetrainRequest, performance: PerformanceCheck) -> str:
    """A short record for the data and science side: what drifted, how the model is doing."""
    lines = [
        f"# Retrain request {request.request_id} ({uc.name})",
        "",
        f"Interval {request.interval_start} to {request.interval_end}, "
        f"model v{request.model_version}, {request.streak} breaching intervals in a row.",
        "",
    ]
    for reason in request.reasons:
        if reason["check"] == "data_drift":
            lines.append(f"- data drift: {reason['share_drifted']:.0%} of features drifted")
            for f in reason["features"]:
                lines.append(f"  - {f['feature']}: {f['score']:.3f} ({_threshold(f)})")
        elif reason["check"] == "prediction_drift":
            lines.append(f"- prediction drift: PSI {reason['score']:.3f} ({_threshold(reason)})")
        else:
            lines.append(
                f"- live {reason['metric']}: {reason['live']:.3f} against {reason['expected']:.3f}"
                f" at training (allowed drop {reason['allowed_drop']})"
            )
    if performance.live:
        live = ", ".join(f"{k} {v:.3f}" for k, v in performance.live.items() if v is not None)
        lines += ["", f"Live metrics on {performance.labelled} labelled predictions: {live}."]
    return "\n".join(lines) + "\n"
