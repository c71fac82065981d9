"""The feedback ledger: every monitored interval's decision and every retrain request, on disk.

Two JSON-lines files under the use case's monitoring folder, each replaced atomically: a crash
leaves the old or the new history, never half. Every change is a read-modify-write under one
lock, so a monitoring run and a training run closing a request, on two workers, never lose
each other's update. Keyed by interval, so a re-run replaces its own record and nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airloop.core.files import locked, read_jsonl, write_jsonl


class FeedbackLedger:
    """The decisions and retrain requests of one use case, kept under the monitoring folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.decisions_path = root / "decisions.jsonl"
        self.requests_path = root / "requests.jsonl"
        self.lock_path = root / ".ledger.lock"

    def decisions(self) -> list[dict[str, Any]]:
        """Every recorded decision, oldest interval first."""
        return sorted(read_jsonl(self.decisions_path), key=lambda d: d["interval_start"])

    def decision_for(self, start: datetime) -> dict[str, Any] | None:
        """The decision recorded for the interval starting at ``start``, if it was monitored."""
        key = start.isoformat()
        return next((d for d in self.decisions() if d["interval_start"] == key), None)

    def requests(self) -> list[dict[str, Any]]:
        """Every retrain request, oldest first."""
        return sorted(read_jsonl(self.requests_path), key=lambda r: r["interval_end"])

    def request(self, request_id: str) -> dict[str, Any] | None:
        """The request with this id, if any."""
        return next((r for r in self.requests() if r["request_id"] == request_id), None)

    def record(self, decision: dict[str, Any]) -> None:
        """Keep this decision, replacing an earlier one for the same interval."""
        with locked(self.lock_path):
            kept = [
                d for d in self.decisions() if d["interval_start"] != decision["interval_start"]
            ]
            write_jsonl(
                self.decisions_path, sorted([*kept, decision], key=lambda d: d["interval_start"])
            )

    def open_request(self, request: dict[str, Any]) -> None:
        """Keep a new request (replacing one with the same id)."""
        with locked(self.lock_path):
            kept = [r for r in self.requests() if r["request_id"] != request["request_id"]]
            write_jsonl(self.requests_path, [*kept, request])

    def close_request(self, request_id: str, outcome: dict[str, Any]) -> dict[str, Any] | None:
        """Mark a request done with its training outcome; unknown ids are ignored (manual runs)."""
        with locked(self.lock_path):
            requests = self.requests()
            closed = None
            for request in requests:
                if request["request_id"] == request_id:
                    request.update(
                        status="closed", closed_at=datetime.now(UTC).isoformat(), outcome=outcome
                    )
                    closed = request
            if closed is not None:
                write_jsonl(self.requests_path, requests)
        return closed
