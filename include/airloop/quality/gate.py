"""The gate between landing and features: validate a partition, quarantine it when it fails.

A failed partition is moved out of the landing zone into ``quarantine/<partition key>/`` with a
``report.json`` that says what was wrong and Great Expectations Data Docs (HTML) to browse.
Nothing downstream is written. Two refusals move nothing: a partition with a file not landed
yet (it stays, so a rerun once the file lands picks it up), and a partition landed again with
other contents than its features were built from (both versions stay for a person to decide).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.core.errors import PermanentError
from airloop.core.files import read_json, write_json
from airloop.data.intervals import as_utc, partition_key, utc_now
from airloop.data.landing import MISSING, Relanded, landing_path, used_record_path
from airloop.quality.expectations import (
    Failure,
    build_expectations,
    ephemeral_context,
    frame_for_validation,
    suite_fingerprint,
    validate_frame,
)
from airloop.settings import Settings
from airloop.usecase import SourceSpec, UseCase
from airloop.usecase.sources import CastProblem

log = logging.getLogger(__name__)


class ValidationFailed(PermanentError, RuntimeError):
    """The partition broke the use case's expectations; the message says how and where to look."""

    def __init__(self, message: str, report_path: Path) -> None:
        super().__init__(message)
        self.report_path = report_path


class PartitionIncomplete(ValidationFailed):
    """A source's file has not landed; nothing was moved, a rerun after it lands picks it up."""


class LandedTwice(PermanentError, RuntimeError):
    """A partition landed again with other contents than its published features were built
    from; both versions are kept, nothing was read or changed."""

    def __init__(self, message: str, report_path: Path) -> None:
        super().__init__(message)
        self.report_path = report_path


def quarantine_folder(settings: Settings, usecase: str, start: datetime) -> Path:
    """Where the gate moves a use case's refused partition of the interval at ``start``, with
    its ``report.json``."""
    return settings.quarantine_dir / usecase / partition_key(start)


def validation_report_path(settings: Settings, usecase: str, partition: str) -> Path:
    """Where the gate writes a use case's report on one partition."""
    return settings.reports_root(usecase) / "validation" / f"{partition}.json"


def gate_partition(
    usecase: UseCase,
    settings: Settings,
    start: datetime,
    end: datetime,
    frames: dict[str, pd.DataFrame],
    read_errors: dict[str, str],
    digests: Mapping[str, str] | None = None,
    cast_problems: Mapping[str, list[CastProblem]] | None = None,
) -> dict[str, Any]:
    """Validate every source of an interval; pass returns the report, fail quarantines and raises.

    A reference table whose file (``digests``: sha256 by source) already passed the same
    suite is not validated again: every interval stages the same planes and airlines, and
    their suites were a fifth of a day's validation. The report says which partition's
    validation it reused. ``cast_problems``: values each source's declared types could not
    hold when it was read (:func:`airloop.data.landing.read_raw`), failures like the suite's.
    """
    key = partition_key(start)
    failures: list[Failure] = [
        Failure(s, "landed" if msg.startswith(MISSING) else "readable", None, msg)
        for s, msg in read_errors.items()
    ]
    failures += [
        Failure(source, "castable", p.column, p.reason, list(p.examples))
        for source, problems in (cast_problems or {}).items()
        for p in problems
    ]
    results: dict[str, Any] = {}
    rows: dict[str, int] = {}
    reused: dict[str, str] = {}
    passed = _passed_references(settings, usecase.name)
    context = ephemeral_context()
    for source, df in frames.items():
        spec = usecase.sources[source]
        suite = build_expectations(spec, start)
        digest = (digests or {}).get(source) if spec.kind == "reference" else None
        seen = passed.get(source, {}) if digest else {}
        fingerprint = suite_fingerprint(suite, spec) if digest else None
        if digest and seen.get("sha256") == digest and seen.get("suite") == fingerprint:
            found: list[Failure] = []
            raw: dict[str, Any] = {"ignored_columns": seen.get("ignored_columns", [])}
            reused[source] = seen["partition"]
        else:
            found, raw = validate_frame(df, spec, source, start, context, suite)
            if digest and not found:
                passed[source] = {
                    "sha256": digest,
                    "suite": fingerprint,
                    "partition": key,
                    "ignored_columns": raw["ignored_columns"],
                }
        failures += found
        results[source] = raw
        rows[source] = len(df)
    report = {
        "usecase": usecase.name,
        "partition": key,
        "interval": [as_utc(start).isoformat(), as_utc(end).isoformat()],
        "validated_at": utc_now().isoformat(),
        "success": not failures,
        "rows": rows,
        "ignored_columns": {
            s: r["ignored_columns"] for s, r in results.items() if r["ignored_columns"]
        },
        "failures": [f.as_dict() for f in failures],
        "reused": reused,
    }
    write_json(validation_report_path(settings, usecase.name, key), report)
    if not failures:
        write_json(_passed_references_path(settings, usecase.name), passed)
        return report
    if all(f.check == "landed" for f in failures):
        reasons = "\n".join(f"  - {f.source}: {f.reason}" for f in failures)
        raise PartitionIncomplete(
            f"partition {key} of use case {usecase.name!r} is incomplete, nothing was moved:\n"
            f"{reasons}\nLand the missing file, then run the interval again (clear this run, "
            f"or `airloop backfill --start {as_utc(start):%Y-%m-%d}`).",
            validation_report_path(settings, usecase.name, key),
        )
    qdir = quarantine_partition(usecase, settings, start, report)
    try:
        docs = build_data_docs(qdir, {s: (usecase.sources[s], df) for s, df in frames.items()})
        report["data_docs"] = str(docs) if docs else None
    except Exception as exc:  # Data Docs are a convenience; the JSON report is the record
        log.warning("could not build Data Docs for %s: %s", key, exc)
        report["data_docs"] = None
    write_json(qdir / "report.json", report)
    reasons = "\n".join(f"  - {f.source}: {f.reason}" for f in failures)
    raise ValidationFailed(
        f"partition {key} of use case {usecase.name!r} failed validation and was quarantined "
        f"in {qdir}:\n{reasons}\nFix the data, land it again, then clear this run.",
        qdir / "report.json",
    )


def refuse_relanded(
    usecase: UseCase, settings: Settings, start: datetime, end: datetime, found: list[Relanded]
) -> None:
    """Refuse a partition landed again with other contents: a report in its quarantine folder
    naming both versions of each file, and an error saying how to settle it. Nothing is moved:
    the landed file stays where it landed, the used one where the record keeps it."""
    key = partition_key(start)
    record = used_record_path(settings, usecase, start)
    report = {
        "usecase": usecase.name,
        "partition": key,
        "interval": [as_utc(start).isoformat(), as_utc(end).isoformat()],
        "validated_at": utc_now().isoformat(),
        "success": False,
        "rows": {},
        "failures": [
            {
                "source": f.source,
                "check": "landed_once",
                "column": None,
                "reason": f.reason,
                "examples": [],
            }
            for f in found
        ],
        "landed_twice": [vars(f) for f in found],
        "used_record": str(record),
    }
    path = write_json(quarantine_folder(settings, usecase.name, start) / "report.json", report)
    reasons = "\n".join(f"  - {f.reason}" for f in found)
    raise LandedTwice(
        f"partition {key} of use case {usecase.name!r} was refused: it landed again with other "
        f"contents than its features were built from. Nothing was read or changed.\n{reasons}\n"
        "Both versions are kept. Decide which is right: to rebuild from the new file, delete "
        f"{record} and run the interval again; to keep the features as they are, copy the "
        "kept file back over the landed one.",
        path,
    )


def _passed_references_path(settings: Settings, usecase: str) -> Path:
    return settings.reports_root(usecase) / "validation-references.json"


def _passed_references(settings: Settings, usecase: str) -> dict[str, dict[str, Any]]:
    """The reference tables that passed, by source: their file's digest, the suite's, and
    the partition whose validation passed them."""
    return read_json(_passed_references_path(settings, usecase))


def quarantine_partition(
    usecase: UseCase, settings: Settings, start: datetime, report: dict[str, Any]
) -> Path:
    """Move the interval's landed files aside, so no later run reads them by mistake."""
    qdir = quarantine_folder(settings, usecase.name, start)
    qdir.mkdir(parents=True, exist_ok=True)
    for source in usecase.partitioned_sources:
        src = landing_path(settings, usecase, source, start)
        if src.exists():
            target = qdir / source / src.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), target)
    write_json(qdir / "report.json", report)
    log.warning("quarantined partition %s in %s", report["partition"], qdir)
    return qdir


def build_data_docs(qdir: Path, frames: dict[str, tuple[SourceSpec, pd.DataFrame]]) -> Path | None:
    """Great Expectations Data Docs for the quarantined partition, in a context of its own."""
    if not frames:
        return None
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=str(qdir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    datasource = context.data_sources.add_or_update_pandas("quarantine")
    definitions = []
    batches = {}
    for source, (spec, _df) in frames.items():
        asset = (
            datasource.get_asset(source)
            if source in [a.name for a in datasource.assets]
            else datasource.add_dataframe_asset(source)
        )
        batch = asset.add_batch_definition_whole_dataframe(f"{source}_batch")
        suite = gx.ExpectationSuite(name=f"{source}_suite")
        for exp in build_expectations(spec):
            suite.add_expectation(exp)
        suite = context.suites.add_or_update(suite)
        vd = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=f"{source}_validation", data=batch, suite=suite)
        )
        definitions.append(vd)
        batches[source] = vd
    for source, vd in batches.items():
        spec, df = frames[source]
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=f"{source}_checkpoint",
                validation_definitions=[vd],
                actions=[UpdateDataDocsAction(name="data_docs")],
            )
        )
        checkpoint.run(batch_parameters={"dataframe": frame_for_validation(df, spec)})
    index = qdir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    return index if index.exists() else None
