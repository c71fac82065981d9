"""The prediction log: every prediction appended durably, partitioned by hour, off the hot path.

Partitions follow the event's time (``event_time`` when the client sends it, else the time
served), so monitoring reads a data interval's predictions from that interval's partitions.

Requests put records into a bounded queue; one writer thread appends them as JSON lines to
``predictions/<use case>/date=YYYY-MM-DD/hour=HH.<writer>.jsonl`` and fsyncs each batch.
Each process writes its own files (``<writer>`` is its host and process id), so replicas of
the service on one shared volume never interleave lines. Closing the log drains the queue,
so a graceful shutdown loses no entry.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_STOP = object()


class PredictionLog:
    """A durable, append-only log of predictions, written by one background thread."""

    def __init__(self, root: Path, max_queue: int = 50_000, put_timeout: float = 1.0) -> None:
        self.root = root
        self.writer = f"{socket.gethostname()}-{os.getpid()}"
        self.put_timeout = put_timeout
        self.dropped = 0
        self.written = 0
        self._opened: set[Path] = set()  # the files this writer has appended to
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(
            target=self._run, name="airloop-prediction-log", daemon=True
        )
        self._thread.start()

    def append(self, record: dict[str, Any]) -> bool:
        """Queue a record; waits briefly when the buffer is full, then counts it as dropped."""
        try:
            self._queue.put(record, timeout=self.put_timeout)
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def path_for(self, when: datetime) -> Path:
        """The hourly partition a record of that event time goes to."""
        return self.root / f"date={when:%Y-%m-%d}" / f"hour={when:%H}.{self.writer}.jsonl"

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while len(batch) < 1000:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if any(item is _STOP for item in batch):
                stopping = True
                batch = [item for item in batch if item is not _STOP]
            self._write(batch)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        by_file: dict[Path, list[str]] = {}
        for record in batch:
            when = datetime.fromisoformat(record.get("event_time") or record["time"]).astimezone(
                UTC
            )
            by_file.setdefault(self.path_for(when), []).append(json.dumps(record, default=str))
        for path, lines in by_file.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            # A torn last line (a writer of this id killed mid-line) stays a line of its own.
            start = "\n" if path not in self._opened and ends_torn(path) else ""
            self._opened.add(path)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(start + "\n".join(lines) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self.written += len(lines)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, then stop the writer."""
        self._queue.put(_STOP)
        self._thread.join(timeout)


def ends_torn(path: Path) -> bool:
    """Whether a log file's last line has no line break: a writer stopped in its middle."""
    try:
        with path.open("rb") as fh:
            if fh.seek(0, os.SEEK_END) == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except FileNotFoundError:
        return False


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of one log file. A line that is not a whole JSON object is skipped and
    counted in a warning that names the file and the line: a writer killed in the middle of a
    batch leaves its last line torn (and a writer started again under the same process id, as
    in a container, appends after it), and one torn line must not hide the others."""
    records: list[dict[str, Any]] = []
    torn: list[int] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            else:
                torn.append(number)
    if torn:
        log.warning(
            "skipped %d torn line(s) of the prediction log %s (line %s): a writer stopped"
            " in the middle of a line",
            len(torn),
            path,
            ", ".join(map(str, torn[:10])),
        )
    return records


def read_log(root: Path) -> list[dict[str, Any]]:
    """Every record under a log root, oldest partition first (for monitoring and tests)."""
    return [r for path in sorted(root.glob("date=*/hour=*.jsonl")) for r in read_records(path)]


def log_days(start: datetime, end: datetime) -> list[datetime]:
    """The UTC days (midnights) whose partitions hold the events of [start, end)."""
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = []
    while day < end.astimezone(UTC):
        days.append(day)
        day += timedelta(days=1)
    return days


def day_files(root: Path, day: datetime) -> list[Path]:
    """The log files of one UTC day (every writer's, every hour), in hour order."""
    return sorted((root / f"date={day.astimezone(UTC):%Y-%m-%d}").glob("hour=*.jsonl"))


def read_files(paths: list[Path], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The records of these log files whose event time falls in [start, end)."""
    lo, hi = start.astimezone(UTC), end.astimezone(UTC)
    records = []
    for path in paths:
        for record in read_records(path):
            when = datetime.fromisoformat(record.get("event_time") or record["time"])
            if lo <= when.astimezone(UTC) < hi:
                records.append(record)
    return records


def read_window(root: Path, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The records whose event time falls in [start, end): only that window's partitions are read."""
    return [r for day in log_days(start, end) for r in read_files(day_files(root, day), start, end)]
