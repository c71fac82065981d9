"""The feature pipeline (B), one function per stage, each keyed to a data interval.

Stages: extract the landed partition → validate it (the gate) → build features (clean,
transform, compute point-in-time correct) → write them to the offline store → materialise
the interval into the online store. Each stage overwrites its own outputs, so a rerun of an
interval leaves the same state behind. The Airflow tasks call these; so do the CLI and tests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.data.intervals import as_utc, partition_key
from airloop.data.landing import RawDataError, landing_path, read_raw
from airloop.features import compute
from airloop.features.store import (
    EVENTS_TABLE,
    LABELS_TABLE,
    materialize_interval,
    partition_file,
    read_partitions,
    write_partition,
)
from airloop.features.transforms import clean_source
from airloop.quality.gate import gate_partition
from airloop.settings import Settings
from airloop.usecase import UseCase, resolve

log = logging.getLogger(__name__)


class IntervalError(ValueError):
    """A stage was handed an interval it cannot own, such as a zero-width one."""


def check_interval(start: datetime, end: datetime) -> None:
    """Stages own [start, end); a zero-width interval means the DAG uses a trigger timetable."""
    if as_utc(end) <= as_utc(start):
        raise IntervalError(
            f"data interval [{start}, {end}) is empty: schedule the DAG with a data-interval "
            "timetable (CronDataIntervalTimetable), not a trigger timetable"
        )


def staging_dir(settings: Settings, usecase: UseCase, start: datetime) -> Path:
    return settings.staging_dir / usecase.name / partition_key(start)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_partition(
    start: datetime,
    end: datetime,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Snapshot the interval's landed files into staging, with their digests for lineage."""
    check_interval(start, end)
    uc, st = resolve(usecase, settings)
    stage = staging_dir(st, uc, start) / "raw"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    files: dict[str, Any] = {}
    for name, spec in uc.sources.items():
        src = landing_path(st, name, spec, start)
        if not src.exists():
            files[name] = {"missing": str(src)}
            continue
        dst = stage / f"{name}.{spec.format}"
        shutil.copy2(src, dst)
        files[name] = {
            "uri": str(dst),
            "landed": str(src),
            "sha256": _sha256(dst),
            "bytes": dst.stat().st_size,
        }
    manifest = {"usecase": uc.name, "partition": partition_key(start), "files": files}
    (stage / "manifest.json").write_text(json.dumps(manifest, indent=2))
    log.info("extracted partition %s: %s", manifest["partition"], sorted(files))
    return {"manifest": str(stage / "manifest.json"), "partition": manifest["partition"]}


def _read_staged(uc: UseCase, manifest_path: str) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    manifest = json.loads(Path(manifest_path).read_text())
    frames: dict[str, pd.DataFrame] = {}
    errors: dict[str, str] = {}
    for name, entry in manifest["files"].items():
        spec = uc.sources[name]
        if "missing" in entry:
            errors[name] = f"missing file: {entry['missing']} has not landed"
            continue
        try:
            frames[name] = read_raw(Path(entry["uri"]), spec)
        except RawDataError as exc:
            errors[name] = str(exc).replace(entry["uri"], entry["landed"])
    return frames, errors


def validate_partition(
    start: datetime,
    end: datetime,
    manifest: str,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The gate: passes with a report, or quarantines the partition and raises ValidationFailed."""
    uc, st = resolve(usecase, settings)
    frames, errors = _read_staged(uc, manifest)
    report = gate_partition(uc, st, start, end, frames, errors)
    return {"partition": report["partition"], "rows": report["rows"], "success": True}


def build_features(
    start: datetime,
    end: datetime,
    manifest: str,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Clean the validated partition and compute every feature table into staging."""
    uc, st = resolve(usecase, settings)
    frames, errors = _read_staged(uc, manifest)
    if errors:
        raise RawDataError(f"staged partition is unreadable, rerun from extract: {errors}")
    clean = {name: clean_source(df, uc.sources[name]) for name, df in frames.items()}
    lo, hi = as_utc(start), as_utc(end)
    tables: dict[str, pd.DataFrame] = {
        EVENTS_TABLE: compute.events_table(uc, clean[uc.events.source]),
        LABELS_TABLE: compute.labels_table(uc, clean[uc.label.source]),
    }
    history_needed = [v for v in uc.feature_views if v.kind == "label_rate"]
    if history_needed:
        longest = max(w for v in history_needed for w in v.windows)
        since = lo - longest - uc.label.delay - (hi - lo)
        past_labels = read_partitions(st, uc, LABELS_TABLE, since, lo)
        past_events = read_partitions(st, uc, EVENTS_TABLE, since, lo)
    for view in uc.feature_views:
        if view.kind == "source_rows":
            assert view.source is not None
            table = compute.source_rows_view(uc, view, clean[view.source])
        elif view.kind == "reference_snapshot":
            assert view.source is not None
            table = compute.reference_snapshot_view(uc, view, clean[view.source], lo)
        elif past_labels is None or past_events is None:
            table = compute.empty_view(uc, view)
        else:
            table = compute.label_rate_view(uc, view, past_labels, past_events, lo)
        tables[view.name] = table
    out_dir = staging_dir(st, uc, start) / "features"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, table in tables.items():
        written[name] = str(write_partition(table, out_dir / f"{name}.parquet"))
    rows = {name: len(t) for name, t in tables.items()}
    log.info("built features for %s: %s", partition_key(start), rows)
    return {"tables": written, "rows": rows}


def build_offline_features(
    start: datetime,
    end: datetime,
    manifest: str,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Build the interval's features and publish them to the offline store, as one step.

    One step, because the next interval's rolling features read this one's published labels.
    """
    built = build_features(start, end, manifest, usecase, settings)
    published = write_offline_store(start, end, built["tables"], usecase, settings)
    return {"rows": built["rows"], **published}


def write_offline_store(
    start: datetime,
    end: datetime,
    tables: dict[str, str],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Publish the staged tables as this interval's partitions of the offline store."""
    uc, st = resolve(usecase, settings)
    published = {}
    for name, staged in tables.items():
        target = partition_file(st, uc, name, start)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(staged, target.with_name(f".{target.name}.tmp"))
        target.with_name(f".{target.name}.tmp").replace(target)
        published[name] = str(target)
    return {"partitions": published}


def materialize_online(
    start: datetime,
    end: datetime,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    uc, st = resolve(usecase, settings)
    return materialize_interval(st, uc, start, end)


def run_interval(
    start: datetime,
    end: datetime,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """All stages in one process: for the CLI and for notebooks, not for the scheduler."""
    uc, st = resolve(usecase, settings)
    extracted = extract_partition(start, end, uc, st)
    validated = validate_partition(start, end, extracted["manifest"], uc, st)
    build_offline_features(start, end, extracted["manifest"], uc, st)
    online = materialize_online(start, end, uc, st)
    return {"partition": extracted["partition"], "rows": validated["rows"], "online": online}
