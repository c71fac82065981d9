"""Derived columns: one class per way of deriving a column (``concat``, ``date_from``,
``date_time``, ``offset``, ``expr``), told apart by the key its YAML uses, each computing its
own values, so that the feature pipeline and the landing code (which may split files by a
derived ``partition_by``) derive alike. pandas is imported inside ``compute`` so that loading
a use case stays light.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Discriminator, Field, Tag, field_validator, model_validator
from typing_extensions import override

from airloop.usecase.base import Spec
from airloop.usecase.sources.columns import ColumnType
from airloop.usecase.sources.expr import column_names, evaluate, parse_expr
from airloop.usecase.sources.times import clock_times, parse_times

if TYPE_CHECKING:
    import pandas as pd


class DerivedKind(Spec):
    """What every derived column declares: its name; the kind says how it is computed."""

    key: ClassVar[str]  # the YAML key that picks the kind
    type: ClassVar[ColumnType]  # the type of the values it computes

    name: str

    @abstractmethod
    def inputs(self) -> list[str]:
        """The columns it is computed from."""

    @abstractmethod
    def compute(self, df: pd.DataFrame) -> pd.Series:
        """Its values for the rows of ``df`` (raw as landed, or cleaned: both work)."""


def _as_text(series: pd.Series) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series):
        return series.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if pd.api.types.is_float_dtype(series) and series.dropna().apply(float.is_integer).all():
        return series.astype("Int64").astype("string")
    return series.astype("string")


class ConcatColumn(DerivedKind):
    """Text of other columns joined, e.g. a key from several, or a route from origin and dest.

    Missing when any part is: a half-built key would match rows it should not.
    """

    key: ClassVar[str] = "concat"
    type: ClassVar[ColumnType] = "string"

    concat: list[str] = Field(min_length=1)
    sep: str = "-"

    @override
    def inputs(self) -> list[str]:
        return list(self.concat)

    @override
    def compute(self, df: pd.DataFrame) -> pd.Series:
        parts = [_as_text(df[c]) for c in self.concat]
        joined = parts[0]
        for part in parts[1:]:
            joined = joined.str.cat(part, sep=self.sep)
        return joined.astype(object).where(joined.notna(), None)


class DateParts(Spec):
    """The columns holding each part of a date; the day defaults to 1 and the hour to 0."""

    year: str
    month: str
    day: str | None = None
    hour: str | None = None


class DateFromColumn(DerivedKind):
    """A UTC timestamp assembled from parts in separate columns (year and month, say).

    A row whose parts do not make a date (month 13, a missing year) gets a missing timestamp.
    """

    key: ClassVar[str] = "date_from"
    type: ClassVar[ColumnType] = "timestamp"

    date_from: DateParts

    @override
    def inputs(self) -> list[str]:
        parts = self.date_from
        return [c for c in (parts.year, parts.month, parts.day, parts.hour) if c is not None]

    @override
    def compute(self, df: pd.DataFrame) -> pd.Series:
        import pandas as pd

        parts = self.date_from
        columns: dict[str, Any] = {}
        for part, column, default in (
            ("year", parts.year, None),
            ("month", parts.month, None),
            ("day", parts.day, 1),
            ("hour", parts.hour, 0),
        ):
            columns[part] = (
                pd.to_numeric(df[column], errors="coerce").astype("float64")
                if column is not None
                else default
            )
        frame = pd.DataFrame(columns, index=df.index)
        return pd.to_datetime(frame, errors="coerce", utc=True)


class DateTimeParts(Spec):
    """The column of the date and the column of the time of day, and the date's form."""

    date: str
    time: str
    date_format: str | None = None  # strftime form of the date, when it is not ISO 8601


class DateTimeColumn(DerivedKind):
    """A UTC timestamp from a date column and a time-of-day column (``2013-03-01`` and
    ``10:00``), as exports often split them. Missing when either does not parse."""

    key: ClassVar[str] = "date_time"
    type: ClassVar[ColumnType] = "timestamp"

    date_time: DateTimeParts

    @override
    def inputs(self) -> list[str]:
        return [self.date_time.date, self.date_time.time]

    @override
    def compute(self, df: pd.DataFrame) -> pd.Series:
        parts = self.date_time
        days = parse_times(df[parts.date], parts.date_format)
        return days.dt.floor("D") + clock_times(df[parts.time])


class OffsetParts(Spec):
    """A timestamp column and the column of how far to move it, in exactly one unit."""

    time: str
    minutes: str | None = None
    hours: str | None = None
    days: str | None = None

    @model_validator(mode="after")
    def _one_unit(self) -> OffsetParts:
        if len(self.amount()) != 1:
            raise ValueError("offset takes a time and exactly one of minutes, hours or days")
        return self

    def amount(self) -> dict[str, str]:
        """The unit and the column holding the amount."""
        units = {"minutes": self.minutes, "hours": self.hours, "days": self.days}
        return {unit: column for unit, column in units.items() if column is not None}


class OffsetColumn(DerivedKind):
    """A timestamp moved by an amount in another column: when something scheduled at ``time``
    actually happened, ``minutes`` of delay later (negative: earlier).

    Missing when the time or the amount is (a flight cancelled has no departure time).
    """

    key: ClassVar[str] = "offset"
    type: ClassVar[ColumnType] = "timestamp"

    offset: OffsetParts

    @override
    def inputs(self) -> list[str]:
        return [self.offset.time, *self.offset.amount().values()]

    @override
    def compute(self, df: pd.DataFrame) -> pd.Series:
        import pandas as pd

        [(unit, column)] = self.offset.amount().items()
        times = pd.to_datetime(df[self.offset.time], utc=True, format="ISO8601", errors="coerce")
        amount = pd.to_numeric(df[column], errors="coerce").astype("float64")
        return times + pd.to_timedelta(amount, unit=unit)


class ExprColumn(DerivedKind):
    """Arithmetic on numeric columns, e.g. ``volume / sales``: + - * /, unary minus,
    parentheses, ``min(a, b, ...)`` and ``max(a, b, ...)`` (row by row; missing when any
    value is), numbers and column names.

    Parsed with ``ast`` and evaluated node by node, never with ``eval``: a use case file must
    not be able to run code. A division by zero gives a missing value.
    """

    key: ClassVar[str] = "expr"
    type: ClassVar[ColumnType] = "number"

    expr: str

    @field_validator("expr")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_expr(value)
        return value

    @override
    def inputs(self) -> list[str]:
        return column_names(self.expr)

    @override
    def compute(self, df: pd.DataFrame) -> pd.Series:
        import pandas as pd

        value = evaluate(parse_expr(self.expr), df)
        if not isinstance(value, pd.Series):  # numbers only: the same value on every row
            value = pd.Series(value, index=df.index)
        return value.astype("float64")


_DERIVED_KINDS: tuple[type[DerivedKind], ...] = (
    ConcatColumn,
    DateFromColumn,
    DateTimeColumn,
    OffsetColumn,
    ExprColumn,
)


def _derived_kind(value: Any) -> str | None:
    if isinstance(value, DerivedKind):
        return value.key
    if isinstance(value, dict):
        keys = [k.key for k in _DERIVED_KINDS if k.key in value]
        return keys[0] if len(keys) == 1 else None
    return None


DerivedColumn = Annotated[
    Annotated[ConcatColumn, Tag("concat")]
    | Annotated[DateFromColumn, Tag("date_from")]
    | Annotated[DateTimeColumn, Tag("date_time")]
    | Annotated[OffsetColumn, Tag("offset")]
    | Annotated[ExprColumn, Tag("expr")],
    Discriminator(
        _derived_kind,
        custom_error_type="derived_kind",
        custom_error_message=(
            "a derived column takes exactly one of 'concat', 'date_from', 'date_time', 'offset'"
            " or 'expr'"
        ),
    ),
]
"""Any kind of derived column; the key its YAML uses (concat, date_from, date_time, offset,
expr) picks the class."""
