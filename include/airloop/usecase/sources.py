"""Raw sources as they land: their columns, the rules the validation gate checks, derived keys."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from airloop.usecase.base import Spec


class ColumnSpec(Spec):
    """A raw column and the rules the validation gate checks it against."""

    name: str
    type: Literal["string", "number", "integer", "timestamp", "bool"]
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    values: list[str] | None = None
    mostly: float = Field(default=1.0, gt=0.0, le=1.0)

    @property
    def bounds(self) -> tuple[float | None, float | None] | None:
        """The declared range, or None when the column declares neither end."""
        if self.min is None and self.max is None:
            return None
        return (self.min, self.max)


class DerivedColumn(Spec):
    """A column built from others by joining their text, e.g. a route from origin and dest."""

    name: str
    concat: list[str] = Field(min_length=1)
    sep: str = "-"


class SourceSpec(Spec):
    """A raw source: partitioned by data interval, or a reference table replaced whole."""

    kind: Literal["partitioned", "reference"] = "partitioned"
    format: Literal["csv", "parquet"] = "csv"
    partition_by: str | None = None
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

    @model_validator(mode="after")
    def _check(self) -> SourceSpec:
        names = set(self.column_names)
        if self.kind == "partitioned":
            if not self.partition_by:
                raise ValueError("a partitioned source needs 'partition_by' (a timestamp column)")
            spec = self.column(self.partition_by)
            if spec is None or spec.type != "timestamp":
                raise ValueError(f"partition_by {self.partition_by!r} must be a timestamp column")
        for key in self.unique or []:
            if key not in names | {d.name for d in self.derive}:
                raise ValueError(f"unique key {key!r} is not a declared column")
        for derived in self.derive:
            missing = [c for c in derived.concat if c not in names]
            if missing:
                raise ValueError(f"derived column {derived.name!r} uses undeclared {missing}")
        return self

    def output_columns(self) -> list[str]:
        """The columns after cleaning: the declared ones and the derived ones."""
        return self.column_names + [d.name for d in self.derive]
