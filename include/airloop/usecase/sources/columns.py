"""A source's declared columns: their types, the rules the validation gate checks, and how
values are cast to the declared type (and what could not be)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from airloop.usecase.base import Spec
from airloop.usecase.sources.times import check_time_format, parse_times

if TYPE_CHECKING:
    import pandas as pd


ColumnType = Literal["string", "number", "integer", "timestamp", "bool"]


TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1"})
FALSE_TEXT = frozenset({"false", "f", "no", "n", "0"})


@dataclass(frozen=True)
class CastProblem:
    """Values of a column that its declared type cannot hold: how many, and a few of them."""

    column: str
    type: ColumnType
    count: int
    examples: list[str]
    format: str | None = None

    @property
    def reason(self) -> str:
        """The problem in words, with what to do about it."""
        what = {
            "number": "numbers",
            "integer": "whole numbers",
            "bool": "true/false values",
            "timestamp": f"timestamps in the form {self.format}"
            if self.format
            else "ISO 8601 timestamps",
        }.get(self.type, self.type)
        shown = ", ".join(repr(v) for v in self.examples)
        fix = (
            "; declare such markers in the column's na_values (read as missing) or replace"
            " (read as a number) in usecase.yaml, or fix the data"
            if self.type in ("number", "integer")
            else "; fix the data"
        )
        return f"column {self.column!r} has {self.count} values that are not {what} ({shown}){fix}"


class ColumnSpec(Spec):
    """A raw column and the rules the validation gate checks it against.

    A column is read with its declared type, whatever a partition's values look like (a day
    of whole numbers in a number column is still numbers): ``na_values`` are text markers read
    as missing (``n/a``, ``-``, a ``T`` for trace amounts), ``replace`` maps markers to a value
    (``{"<0.1": 0.05}``), and ``format`` is the strftime form of a timestamp column that is not
    in ISO 8601 (``%m/%d/%Y``).
    """

    name: str
    type: ColumnType
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    values: list[str] | None = None
    mostly: float = Field(default=1.0, gt=0.0, le=1.0)
    na_values: list[str] = []
    replace: dict[str, float] = {}
    format: str | None = None

    @model_validator(mode="after")
    def _check_reading(self) -> ColumnSpec:
        if self.format is not None and self.type != "timestamp":
            raise ValueError(f"column {self.name!r}: format is for timestamp columns only")
        if self.replace and self.type not in ("number", "integer"):
            raise ValueError(f"column {self.name!r}: replace is for number and integer columns")
        if self.format is not None:
            check_time_format(self.format)
        return self

    @property
    def bounds(self) -> tuple[float | None, float | None] | None:
        """The declared range, or None when the column declares neither end."""
        if self.min is None and self.max is None:
            return None
        return (self.min, self.max)

    def timestamps(self, values: pd.Series) -> pd.Series:
        """The column's values as UTC times (``format``, else ISO 8601); NaT where they do not
        parse. Naive times are taken as UTC; times already typed pass as they are."""
        return parse_times(values, self.format)

    def cast(self, values: pd.Series) -> tuple[pd.Series, CastProblem | None]:
        """The column's values in its declared type, and what could not be cast (left missing).

        Numbers are float64 (integer columns int64 when none is missing), true/false values
        bool (object when some are missing), timestamps UTC datetimes, text stripped strings.
        """
        import pandas as pd

        present = values.notna()
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            text = values.astype("string").str.strip()
            text = text.mask(text.eq("") | text.isin(self.na_values))
            present = text.notna()
        else:
            text = None
        if self.type == "string":
            if text is None:
                text = values.astype("string")
            return text.astype(object).where(text.notna(), None), None
        if self.type == "timestamp":
            out = self.timestamps(text if text is not None else values)
        elif self.type == "bool":
            out = self._bools(values if text is None else text)
        else:
            source = values if text is None else text
            if self.replace and text is not None:
                mapped = text.map(self.replace)
                source = text.where(mapped.isna(), mapped.astype("string"))
            out = pd.to_numeric(source, errors="coerce").astype("float64")
            if self.type == "integer" and out.notna().all() and (out % 1 == 0).all():
                out = out.astype("int64")
        failed = present & out.isna()
        if not failed.any():
            return out, None
        examples = list(dict.fromkeys(str(v) for v in values[failed]))[:5]
        problem = CastProblem(self.name, self.type, int(failed.sum()), examples, self.format)
        return out, problem

    @staticmethod
    def _bools(values: pd.Series) -> pd.Series:
        import pandas as pd

        if pd.api.types.is_bool_dtype(values):
            return values.astype(bool) if values.notna().all() else values.astype(object)
        lowered = values.astype("string").str.strip().str.lower()
        mapped = lowered.map(
            lambda v: True if v in TRUE_TEXT else False if v in FALSE_TEXT else None
        )
        numeric = pd.to_numeric(lowered, errors="coerce")
        mapped = mapped.where(mapped.notna(), numeric.map({1.0: True, 0.0: False}))
        out = mapped.astype(object).where(mapped.notna(), None)
        return out.astype(bool) if out.notna().all() else out
