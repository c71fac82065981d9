"""Raw sources as they land: their columns, the rules the validation gate checks, derived columns.

A derived column is one class per way of deriving it (``concat``, ``date_from``,
``date_time``, ``offset``, ``expr``), told apart by the key its YAML uses, and each computes its own values: the feature
pipeline and the landing code (which may split files by a derived ``partition_by``) then derive alike.
pandas is imported inside ``compute`` so that loading a use case stays light.
"""

from __future__ import annotations

import ast
import codecs
import math
import operator
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator
from typing_extensions import override

from airloop.usecase.base import Duration, Spec

if TYPE_CHECKING:
    import pandas as pd

ColumnType = Literal["string", "number", "integer", "timestamp", "bool"]


WEEK_DIRECTIVES = ("%V", "%W", "%U")
WEEKDAY_DIRECTIVES = ("%u", "%w", "%a", "%A")


def parse_times(values: pd.Series, fmt: str | None = None) -> pd.Series:
    """Times as UTC datetimes, read in the strftime form ``fmt`` (None: ISO 8601); NaT where
    a value does not parse. Naive times are taken as UTC; datetimes pass as they are.

    Dates written as whole numbers (``20130301``, read as numbers) are read as their digits,
    and a week with no day (``1991 W06``, ``%G W%V``) as its first day (Monday; Sunday for
    ``%U``).
    """
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        text = values.astype("Float64").round().astype("Int64").astype("string")
    else:
        text = values.astype("string").str.strip()
    if fmt is not None:
        text = text.str.replace(r"^(\d+)\.0$", r"\1", regex=True)  # 20130301.0 from a float
        if any(d in fmt for d in WEEK_DIRECTIVES) and not any(d in fmt for d in WEEKDAY_DIRECTIVES):
            first = "0" if "%U" in fmt else "1"
            text = text + " " + first
            fmt = f"{fmt} {'%u' if '%V' in fmt else '%w'}"
    return pd.to_datetime(text, utc=True, errors="coerce", format=fmt or "ISO8601")


def check_time_format(fmt: str) -> None:
    """A ValueError naming the problem when ``fmt`` is not a form times can be read in."""
    import pandas as pd

    try:
        parse_times(pd.Series(["2000-01-01"]), fmt)
    except ValueError as exc:
        raise ValueError(f"timestamp format {fmt!r}: {exc}") from None


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


def clock_times(values: pd.Series) -> pd.Series:
    """Times of day as durations since midnight: ``10:00``, ``9:30:15``, ``24:00`` (the end of
    the day); missing where the text is not a time of day."""
    import pandas as pd

    text = values.astype("string").str.strip()
    parts = text.str.extract(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$").astype("float64")
    valid = (parts[0] <= 24) & (parts[1] < 60) & (parts[2].fillna(0) < 60)
    seconds = parts[0] * 3600 + parts[1] * 60 + parts[2].fillna(0)
    return pd.to_timedelta(seconds.where(valid), unit="s")


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


def _divide(left: Any, right: Any) -> Any:
    """Division where a zero divisor gives a missing value, not infinity or an error."""
    import pandas as pd

    if isinstance(right, pd.Series):
        return left / right.where(right != 0)
    return left / right if right != 0 else math.nan


_OPERATORS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _divide,
}
_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.USub, ast.UAdd, ast.Name, ast.Load)
_FUNCTIONS = ("min", "max")  # of two or more values, row by row; missing if any is missing


def _is_function_call(node: ast.AST) -> bool:
    """``min(a, b, ...)`` or ``max(...)``: a known name, two or more plain arguments."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and len(node.args) >= 2
        and not node.keywords
        and not any(isinstance(a, ast.Starred) for a in node.args)
    )


def _function_names(tree: ast.AST) -> set[int]:
    """The ids of the name nodes that call a function (``max`` in ``max(a, b)``), which are
    not columns."""
    return {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}


def parse_expr(text: str) -> ast.expr:
    """The expression's tree, refused unless it is arithmetic on numbers and names, with
    ``min`` and ``max`` of two or more values."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"expr {text!r} is not an arithmetic expression") from None
    functions = _function_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            ok = isinstance(node.value, int | float) and not isinstance(node.value, bool)
        else:
            ok = (
                isinstance(node, _ALLOWED)
                or type(node) in _OPERATORS
                or _is_function_call(node)
                or id(node) in functions
            )
        if not ok:
            raise ValueError(
                f"expr {text!r}: only + - * /, unary minus, parentheses, min(a, b, ...),"
                f" max(a, b, ...), numbers and column names are allowed (found"
                f" {type(node).__name__})"
            )
    return tree.body


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
        tree = parse_expr(self.expr)
        functions = _function_names(tree)
        names = (n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in functions)
        return list(dict.fromkeys(names))

    @override
    def compute(self, df: pd.DataFrame) -> pd.Series:
        import pandas as pd

        value = self._evaluate(parse_expr(self.expr), df)
        if not isinstance(value, pd.Series):  # numbers only: the same value on every row
            value = pd.Series(value, index=df.index)
        return value.astype("float64")

    def _evaluate(self, node: ast.expr, df: pd.DataFrame) -> Any:
        import pandas as pd

        if isinstance(node, ast.Constant):
            assert isinstance(node.value, int | float)  # nosec B101 # for mypy: parse_expr admits numbers only
            return float(node.value)
        if isinstance(node, ast.Name):
            return pd.to_numeric(df[node.id], errors="coerce").astype("float64")
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)  # nosec B101 # for mypy: parse_expr admits min() and max() only
            values = [self._evaluate(a, df) for a in node.args]
            columns = pd.DataFrame(
                {i: v if isinstance(v, pd.Series) else float(v) for i, v in enumerate(values)},
                index=df.index,
            )
            return columns.agg(node.func.id, axis=1, skipna=False)
        if isinstance(node, ast.UnaryOp):
            operand = self._evaluate(node.operand, df)
            return -operand if isinstance(node.op, ast.USub) else operand
        assert isinstance(node, ast.BinOp)  # nosec B101 # for mypy: parse_expr admits nothing else
        left, right = self._evaluate(node.left, df), self._evaluate(node.right, df)
        return _OPERATORS[type(node.op)](left, right)


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
