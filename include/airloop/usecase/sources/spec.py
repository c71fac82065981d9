"""A raw source as a whole: partitioned or reference, its format, its columns and derived
columns, and the checks that tie them together."""

from __future__ import annotations

import codecs
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from airloop.usecase.base import Duration, Spec
from airloop.usecase.sources.columns import CastProblem, ColumnSpec, ColumnType
from airloop.usecase.sources.derived import DerivedColumn, DerivedKind

if TYPE_CHECKING:
    import pandas as pd


class SourceSpec(Spec):
    """A raw source: partitioned by data interval, or a reference table replaced whole.

    ``available_after``: how long after its ``partition_by`` time a row is known (a month's
    figures published a month later); features never see a row before then.
    ``allow_empty_before``: intervals starting before this date may hold fewer than
    ``min_rows`` rows, even none (the years before a series begins).
    ``encoding``: the text encoding of a CSV source's files (``latin-1``, ``cp1252``); a file
    that is not valid in it is refused, naming the byte and the line.
    ``extra_columns``: what a file with columns the use case does not declare gets: ``ignore``
    (read, listed in the validation report's ``ignored_columns``) or ``refuse`` (the
    partition fails the gate, naming them).
    """

    kind: Literal["partitioned", "reference"] = "partitioned"
    format: Literal["csv", "parquet"] = "csv"
    encoding: str = "utf-8"
    extra_columns: Literal["ignore", "refuse"] = "ignore"
    partition_by: str | None = None
    available_after: Duration = Field(default="0d", validate_default=True)
    allow_empty_before: date | None = None
    columns: list[ColumnSpec] = Field(min_length=1)
    unique: list[str] | None = None
    min_rows: int = 1
    max_rows: int | None = None
    derive: list[DerivedColumn] = []

    @property
    def column_names(self) -> list[str]:
        """The declared raw columns, in order."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec | None:
        """The declared raw column called ``name``, if any."""
        return next((c for c in self.columns if c.name == name), None)

    def derived(self, name: str) -> DerivedKind | None:
        """The derived column called ``name``, if any."""
        return next((d for d in self.derive if d.name == name), None)

    def column_type(self, name: str) -> ColumnType | None:
        """The type of a declared or derived column; None when there is no such column."""
        declared = self.column(name)
        if declared is not None:
            return declared.type
        derived = self.derived(name)
        return derived.type if derived is not None else None

    def raw_inputs(self, name: str) -> list[str]:
        """The declared columns a column is built from: itself if declared, else its inputs'."""
        derived = self.derived(name)
        if derived is None:
            return [name]
        out: list[str] = []
        for column in derived.inputs():
            out += [c for c in self.raw_inputs(column) if c not in out]
        return out

    def min_rows_at(self, start: datetime) -> int:
        """The fewest rows an interval starting at ``start`` may hold (see allow_empty_before)."""
        day = (start.astimezone(UTC) if start.tzinfo else start).date()
        if self.allow_empty_before is not None and day < self.allow_empty_before:
            return 0
        return self.min_rows

    def derive_order(self) -> list[DerivedKind]:
        """The derived columns in an order that computes each after those it uses (the YAML
        may list them in any order); a column that needs itself, or an unknown one, is refused."""
        declared = set(self.column_names)
        pending = {d.name: d for d in self.derive}
        if len(pending) < len(self.derive):
            raise ValueError("a derived column is declared twice")
        for derived in self.derive:
            if derived.name in declared:
                raise ValueError(f"derived column {derived.name!r} is already a declared column")
            missing = [c for c in derived.inputs() if c not in declared and c not in pending]
            if missing:
                raise ValueError(
                    f"derived column {derived.name!r} uses {missing}, which are neither declared"
                    " nor derived columns"
                )
        ordered: list[DerivedKind] = []
        done = set(declared)
        while pending:
            ready = [d for d in pending.values() if all(c in done for c in d.inputs())]
            if not ready:
                raise ValueError(f"derived columns {sorted(pending)} are computed from each other")
            for derived in ready:
                ordered.append(derived)
                done.add(derived.name)
                del pending[derived.name]
        return ordered

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"encoding {value!r} is not a text encoding Python knows (utf-8, latin-1,"
                " cp1252, ...)"
            ) from None
        return value

    @model_validator(mode="after")
    def _check(self) -> SourceSpec:
        self.derive_order()
        if self.format != "csv" and codecs.lookup(self.encoding).name != "utf-8":
            raise ValueError("encoding is for csv sources (a Parquet file declares its own)")
        known = set(self.output_columns())
        if self.kind == "partitioned":
            if not self.partition_by:
                raise ValueError("a partitioned source needs 'partition_by' (a timestamp column)")
            if self.column_type(self.partition_by) != "timestamp":
                raise ValueError(
                    f"partition_by {self.partition_by!r} must be a timestamp column, declared"
                    " or derived with date_from, date_time or offset"
                )
        for key in self.unique or []:
            if key not in known:
                raise ValueError(f"unique key {key!r} is not a declared column")
        return self

    def cast(self, df: pd.DataFrame) -> tuple[pd.DataFrame, list[CastProblem]]:
        """The declared columns of ``df`` in their declared types (see :meth:`ColumnSpec.cast`),
        and the values that could not be cast; other columns as they are."""
        out = df.copy()
        problems: list[CastProblem] = []
        for col in self.columns:
            if col.name in out:
                out[col.name], problem = col.cast(out[col.name])
                if problem is not None:
                    problems.append(problem)
        return out, problems

    def output_columns(self) -> list[str]:
        """The columns after cleaning: the declared ones and the derived ones."""
        return self.column_names + [d.name for d in self.derive]

    def add_derived(self, df: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``df`` with the derived columns added (one may use another); raw rows as
        landed will do, so landing can split files by a derived ``partition_by``."""
        out = df.copy()
        for derived in self.derive_order():
            out[derived.name] = derived.compute(out)
        return out
