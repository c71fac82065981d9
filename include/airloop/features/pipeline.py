"""The feature pipeline (B), one function per stage, each keyed to a data interval.

Stages: snapshot the landed partition and validate it (the gate) → build features (clean,
transform, compute point-in-time correct) and publish them to the offline store → materialise
the interval into the online store. Each stage overwrites its own outputs, so a rerun of an
interval leaves the same state behind. The Airflow tasks call these; so do the CLI and tests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from airloop.core.columns import EVENTS_TABLE, LABELS_TABLE
from airloop.core.errors import PermanentError
from airloop.core.files import atomic_write, read_json, write_json
from airloop.core.records import Record
from airloop.data.intervals import as_utc, partition_key
from airloop.data.landing import (
    MISSING,
    RawDataError,
    landing_path,
    read_raw,
    record_used,
    relanded,
)
from airloop.features import compute
from airloop.features.offline import partition_file, read_partitions, write_partition
from airloop.features.store import Materialized, materialize_interval
from airloop.features.transforms import clean_source
from airloop.metadata.store import MetadataStore
from airloop.quality.gate import gate_partition, refuse_relanded, validation_report_path
from airloop.settings import Settings
from airloop.usecase import UseCase, ViewInputs, resolve, source_table
from airloop.usecase.sources import CastProblem

log = logging.getLogger(__name__)


class IntervalError(PermanentError, ValueError):
    """A stage was handed an interval it cannot own, such as a zero-width one."""


class Extracted(Record):
    """The interval's landed files, snapshotted into staging; the manifest lists their digests."""

    partition: str
    manifest: str


class Validated(Extracted):
    """The staged partition passed the gate: rows per source, and the validation report."""

    rows: dict[str, int]
    report: str


class Published(Record):
    """The interval's feature tables, published as partitions of the offline store."""

    partition: str
    rows: dict[str, int]
    partitions: dict[str, str]


class IntervalRun(Record):
    """Every stage of one interval, run in one process (``airloop run``)."""

    partition: str
    rows: dict[str, int]
    online: Materialized


def check_interval(start: datetime, end: datetime) -> None:
    """Stages own [start, end); a zero-width interval means the DAG uses a trigger timetable."""
    if as_utc(end) <= as_utc(start):
        raise IntervalError(
            f"data interval [{start}, {end}) is empty: schedule the DAG with a data-interval "
            "timetable (CronDataIntervalTimetable), not a trigger timetable"
        )


def staging_dir(settings: Settings, usecase: UseCase, start: datetime) -> Path:
    """Where an interval's stages keep their intermediate files."""
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
) -> Extracted:
    """Snapshot the interval's landed files into staging, with their digests for lineage.

    A partitioned file whose digest differs from the one recorded when the interval's features
    were last built is refused (:func:`airloop.quality.gate.refuse_relanded`), before any
    stage reads it: a partition landed twice with other contents waits for a person.
    """
    check_interval(start, end)
    uc, st = resolve(usecase, settings)
    stage = staging_dir(st, uc, start) / "raw"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    files: dict[str, dict[str, str | int]] = {}
    for name, spec in uc.sources.items():
        src = landing_path(st, uc, name, start)
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
    found = relanded(st, uc, start, files)
    if found:
        refuse_relanded(uc, st, start, end, found)
    manifest = {"usecase": uc.name, "partition": partition_key(start), "files": files}
    path = write_json(stage / "manifest.json", manifest)
    log.info("extracted partition %s: %s", manifest["partition"], sorted(files))
    return Extracted(partition=partition_key(start), manifest=str(path))


def _read_staged(
    uc: UseCase, extracted: Extracted
) -> tuple[dict[str, pd.DataFrame], dict[str, str], dict[str, list[CastProblem]]]:
    """The staged files read with their declared schemas; what could not be read, and the
    values that could not be cast, by source."""
    manifest = json.loads(Path(extracted.manifest).read_text())
    frames: dict[str, pd.DataFrame] = {}
    errors: dict[str, str] = {}
    problems: dict[str, list[CastProblem]] = {}
    for name, entry in manifest["files"].items():
        spec = uc.sources[name]
        if "missing" in entry:
            errors[name] = f"{MISSING}: {entry['missing']} has not landed"
            continue
        try:
            frames[name], found = read_raw(Path(entry["uri"]), spec)
        except RawDataError as exc:
            errors[name] = str(exc).replace(entry["uri"], entry["landed"])
            continue
        if found:
            problems[name] = found
    return frames, errors, problems


def validate_extracted(
    start: datetime,
    end: datetime,
    extracted: Extracted,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> Validated:
    """The gate: passes with a report, or quarantines the partition and raises ValidationFailed."""
    uc, st = resolve(usecase, settings)
    frames, errors, problems = _read_staged(uc, extracted)
    files = json.loads(Path(extracted.manifest).read_text())["files"]
    digests = {name: f["sha256"] for name, f in files.items() if "sha256" in f}
    report = gate_partition(uc, st, start, end, frames, errors, digests, problems)
    return Validated(
        partition=report["partition"],
        manifest=extracted.manifest,
        rows=report["rows"],
        report=str(validation_report_path(st, uc.name, report["partition"])),
    )


def validate_partition(
    start: datetime,
    end: datetime,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> Validated:
    """Snapshot the interval's landed files into staging, then the gate on that snapshot.

    One stage: the snapshot is a copy with digests, too small to be worth a task of its own
    (a task costs the scheduler about a second), and the gate must see exactly what was
    snapshotted. What follows builds from the same snapshot (the record names its manifest).
    """
    uc, st = resolve(usecase, settings)
    return validate_extracted(start, end, extract_partition(start, end, uc, st), uc, st)


def view_inputs(
    st: Settings, uc: UseCase, start: datetime, end: datetime, clean: dict[str, pd.DataFrame]
) -> ViewInputs:
    """What the feature views compute from: the cleaned sources, and history read on demand.

    Each view says which offline tables it reads and from when; a table is read once, only if
    a view asks for it, from the earliest time any view needs (with two intervals' margin,
    since a partition holds rows from its interval's start on).
    """
    lo, hi = pd.Timestamp(as_utc(start)), pd.Timestamp(as_utc(end))
    since: dict[str, pd.Timestamp] = {}
    for view in uc.feature_views:
        for table, earliest in view.history_since(uc, lo).items():
            since[table] = min(since.get(table, earliest), earliest)

    @cache
    def history(table: str) -> pd.DataFrame | None:
        if table not in since:
            raise KeyError(f"no feature view declares that it reads {table!r} (history_since)")
        first = since[table] - 2 * (hi - lo)
        return read_partitions(st, uc, table, first.to_pydatetime(), lo.to_pydatetime())

    return ViewInputs(start=lo, end=hi, sources=clean, history=history)


def build_features(
    start: datetime,
    end: datetime,
    extracted: Extracted,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Path]:
    """Clean the validated partition and compute every feature table into staging."""
    uc, st = resolve(usecase, settings)
    frames, errors, problems = _read_staged(uc, extracted)
    if errors or problems:
        errors = {**errors, **{s: "; ".join(p.reason for p in ps) for s, ps in problems.items()}}
        raise RawDataError(
            f"staged partition is unreadable, run validate_partition again: {errors}"
        )
    clean = {name: clean_source(df, uc.sources[name]) for name, df in frames.items()}
    tables: dict[str, pd.DataFrame] = {
        EVENTS_TABLE: compute.events_table(uc, clean[uc.events.source]),
        LABELS_TABLE: compute.labels_table(uc, clean[uc.label.source]),
    }
    for source in uc.source_history():  # what later intervals' views read back
        tables[source_table(source)] = compute.source_history_table(uc, source, clean[source])
    inputs = view_inputs(st, uc, start, end, clean)
    for view in uc.feature_views:
        table = view.compute(uc, inputs)
        tables[view.name] = table if table is not None and not table.empty else view.empty(uc)
    out_dir = staging_dir(st, uc, start) / "features"
    written = {name: write_partition(t, out_dir / f"{name}.parquet") for name, t in tables.items()}
    log.info(
        "built features for %s: %s", partition_key(start), {n: len(t) for n, t in tables.items()}
    )
    return written


def copy_to(source: Path, target: Path) -> None:
    """Copy a file's bytes (for :func:`atomic_write`, which names the target)."""
    shutil.copyfile(source, target)


def build_offline_features(
    start: datetime,
    end: datetime,
    extracted: Extracted,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
    run: dict[str, Any] | None = None,
) -> Published:
    """Build the interval's features and publish them to the offline store, as one step.

    One step, because the next interval's snapshots read this one's published labels and
    source rows. The interval's record (its raw digests, validation and partitions, and the run that made
    it: ``run`` is the Airflow run's lineage) goes to the metadata database for lineage.
    """
    uc, st = resolve(usecase, settings)
    staged = build_features(start, end, extracted, uc, st)
    published: dict[str, str] = {}
    rows: dict[str, int] = {}
    for name, path in staged.items():
        target = partition_file(st, uc, name, start)
        atomic_write(target, partial(copy_to, path))
        published[name] = str(target)
        rows[name] = pq.ParquetFile(path).metadata.num_rows
    record_interval(st, uc, start, end, extracted, published, run or {"trigger": "cli"})
    return Published(partition=partition_key(start), rows=rows, partitions=published)


def record_interval(
    st: Settings,
    uc: UseCase,
    start: datetime,
    end: datetime,
    extracted: Extracted,
    published: dict[str, str],
    run: dict[str, Any],
) -> None:
    """What lineage follows back from a training window: this interval's run and its inputs
    (in the metadata database), and the files it used beside the landing zone
    (:func:`airloop.data.landing.record_used`: what a partition landed again is checked
    against)."""
    manifest = read_json(Path(extracted.manifest))
    report_path = validation_report_path(st, uc.name, extracted.partition)
    report = read_json(report_path) if report_path.exists() else {}
    MetadataStore(st).record_interval(
        {
            "usecase": uc.name,
            "partition": extracted.partition,
            "interval_start": as_utc(start),
            "interval_end": as_utc(end),
            "dag_id": run.get("dag_id"),
            "run_id": run.get("run_id"),
            "trigger": run.get("trigger"),
            "raw": {
                name: {k: f[k] for k in ("sha256", "bytes", "landed") if k in f}
                for name, f in manifest["files"].items()
            },
            "validation": {
                "success": report.get("success", report_path.exists()),
                "report": str(report_path) if report_path.exists() else None,
                "rows": report.get("rows"),
            },
            "published": published,
        }
    )
    record_used(st, uc, start, end, manifest["files"], run)


def materialize_online(
    start: datetime,
    end: datetime,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
    views: list[str] | None = None,
) -> Materialized:
    """Load the interval's feature rows into the online store (never rolling it back), for
    every feature view or only these (the DAG's writers each take a group of them)."""
    uc, st = resolve(usecase, settings)
    return materialize_interval(st, uc, start, end, views)


def run_interval(
    start: datetime,
    end: datetime,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> IntervalRun:
    """All stages in one process: for the CLI and for notebooks, not for the scheduler."""
    uc, st = resolve(usecase, settings)
    validated = validate_partition(start, end, uc, st)
    build_offline_features(start, end, validated, uc, st, {"trigger": "cli"})
    online = materialize_online(start, end, uc, st)
    return IntervalRun(partition=validated.partition, rows=validated.rows, online=online)
