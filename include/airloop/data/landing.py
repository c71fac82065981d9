"""The landing zone: where raw partitions arrive, one data interval at a time.

Layout under ``$AIRLOOP_HOME/landing``: ``<use case>/<source>/<partition key>.<format>`` for
partitioned sources, ``<use case>/<source>/current.<format>`` for reference tables.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from airloop.core.errors import PermanentError
from airloop.core.files import atomic_write
from airloop.data.intervals import partition_key
from airloop.settings import Settings
from airloop.usecase import SourceSpec, UseCase
from airloop.usecase.sources import CastProblem


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
    (and missing in the frame) for the validation gate to report."""
    if not path.exists():
        raise RawDataError(f"missing file: {path} has not landed")
    if path.stat().st_size == 0:
        raise RawDataError(f"empty file: {path} has no content")
    try:
        if spec.format == "csv":
            # Declared columns as text, cast below; the rest as pandas reads them.
            text = {c.name: "string" for c in spec.columns}
            df = pd.read_csv(path, dtype=text, keep_default_na=True, na_values=["NA"])
        else:
            df = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise RawDataError(f"empty file: {path} has no header and no rows") from None
    except Exception as exc:
        raise RawDataError(f"unreadable file: {path}: {type(exc).__name__}: {exc}") from None
    return spec.cast(df)


def write_raw(df: pd.DataFrame, path: Path, spec: SourceSpec) -> Path:
    """Write a landing file atomically (a reader never sees half a partition)."""
    if spec.format == "csv":
        return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
    return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))
