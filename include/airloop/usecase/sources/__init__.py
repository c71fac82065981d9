"""Raw sources as they land: their columns, the rules the validation gate checks, derived columns.

``spec`` holds a source as a whole (:class:`SourceSpec`), ``columns`` its declared columns and
how values are cast to their types, ``derived`` the kinds of derived column (one class each),
``expr`` the arithmetic of ``expr`` columns, ``times`` how times are read.
"""

from airloop.usecase.sources.columns import CastProblem, ColumnSpec, ColumnType
from airloop.usecase.sources.derived import (
    ConcatColumn,
    DateFromColumn,
    DateTimeColumn,
    DerivedColumn,
    DerivedKind,
    ExprColumn,
    OffsetColumn,
)
from airloop.usecase.sources.spec import SourceSpec
from airloop.usecase.sources.times import check_time_format, clock_times, parse_times

__all__ = [
    "CastProblem",
    "ColumnSpec",
    "ColumnType",
    "ConcatColumn",
    "DateFromColumn",
    "DateTimeColumn",
    "DerivedColumn",
    "DerivedKind",
    "ExprColumn",
    "OffsetColumn",
    "SourceSpec",
    "check_time_format",
    "clock_times",
    "parse_times",
]
