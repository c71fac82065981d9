"""Atomic writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airloop.core.records import json_safe


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a fresh file beside ``path``, flush it to disk, then rename it.

    The temporary name is unique, so two writers of the same path never share a file; the
    last rename wins, whole.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def publish(tmp: Path, path: Path) -> Path:
    """Flush a finished file to disk and rename it to ``path`` (on the same file system), for a
    file whose name is known only once it is written (a digest in the name, say)."""
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def write_text(path: Path, text: str) -> Path:
    """Replace a text file atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, payload: Any) -> Path:
    """Replace a JSON file atomically; NaN and infinity are written as null."""
    return write_text(path, json.dumps(json_safe(payload), indent=2, default=str))


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    """Replace a JSON-lines file atomically, one record a line, keys sorted."""
    lines = "".join(json.dumps(json_safe(r), sort_keys=True, default=str) + "\n" for r in records)
    return write_text(path, lines)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON record, or an empty one when the file does not exist (the step has not run)."""
    return json.loads(path.read_text()) if path.exists() else {}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; none when it does not exist."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for a read-modify-write.

    An advisory ``flock``: processes on one host, and hosts sharing a volume whose file system
    supports it (local disks, Docker volumes; NFS with its lock service), wait their turn.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
