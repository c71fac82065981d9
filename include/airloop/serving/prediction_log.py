"""The prediction log: every prediction appended before its answer is sent, partitioned by hour.

Partitions follow the event's time (``event_time`` when the client sends it, else the time
served), so monitoring reads a data interval's predictions from that interval's partitions.

A request's records are appended as JSON lines, in one ``write`` to
``predictions/<use case>/date=YYYY-MM-DD/hour=HH.<writer>.jsonl``, before the service answers:
a prediction the caller was given is in the kernel's hands, so a replica killed (``kill -9``)
right after answering loses none. A background thread fsyncs the files written since its last
pass every :data:`SYNC_SECONDS`, so a crash of the machine itself loses at most that much.
Each process writes its own files (``<writer>`` is its host and process id), so replicas of the
service on one shared volume never interleave lines.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
SYNC_SECONDS = 0.5  # the longest a written prediction waits for its fsync
OPEN_FILES = 8  # hourly files kept open; older ones are synced and closed


class PredictionLog:
    """A durable, append-only log of predictions: written on the request's path, synced off it."""

    def __init__(self, root: Path, sync_seconds: float = SYNC_SECONDS) -> None:
        self.root = root
        self.writer = f"{socket.gethostname()}-{os.getpid()}"
        self.sync_seconds = sync_seconds
        self.dropped = 0  # records that could not be written (a full or unwritable disk)
        self.written = 0
        self._lock = threading.Lock()
        self._files: dict[Path, int] = {}  # open descriptors, oldest first
        self._unsynced: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._sync_loop, name="airloop-prediction-log", daemon=True
        )
        self._thread.start()

    def append(self, record: dict[str, Any]) -> bool:
        """Write one record; whether it was written."""
        return self.append_many([record]) == 1

    def append_many(self, records: list[dict[str, Any]]) -> int:
        """Write a request's records, one ``write`` per hourly file, before returning: the number
        written. A record that cannot be written (disk full, unwritable volume) is counted as
        dropped and logged; the prediction itself still stands."""
        by_file: dict[Path, list[str]] = {}
        for record in records:
            when = datetime.fromisoformat(record.get("event_time") or record["time"])
            by_file.setdefault(self.path_for(when.astimezone(UTC)), []).append(
                json.dumps(record, default=str)
            )
        written = 0
        with self._lock:
            for path, lines in by_file.items():
                try:
                    fd = self._descriptor(path)
                    data = ("\n".join(lines) + "\n").encode()
                    while data:  # a regular file takes it in one write; a short one goes on
                        data = data[os.write(fd, data) :]
                except OSError as exc:
                    self.dropped += len(lines)
                    log.error("the prediction log could not write %s: %s", path, exc)
                    continue
                self._unsynced.add(fd)
                written += len(lines)
            self.written += written
        return written

    def path_for(self, when: datetime) -> Path:
        """The hourly partition a record of that event time goes to."""
        return self.root / f"date={when:%Y-%m-%d}" / f"hour={when:%H}.{self.writer}.jsonl"

    def _descriptor(self, path: Path) -> int:
        """The open descriptor of an hourly file (the caller holds the lock). A file this writer
        id finds torn (a writer of the same id killed mid-line, as a container's restarted
        process can be) gets a line break first, so the torn line stays a line of its own."""
        if path in self._files:
            return self._files[path]
        path.parent.mkdir(parents=True, exist_ok=True)
        torn = ends_torn(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if torn:
            os.write(fd, b"\n")
        self._files[path] = fd
        while len(self._files) > OPEN_FILES:
            oldest = next(iter(self._files))
            self._close(self._files.pop(oldest))
        return fd

    def _close(self, fd: int) -> None:
        self._unsynced.discard(fd)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def sync(self) -> None:
        """fsync every file written since the last pass."""
        with self._lock:
            pending, self._unsynced = self._unsynced, set()
        for fd in pending:
            try:
                os.fsync(fd)
            except OSError as exc:  # closed meanwhile (already synced), or the disk failed
                log.debug("prediction log fsync of descriptor %d: %s", fd, exc)

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.sync_seconds):
            self.sync()

    def close(self, timeout: float = 30.0) -> None:
        """Sync and close every file, then stop the syncing thread."""
        self._stop.set()
        self._thread.join(timeout)
        with self._lock:
            while self._files:
                self._close(self._files.popitem()[1])


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
