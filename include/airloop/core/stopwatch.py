"""Where a long job's wall time goes: seconds and counts per named phase.

The demo and the year replay time their phases with one of these, so the profile a benchmark
reports is measured by the job itself rather than reconstructed from logs afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Stopwatch:
    """Accumulated wall seconds and entries per phase, in the order phases first ran."""

    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block under ``name`` (added to earlier blocks of the same name)."""
        began = time.monotonic()
        try:
            yield
        finally:
            self.add(name, time.monotonic() - began)

    def add(self, name: str, seconds: float) -> None:
        """Count ``seconds`` under ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.counts[name] = self.counts.get(name, 0) + 1

    def as_dict(self) -> dict[str, dict[str, float]]:
        """Per phase: total seconds, entries, and the mean seconds per entry."""
        return {
            name: {
                "seconds": round(total, 2),
                "count": self.counts[name],
                "mean": round(total / self.counts[name], 3),
            }
            for name, total in self.seconds.items()
        }


__all__ = ["Stopwatch"]
