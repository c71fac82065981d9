"""The landing zone: where raw partitions arrive, one data interval at a time.

Layout under ``$AIRLOOP_HOME/landing``: ``<use case>/<source>/<partition key>.<format>`` for
partitioned sources, ``<use case>/<source>/current.<format>`` for reference tables, and
``<use case>/_used/<partition key>.json``: the record of the files an interval's published
features were built from (digests, and a kept copy of each partitioned file beside it), so a
partition landed again with other contents is refused rather than silently rebuilt.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.core.errors import PermanentError
from airloop.core.files import atomic_write, read_json, write_json
from airloop.data.intervals import as_utc, partition_key, utc_now
from airloop.settings import Settings
from airloop.usecase import SourceSpec, UseCase
from airloop.usecase.sources import CastProblem

MISSING = "missing file"  # how a file that has not landed is reported, by every stage
USED_DIR = "_used"


class RawDataError(PermanentError, ValueError):
    """A raw partition that cannot even be read (missing, empty, unparseable)."""


def landing_path(settings: Settings, usecase: UseCase, source: str, start: datetime | None) -> Path:
    """Where a source's partition for the interval starting at ``start`` lands (reference: whole)."""
    spec = usecase.sources[source]
    name = "current" if spec.kind == "reference" else partition_key(start)  # type: ignore[arg-type]
    return settings.landing_root(usecase.name) / source / f"{name}.{spec.format}"


def read_raw(path: Path, spec: SourceSpec) -> tuple[pd.DataFrame, list[CastProblem]]:
    """Read a landed file with the source's declared schema, never re-inferred per file: a
    partition of whole numbers in a number column is numbers, a ``T`` marker declared in
    ``na_values`` is missing. Values the declared type cannot hold come back as problems
    (and missing in the frame) for the validation gate to report.

    A file that cannot be read whole is refused with the reason, never read in part: text
    that is not in the source's ``encoding``, a CSV cut off in the middle of a row, a
    Parquet file without its footer (truncated while being copied).
    """
    if not path.exists():
        raise RawDataError(f"{MISSING}: {path} has not landed")
    if path.stat().st_size == 0:
        raise RawDataError(f"empty file: {path} has no content")
    try:
        if spec.format == "csv":
            whole = csv_text(path, spec.encoding)
            # Declared columns as text, cast below; the rest as pandas reads them.
            text = {c.name: "string" for c in spec.columns}
            df = pd.read_csv(io.StringIO(whole), dtype=text, keep_default_na=True, na_values=["NA"])
        else:
            df = pd.read_parquet(path)
    except RawDataError:
        raise
    except pd.errors.EmptyDataError:
        raise RawDataError(f"empty file: {path} has no header and no rows") from None
    except pd.errors.ParserError as exc:
        raise RawDataError(
            f"malformed CSV: {path}: {exc} (a row with more fields than the header, or an "
            "unclosed quote): fix the file and land it again"
        ) from None
    except Exception as exc:
        if spec.format == "parquet":
            raise RawDataError(
                f"unreadable Parquet file: {path} ({type(exc).__name__}: {exc}): truncated while "
                "being written or copied, or not Parquet at all; land it again"
            ) from None
        raise RawDataError(f"unreadable file: {path}: {type(exc).__name__}: {exc}") from None
    return spec.cast(df)


def csv_text(path: Path, encoding: str) -> str:
    """A CSV's text; refused when it is not text in ``encoding`` or its last row was cut off.

    pandas would report a wrong encoding by a byte's position in an internal buffer, and read a
    row cut off mid-way with its missing fields empty, as if the data had gaps. The encoding is
    checked on the whole file (the line of the first bad byte is named); the last row only
    when the file does not end with a line break, as every writer ends a whole file with one.
    """
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RawDataError(
            f"wrong encoding: {path} is not {encoding} text: byte {data[exc.start]:#04x} on line "
            f"{line} ({exc.reason}). Declare the source's encoding in usecase.yaml (e.g. "
            "'encoding: latin-1'), or convert the file to "
            f"{encoding} and land it again"
        ) from None
    if text.endswith(("\n", "\r")):
        return text.removeprefix("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) > 1 and len(rows[-1]) < len(rows[0]):
        raise RawDataError(
            f"truncated file: {path} ends in the middle of row {len(rows) - 1} ({len(rows[-1])} "
            f"of {len(rows[0])} fields, no final line break): it was cut off while being "
            "written or copied; land it again"
        )
    return text.removeprefix("\ufeff")


def write_raw(df: pd.DataFrame, path: Path, spec: SourceSpec) -> Path:
    """Write a landing file atomically (a reader never sees half a partition)."""
    if spec.format == "csv":
        return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False, encoding=spec.encoding))
    return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def used_record_path(settings: Settings, usecase: UseCase, start: datetime) -> Path:
    """The record of the files the interval at ``start`` was last built from."""
    return settings.landing_root(usecase.name) / USED_DIR / f"{partition_key(start)}.json"


def read_used(settings: Settings, usecase: UseCase, start: datetime) -> dict[str, Any]:
    """The interval's record of used files; empty when its features were never published."""
    return read_json(used_record_path(settings, usecase, start))


def record_used(
    settings: Settings,
    usecase: UseCase,
    start: datetime,
    end: datetime,
    files: Mapping[str, Mapping[str, Any]],
    run: Mapping[str, Any],
) -> Path:
    """Record which files the interval's published features were built from, atomically.

    ``files``: by source, the staged copy (``uri``), where it landed, its sha256 and size (the
    snapshot's manifest). Each partitioned file is kept beside the record (a hard link to the
    staged copy, which costs no space; a copy where links are not possible), so that when the
    partition lands again with other contents both versions exist for a person to compare.
    """
    record_path = used_record_path(settings, usecase, start)
    used: dict[str, dict[str, Any]] = {}
    for source, entry in files.items():
        if "sha256" not in entry:
            continue
        used[source] = {k: entry[k] for k in ("landed", "sha256", "bytes") if k in entry}
        if usecase.sources[source].kind == "partitioned" and "uri" in entry:
            staged = Path(entry["uri"])
            kept = record_path.with_suffix("") / staged.name
            atomic_write(kept, partial(_link_or_copy, staged))
            used[source]["kept"] = str(kept)
    record = {
        "usecase": usecase.name,
        "partition": partition_key(start),
        "interval": [as_utc(start).isoformat(), as_utc(end).isoformat()],
        "used_at": utc_now().isoformat(),
        "run": {k: run.get(k) for k in ("dag_id", "run_id", "trigger")},
        "files": used,
    }
    return write_json(record_path, record)


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink()
    link_or_copy(source, target)


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (no bytes copied), or a copy where the file
    system cannot link."""
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(source, target)


def link_landing_zone(source: Path, target: Path) -> int:
    """Every landed file under ``source`` at the same place under ``target`` (airloop's own
    records, ``_used``, left out): another home replays the same raw files, and writes only
    its own. Returns the number of files."""
    count = 0
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or relative.parts[0].startswith("_"):
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(path, target / relative)
        count += 1
    return count


@dataclass(frozen=True)
class Relanded:
    """A partitioned file whose contents differ from those the interval was built from."""

    source: str
    landed: str
    sha256: str
    kept: str
    used_sha256: str
    used_at: str

    @property
    def reason(self) -> str:
        """Both versions, where each is, and the two ways to settle it."""
        return (
            f"{self.source} landed again with different contents: the interval was built on "
            f"{self.used_at} from sha256 {self.used_sha256[:12]}… (kept at {self.kept}); the "
            f"file now at {self.landed} has sha256 {self.sha256[:12]}…"
        )


def relanded(
    settings: Settings,
    usecase: UseCase,
    start: datetime,
    snapshot: Mapping[str, Mapping[str, Any]],
) -> list[Relanded]:
    """The partitioned sources of a fresh snapshot (the manifest's ``files``) whose digest
    differs from the one recorded when the interval was last built. Reference tables are
    replaced whole by design and never count; a file that was missing then counts as late,
    not as landed again."""
    record = read_used(settings, usecase, start)
    found = []
    for source, used in (record.get("files") or {}).items():
        now = snapshot.get(source) or {}
        spec = usecase.sources.get(source)
        if spec is None or spec.kind != "partitioned" or "sha256" not in now:
            continue
        if now["sha256"] != used["sha256"]:
            found.append(
                Relanded(
                    source=source,
                    landed=str(now.get("landed")),
                    sha256=now["sha256"],
                    kept=str(used.get("kept")),
                    used_sha256=used["sha256"],
                    used_at=str(record.get("used_at")),
                )
            )
    return found
