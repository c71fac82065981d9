"""From breaches to retrain requests: hysteresis, cooldown, de-duplication and a budget.

Every monitored interval leaves one decision record, whatever the outcome ("no breach",
"waiting for hysteresis", "suppressed by cooldown", "requested"), so the history of why a
model was or was not retrained is on disk and in the report. A re-run of an interval replaces
its record and never opens a second request for it.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airloop.records import json_safe
from airloop.usecase import RetrainingSpec

REQUESTED, NO_BREACH = "requested", "no breach"
OPEN_REQUEST_TIMEOUT = timedelta(hours=24)  # wall clock: a request nobody closed stops blocking


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace the file atomically: a crash leaves the old or the new history, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(
            "".join(json.dumps(json_safe(r), sort_keys=True, default=str) + "\n" for r in records)
        )
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class FeedbackLedger:
    """The decisions and retrain requests of one use case, kept under the monitoring folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.decisions_path = root / "decisions.jsonl"
        self.requests_path = root / "requests.jsonl"

    def decisions(self) -> list[dict[str, Any]]:
        return sorted(_read_jsonl(self.decisions_path), key=lambda d: d["interval_start"])

    def decision_for(self, start: datetime) -> dict[str, Any] | None:
        """The decision recorded for the interval starting at ``start``, if it was monitored."""
        key = start.isoformat()
        return next((d for d in self.decisions() if d["interval_start"] == key), None)

    def requests(self) -> list[dict[str, Any]]:
        return sorted(_read_jsonl(self.requests_path), key=lambda r: r["interval_end"])

    def record(self, decision: dict[str, Any]) -> None:
        kept = [d for d in self.decisions() if d["interval_start"] != decision["interval_start"]]
        _write_jsonl(
            self.decisions_path, sorted([*kept, decision], key=lambda d: d["interval_start"])
        )

    def open_request(self, request: dict[str, Any]) -> None:
        kept = [r for r in self.requests() if r["request_id"] != request["request_id"]]
        _write_jsonl(self.requests_path, [*kept, request])

    def close_request(self, request_id: str, outcome: dict[str, Any]) -> dict[str, Any] | None:
        """Mark a request done with its training outcome; unknown ids are ignored (manual runs)."""
        requests = self.requests()
        closed = None
        for request in requests:
            if request["request_id"] == request_id:
                request.update(
                    status="closed", closed_at=datetime.now(UTC).isoformat(), outcome=outcome
                )
                closed = request
        if closed is not None:
            _write_jsonl(self.requests_path, requests)
        return closed


def _interval_count(later: datetime, earlier: datetime, length: timedelta) -> float:
    return (later - earlier) / length if length.total_seconds() > 0 else float("inf")


def decide(
    ledger: FeedbackLedger,
    controls: RetrainingSpec,
    start: datetime,
    end: datetime,
    reasons: list[dict[str, Any]],
    context: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Apply the controls to this interval's breaches and record the decision.

    ``reasons`` lists the checks that breached (empty: none). Returns the decision; when its
    ``action`` is ``requested`` it also carries the new request, which the caller publishes.
    """
    now = now or datetime.now(UTC)
    length = end - start
    key_start, key_end = start.isoformat(), end.isoformat()
    history = [d for d in ledger.decisions() if d["interval_start"] != key_start]
    requests = ledger.requests()
    earlier = next((r for r in requests if r["interval_end"] == key_end), None)
    breach = bool(reasons)

    # Consecutive breaching intervals ending with this one (hysteresis).
    streak = 1 if breach else 0
    cursor = start
    by_end = {d["interval_end"]: d for d in history}
    while breach:
        previous = by_end.get(cursor.isoformat())
        if previous is None or not previous["breach"]:
            break
        streak += 1
        cursor = datetime.fromisoformat(previous["interval_start"])

    action, detail = NO_BREACH, None
    request: dict[str, Any] | None = None
    if earlier is not None:
        action, detail = (
            "already requested",
            f"request {earlier['request_id']} covers this interval",
        )
    elif breach and streak < controls.hysteresis:
        action, detail = (
            "waiting",
            f"hysteresis: {streak} of {controls.hysteresis} breaching intervals",
        )
    elif breach:
        open_ones = [
            r
            for r in requests
            if r.get("status") == "open"
            and now - datetime.fromisoformat(r["opened_at"]) < OPEN_REQUEST_TIMEOUT
        ]
        past = [r for r in requests if datetime.fromisoformat(r["interval_end"]) <= end]
        last = past[-1] if past else None
        in_budget = [
            r
            for r in past
            if datetime.fromisoformat(r["interval_end"]) > end - controls.budget_window
        ]
        if open_ones:
            action = "suppressed"
            detail = f"de-duplication: retraining {open_ones[-1]['request_id']} is still open"
        elif (
            last is not None
            and _interval_count(end, datetime.fromisoformat(last["interval_end"]), length)
            <= controls.cooldown
        ):
            action = "suppressed"
            detail = f"cooldown: {controls.cooldown} intervals after request {last['request_id']}"
        elif len(in_budget) >= controls.budget:
            action = "suppressed"
            detail = (
                f"budget: {len(in_budget)} of {controls.budget} retrainings used in the last"
                f" {controls.budget_window.days} days"
            )
        else:
            action = REQUESTED
            request = {
                "request_id": f"retrain-{start:%Y%m%dT%H%M}",
                "interval_start": key_start,
                "interval_end": key_end,
                "opened_at": now.isoformat(),
                "status": "open",
                "streak": streak,
                "reasons": reasons,
                **(context or {}),
            }
            ledger.open_request(request)
    decision = {
        "interval_start": key_start,
        "interval_end": key_end,
        "breach": breach,
        "streak": streak,
        "action": action,
        "detail": detail,
        "reasons": reasons,
        "request_id": request["request_id"] if request else None,
        "decided_at": now.isoformat(),
        **(context or {}),
    }
    ledger.record(decision)
    return {**decision, "request": request}
