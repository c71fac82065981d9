"""What the profile says: the typed records ``airloop init`` writes to ``profile.json``.

Measuring (:mod:`airloop.initiation.measures`, :mod:`airloop.initiation.times`), judging
(:mod:`airloop.initiation.roles`, :mod:`airloop.initiation.findings`) and the page
(:mod:`airloop.initiation.page`) all read and write these, so they sit below all of them,
with :class:`InitError`, what makes a use case impossible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from airloop.core.errors import PermanentError
from airloop.core.records import Number, Record

ColumnType = Literal["string", "number", "integer", "timestamp", "bool"]
Task = Literal["classification", "regression"]
Role = Literal[
    "entity",  # what features are kept per
    "timestamp",  # when the row happened
    "time_part",  # the year, month, day or hour the time is built from
    "target",
    "measurement",  # a number reported with the target: a feature of later rows
    "categorical",  # text with few values, known at prediction time: a model input
    "text",  # text with many values, or an identifier: not used
    "leak",  # the target in another form: not used
    "time_encoding",  # the time in another form: not used
    "other_time",  # another timestamp: not used
    "constant",  # one value on every row: nothing to learn from
]


@dataclass(frozen=True)
class Cadence:
    """How a cadence cuts time: Airflow's schedule, the pandas period of one interval, the
    frequency of interval starts (weeks start on Sunday, as Airflow's @weekly does), and what
    one interval is called."""

    schedule: str
    period: str
    starts: str
    word: str


CADENCES: dict[str, Cadence] = {
    "hourly": Cadence("@hourly", "h", "h", "hour"),
    "daily": Cadence("@daily", "D", "D", "day"),
    "weekly": Cadence("@weekly", "W-SAT", "W-SUN", "week"),
    "monthly": Cadence("@monthly", "M", "MS", "month"),
}


class InitError(PermanentError, ValueError):
    """Data that cannot become a use case; the message names the file, the column and the fix."""


class Finding(Record):
    """Something a person should know about the data before trusting the proposed use case."""

    kind: str
    message: str
    column: str | None = None
    severity: Literal["info", "warning"] = "warning"


class ColumnProfile(Record):
    """One column: its type, what is missing, its range and commonest values, its role."""

    name: str
    type: ColumnType
    role: Role
    missing: int
    missing_share: float
    min: int | float | str | None = None
    max: int | float | str | None = None
    mean: Number = None
    cardinality: int
    top_values: list[tuple[str, int]] = []
    values: list[str] | None = None  # every value, for a string column with few of them
    target_correlation: Number = None
    histogram: tuple[list[float], list[int]] | None = None  # bin edges, counts
    markers: list[tuple[str, int]] = []  # text in a numeric column, read as missing
    follows: str | None = None  # the calendar part of the timestamp it follows (time_encoding)


class TimeProfile(Record):
    """How time runs through the table: where it comes from, its span, its natural cadence."""

    column: str | None  # the timestamp column, or None when built from parts
    parts: dict[str, str] = {}  # year/month/day/hour (or date/time) -> column
    format: str | None = None  # strftime form of the timestamp (or date) text, when not ISO
    first: str
    last: str
    unparseable: int
    unparseable_examples: list[str] = []
    unordered: int
    typical_gap_hours: Number = None
    cadence: str
    schedule: str


class IntervalCounts(Record):
    """Rows per interval of the cadence, over the whole span (empty intervals included)."""

    intervals: int
    empty: int
    min: int
    median: float
    max: int
    thin_until: str | None = None  # a day: intervals before it hold under half the median
    steady_min: int  # the fewest rows of an interval from ``thin_until`` (or the first) on


class TargetProfile(Record):
    """The target and the label made of it (a class for classification, the value for regression)."""

    column: str
    task: Task
    inferred_task: bool
    threshold: float | None = None
    missing: int
    missing_share: float
    labelled: int
    positive_share: Number = None
    mean: Number = None
    std: Number = None


class Point(Record):
    """One interval of the series over time (at the page's resolution)."""

    start: str
    rows: int
    labelled: int
    target: Number = None


class EntityProfile(Record):
    """The entities features are keyed by: how many, how many rows each, duplicates."""

    columns: list[str]
    count: int
    missing: int
    single_row: int
    single_row_examples: list[str] = []
    rows_median: float
    duplicate_events: int  # rows whose entity and timestamp an earlier row already had


class Relevance(Record):
    """One candidate input: its lagged value's mutual information with the target (nats), on
    the first training window's rows (see :mod:`airloop.initiation.relevance`)."""

    column: str
    lag_intervals: int
    score: float
    rows: int


class DataProfile(Record):
    """Everything ``airloop init`` learnt about the table, written to ``profile.json``."""

    file: str
    format: Literal["csv", "parquet"]
    rows: int
    columns: list[ColumnProfile]
    time: TimeProfile
    per_interval: IntervalCounts
    entity: EntityProfile
    target: TargetProfile
    over_time: list[Point]
    over_time_freq: str
    findings: list[Finding]
    relevance: list[Relevance] = []  # the measurements, best first (set by airloop init)

    def column(self, name: str) -> ColumnProfile:
        """The profile of the column called ``name``."""
        return next(c for c in self.columns if c.name == name)

    def with_role(self, *roles: Role) -> list[ColumnProfile]:
        """The columns playing any of these roles, in file order."""
        return [c for c in self.columns if c.role in roles]
