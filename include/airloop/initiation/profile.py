"""Profile a user's table before it becomes a use case: what each column holds, how time runs
through it, and what would make a model of it wrong.

The profile is what ``airloop init`` proposes a use case from, and what the person reads
before trusting that proposal: the findings say in plain words what looks wrong (timestamps
that do not parse, a target that is mostly missing, a column that copies the target). What
makes a use case impossible is not a finding but an :class:`InitError`, raised before anything
is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from airloop.core.errors import PermanentError
from airloop.core.records import Number, Record
from airloop.initiation.findings import Finding, plain_findings
from airloop.usecase.sources import check_time_format, clock_times, parse_times

ColumnType = Literal["string", "number", "integer", "timestamp", "bool"]
Task = Literal["classification", "regression"]
TIME_PARTS = ("year", "month", "day", "hour")
PART_RANGES = {"year": (1, 9999), "month": (1, 12), "day": (1, 31), "hour": (0, 23)}
CATEGORICAL_MAX = 50  # more distinct values than this: text or an identifier, not a category
VALUE_SET_MAX = 20  # a string column with at most this many values gets a value set
LEAK_CORRELATION = 0.98  # |correlation| with the target above this: the target in disguise
TIME_CORRELATION = 0.999  # |correlation| with the timestamp above this: the time, re-encoded
TOP_VALUES = 5
MAX_POINTS = 400  # points of a series over time, at most, in the page and the JSON

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
MARKERS_MAX = 10  # distinct text values a numeric column may hold as markers (n/a, -, T, <0.1)
MARKERS_SHARE = 0.5  # ... on fewer than this share of its present rows
CALENDAR_AGREEMENT = 0.99  # a column that follows a calendar part on this share of rows
OUTCOME_SHARE = 0.3  # a text column that accounts for more of the target within an entity
# on its own row states the outcome (it is observed with it), not what is known before
COMMON_FORMATS = (
    "%m/%d/%Y", "%d/%m/%Y", "%m/%d/%y", "%d/%m/%y", "%d.%m.%Y", "%Y/%m/%d", "%Y%m%d",
    "%d-%b-%Y", "%d %b %Y", "%b %d %Y", "%d-%m-%Y", "%m-%d-%Y",
)  # fmt: skip
COMMON_TIMES = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", "T%H:%M", "T%H:%M:%S")
PERIOD_FORMATS = (
    "%Y %b", "%b %Y", "%Y %B", "%B %Y", "%b-%y", "%Y/%m", "%m/%Y", "%YM%m", "%Y M%m",
    "%G W%V", "%G-W%V", "%GW%V",
)  # fmt: skip  # months and ISO weeks (1939 Jan, 1991 W06), read as their first day
DIGIT_FORMATS = ("%Y%m%d", "%y%m%d", "%Y%m%d%H")  # dates written as whole numbers


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


# -- reading ----------------------------------------------------------------------------------


def read_table(path: Path) -> tuple[pd.DataFrame, Literal["csv", "parquet"]]:
    """The user's file as a frame, read as the landing zone will read its partitions."""
    if not path.is_file():
        raise InitError(f"{path}: no such file (give --data a CSV or parquet file)")
    name = path.name.lower()
    fmt: Literal["csv", "parquet"]
    if name.endswith((".parquet", ".pq")):
        fmt = "parquet"
    elif ".csv" in path.suffixes or name.endswith(".csv"):
        fmt = "csv"
    else:
        raise InitError(f"{path}: expected a .csv (optionally compressed) or .parquet file")
    try:
        if fmt == "csv":
            df = pd.read_csv(path, na_values=["NA"], low_memory=False)
        else:
            df = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise InitError(f"{path}: the file is empty (no header, no rows)") from None
    except Exception as exc:
        raise InitError(f"{path}: cannot be read as {fmt}: {type(exc).__name__}: {exc}") from None
    if df.empty:
        raise InitError(f"{path}: the file has a header but no rows")
    df.columns = [str(c) for c in df.columns]
    return df, fmt


def parse_timestamp_option(text: str, columns: list[str]) -> tuple[str | None, dict[str, str]]:
    """``--timestamp``: one column, ``year+month[+day[+hour]]`` column names in that order, or
    ``date+time`` (told apart from year+month by the values, in :func:`time_parts`)."""
    if text in columns or "+" not in text:
        return text, {}
    names = [p.strip() for p in text.split("+")]
    if not 2 <= len(names) <= 4 or not all(names):
        raise InitError(
            f"--timestamp {text!r}: give one column, or the columns of year+month, "
            "year+month+day, year+month+day+hour, or a date and a time of day, joined by '+'"
        )
    return None, dict(zip(TIME_PARTS, names, strict=False))


def time_parts(df: pd.DataFrame, parts: dict[str, str]) -> dict[str, str]:
    """Two columns are a date and a time of day (``2013-03-01`` and ``10:00``) when the first
    does not hold year numbers; otherwise the parts as given."""
    if len(parts) != 2:
        return parts
    first = df[parts["year"]].dropna()
    years = pd.to_numeric(first, errors="coerce")
    if len(first) and years.notna().mean() >= 0.5:
        return parts
    return {"date": parts["year"], "time": parts["month"]}


def require_columns(df: pd.DataFrame, path: Path, named: dict[str, list[str]]) -> None:
    """Every column an option names exists; the error names the option and lists the columns."""
    for option, columns in named.items():
        for column in columns:
            if column not in df.columns:
                raise InitError(
                    f"{path}: no column {column!r} (given to {option}); "
                    f"the file's columns are: {', '.join(df.columns)}"
                )


# -- time -------------------------------------------------------------------------------------


def event_times(
    df: pd.DataFrame,
    path: Path,
    column: str | None,
    parts: dict[str, str],
    fmt: str | None = None,
) -> tuple[pd.Series, str | None]:
    """Each row's moment in UTC (NaT where it does not parse), and the strftime form its text
    was read with (None: ISO 8601); refuses a column that is not time.

    Naive times are taken as UTC. Text in ISO 8601 is read as such; text in a common other
    form (``03/01/2013``) is read in that form when only one fits (``fmt`` chooses it), and
    the use case declares it, so partitions are read alike.
    """
    if column is not None:
        stamps, fmt = _from_column(df, path, column, fmt)
    elif "date" in parts:
        stamps, fmt = _from_date_and_time(df, path, parts, fmt)
    else:
        stamps = _from_parts(df, path, parts)
    if stamps.notna().sum() < 0.5 * len(df):
        what = column or "+".join(parts.values())
        raise InitError(
            f"{path}: --timestamp {what}: only {int(stamps.notna().sum())} of {len(df)} rows "
            "have a timestamp that parses; give a column of dates or times"
            + (f" (read with --timestamp-format {fmt})" if fmt else "")
        )
    return stamps, fmt


def _parse(text: pd.Series, fmt: str | None) -> pd.Series:
    return parse_times(text, fmt)


def text_format(
    text: pd.Series,
    path: Path,
    column: str,
    fmt: str | None,
    candidates: list[str] | None = None,
) -> str | None:
    """The form the text of a time column is written in: None for ISO 8601, ``fmt`` when
    given (and it fits), else the one common form (of ``candidates``) that reads (nearly)
    every value."""
    present = text.dropna()
    if fmt is not None:
        try:
            check_time_format(fmt)
        except ValueError as exc:
            raise InitError(f"--timestamp-format: {exc}") from None
        if _parse(present, fmt).notna().mean() < 0.5:
            example = present.iloc[0] if len(present) else ""
            raise InitError(
                f"{path}: column {column!r} does not read with --timestamp-format {fmt!r} "
                f"(e.g. {example!r}); give the strftime form of its values, like %d/%m/%Y %H:%M"
            )
        return fmt
    if candidates is None and _parse(present, None).notna().mean() >= 0.5:
        return None
    sample = present.head(5000)
    if candidates is None:
        candidates = [d + c for d in COMMON_FORMATS for c in COMMON_TIMES] + list(PERIOD_FORMATS)
    fits = []
    for form in candidates:
        parsed = _parse(sample, form)
        if parsed.notna().mean() >= 0.99:
            fits.append((form, parsed))
    distinct = {f: t for f, t in fits if not any(t.equals(u) for g, u in fits if g < f)}
    example = present.iloc[0] if len(present) else ""
    if len(distinct) == 1:
        return next(iter(distinct))
    if len(distinct) > 1:
        raise InitError(
            f"{path}: column {column!r} holds times written like {example!r}, which read "
            f"differently as {' or '.join(sorted(distinct))}: choose with --timestamp-format"
        )
    raise InitError(
        f"{path}: column {column!r} (given to --timestamp) does not parse as timestamps "
        f"(e.g. {example!r}): give a column of dates or times in ISO 8601 (2013-03-01 or "
        "2013-03-01T10:00:00), or their strftime form with --timestamp-format"
    )


def _from_column(
    df: pd.DataFrame, path: Path, column: str, fmt: str | None
) -> tuple[pd.Series, str | None]:
    values = df[column]
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values)
        utc = stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps.dt.tz_convert("UTC")
        return utc, None
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce").dropna()
        if fmt is None and (numbers.empty or not (numbers % 1 == 0).all()):
            sample = ", ".join(str(v) for v in values.dropna().head(3))
            raise InitError(
                f"{path}: column {column!r} (given to --timestamp) holds numbers ({sample}), "
                "not timestamps: give a column of dates or times in ISO 8601, or the columns "
                "of the year, month (and day, hour) as --timestamp year+month[+day[+hour]]"
            )
        text = values.astype("Float64").round().astype("Int64").astype("string")
        fmt = text_format(text, path, column, fmt, None if fmt else list(DIGIT_FORMATS))
        return _parse(text, fmt), fmt
    text = values.astype("string").str.strip()
    if not text.notna().any():
        raise InitError(f"{path}: column {column!r} (given to --timestamp) has no values")
    fmt = text_format(text, path, column, fmt)
    return _parse(text, fmt), fmt


def _from_date_and_time(
    df: pd.DataFrame, path: Path, parts: dict[str, str], fmt: str | None
) -> tuple[pd.Series, str | None]:
    """A date column and a time-of-day column (``10:00``, ``9:30:00``; ``24:00`` is the end
    of the day), read as :class:`airloop.usecase.sources.DateTimeColumn` reads them."""
    date_text = df[parts["date"]].astype("string").str.strip()
    fmt = text_format(date_text, path, parts["date"], fmt)
    clock = clock_times(df[parts["time"]])
    present = df[parts["time"]].notna()
    if present.any() and clock[present].isna().mean() > 0.5:
        example = df.loc[present, parts["time"]].iloc[0]
        raise InitError(
            f"{path}: column {parts['time']!r} (the time of --timestamp "
            f"{parts['date']}+{parts['time']}) holds {example!r}, not a time of day like 10:00"
        )
    return _parse(date_text, fmt) + clock, fmt


def _from_parts(df: pd.DataFrame, path: Path, parts: dict[str, str]) -> pd.Series:
    fields = {}
    for part, column in parts.items():
        raw = df[column]
        values = pd.to_numeric(raw, errors="coerce")
        if values.notna().sum() < 0.5 * raw.notna().sum() or not values.notna().any():
            sample = ", ".join(repr(v) for v in raw.dropna().head(3))
            raise InitError(
                f"{path}: column {column!r} (the {part} of --timestamp) holds {sample}, "
                f"not {part} numbers"
            )
        whole = values.dropna() % 1 == 0
        if not whole.all():
            example = values.dropna()[~whole].iloc[0]
            raise InitError(
                f"{path}: column {column!r} (the {part} of --timestamp) holds {example}, "
                f"not a whole {part} number"
            )
        lo, hi = PART_RANGES[part]
        fields[part] = values.where(values.between(lo, hi))
    fields.setdefault("day", pd.Series(1, index=df.index))
    return pd.to_datetime(pd.DataFrame(fields), errors="coerce", utc=True)


def interval_starts(stamps: pd.Series, cadence: str) -> pd.Series:
    """The start of the interval of the cadence that holds each moment (UTC)."""
    naive = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    period = CADENCES[cadence].period
    if cadence in ("weekly", "monthly"):
        starts = naive.dt.to_period(period).dt.start_time
    else:
        starts = naive.dt.floor(period)
    return starts.dt.tz_localize("UTC")


def interval_range(first: pd.Timestamp, last: pd.Timestamp, cadence: str) -> pd.DatetimeIndex:
    """Every interval start from the one holding ``first`` to the one holding ``last``."""
    bounds = interval_starts(pd.Series([first, last]), cadence)
    return pd.date_range(bounds.iloc[0], bounds.iloc[1], freq=CADENCES[cadence].starts)


def detect_cadence(stamps: pd.Series, keys: pd.Series) -> tuple[str, timedelta | None]:
    """The natural cadence: from the typical (median) gap between an entity's consecutive
    timestamps; between any two distinct timestamps when no entity has two."""
    frame = pd.DataFrame({"key": keys, "ts": stamps}).dropna().drop_duplicates()
    gaps = frame.sort_values(["key", "ts"]).groupby("key")["ts"].diff().dropna()
    if gaps.empty:
        gaps = frame["ts"].drop_duplicates().sort_values().diff().dropna()
    gaps = gaps[gaps > pd.Timedelta(0)]
    if gaps.empty:
        return "daily", None
    typical = gaps.median().to_pytimedelta()
    if typical < timedelta(hours=12):
        return "hourly", typical
    if typical < timedelta(days=3.5):
        return "daily", typical
    if typical < timedelta(days=15):
        return "weekly", typical
    return "monthly", typical


# -- columns ----------------------------------------------------------------------------------


def column_type(values: pd.Series) -> ColumnType:
    """The use case's type for a column: what the validation gate will check it against."""
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "timestamp"
    if pd.api.types.is_integer_dtype(values):
        return "integer"
    if pd.api.types.is_float_dtype(values):
        present = values.dropna()
        return "integer" if len(present) and bool((present % 1 == 0).all()) else "number"
    present = values.dropna()
    if len(present) and set(present.unique()) <= {True, False}:
        return "bool"
    if len(present) and present.map(type).eq(str).all():
        text = present.astype(str)
        looks_like_time = text.str.match(r"^\d{4}-\d{2}-\d{2}").all()
        if looks_like_time:
            parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
            if parsed.notna().all():
                return "timestamp"
    return "string"


def text_markers(values: pd.Series) -> list[tuple[str, int]]:
    """The text values of a column of numbers (``n/a``, ``-``, ``T`` for a trace, ``<0.1``),
    with their counts: none unless most of its values are numbers and the rest are a few
    distinct markers."""
    if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
        return []
    text = values.dropna().astype("string").str.strip()
    text = text[text != ""]
    numbers = pd.to_numeric(text, errors="coerce")
    other = text[numbers.isna()]
    if (
        other.empty
        or numbers.notna().sum() < 10
        or len(other) >= MARKERS_SHARE * len(text)
        or other.nunique() > MARKERS_MAX
    ):
        return []
    return [(str(v), int(c)) for v, c in other.value_counts().items()]


def _numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _correlation(a: pd.Series, b: pd.Series) -> float | None:
    both = pd.DataFrame({"a": a, "b": b}).dropna()
    if len(both) < 10 or both["a"].nunique() < 2 or both["b"].nunique() < 2:
        return None
    value = float(np.corrcoef(both["a"], both["b"])[0, 1])
    return value if math.isfinite(value) else None


def _identical(a: pd.Series, b: pd.Series) -> bool:
    present = b.notna()
    if present.sum() < 10:
        return False
    left, right = a[present], b[present]
    if pd.api.types.is_numeric_dtype(left) and pd.api.types.is_numeric_dtype(right):
        return bool((left.astype("float64") == right.astype("float64")).all())
    return bool((left.astype("string") == right.astype("string")).all())


def _column_profile(
    name: str,
    values: pd.Series,
    kind: ColumnType,
    role: Role,
    target_corr: float | None,
    follows: str | None = None,
) -> ColumnProfile:
    present = values.dropna()
    if kind == "integer":
        present = _numeric(present).astype("int64")
    counts = present.astype("string").value_counts().head(TOP_VALUES)
    lo: int | float | str | None = None
    hi: int | float | str | None = None
    mean = None
    histogram = None
    every = None
    if kind in ("number", "integer") and len(present):
        numbers = _numeric(present).dropna()
        lo, hi, mean = numbers.min(), numbers.max(), float(numbers.mean())
        if kind == "integer":
            lo, hi = int(lo), int(hi)
        else:
            lo, hi = float(lo), float(hi)
        if numbers.nunique() > 1:
            counts_, edges = np.histogram(numbers, bins=min(20, int(numbers.nunique())))
            histogram = ([float(e) for e in edges], [int(c) for c in counts_])
    elif kind == "timestamp" and len(present):
        if not pd.api.types.is_datetime64_any_dtype(present):
            present = pd.to_datetime(
                present.astype("string"), utc=True, errors="coerce", format="ISO8601"
            ).dropna()
        if len(present):
            lo, hi = present.min().isoformat(), present.max().isoformat()
    elif kind == "string" and len(present):
        text = present.astype("string")
        lo, hi = str(text.min()), str(text.max())
        if text.nunique() <= VALUE_SET_MAX:
            every = sorted(str(v) for v in text.unique())
    return ColumnProfile(
        name=name,
        type=kind,
        role=role,
        missing=int(values.isna().sum()),
        missing_share=float(values.isna().mean()),
        min=lo,
        max=hi,
        mean=mean,
        cardinality=int(present.nunique()),
        top_values=[(str(v), int(c)) for v, c in counts.items()],
        values=every,
        target_correlation=target_corr,
        histogram=histogram,
        follows=follows,
    )


# -- the target -------------------------------------------------------------------------------


def target_labels(
    df: pd.DataFrame, path: Path, target: str, task: Task | None, threshold: float | None
) -> tuple[TargetProfile, pd.Series]:
    """The label each row gives (NaN where the target is missing) and what the target is.

    Classification learns ``target > threshold`` (the engine's label), so the target must be
    a number or true/false; the task is inferred when not given.
    """
    values = df[target]
    present = values.notna()
    if not present.any():
        raise InitError(f"{path}: target {target!r} has no values: every row is missing it")
    is_bool = column_type(values) == "bool"
    numbers = values.astype("float64") if is_bool else pd.to_numeric(values, errors="coerce")
    if numbers[present].isna().mean() > 0.5:
        sample = ", ".join(repr(v) for v in values.dropna().unique()[:3])
        raise InitError(
            f"{path}: target {target!r} holds text ({sample}); airloop learns a number "
            "(regression) or a class made of a number (classification): recode it as 0/1, "
            "1 for the outcome to predict, and run again"
        )
    distinct = numbers.dropna().unique()
    inferred = task is None
    if task is None:
        task = (
            "classification"
            if threshold is not None or is_bool or len(distinct) <= 2
            else "regression"
        )
    if task == "regression":
        if threshold is not None:
            raise InitError("--threshold makes a class of a number: it needs --task classification")
        if is_bool:
            raise InitError(f"{path}: target {target!r} is true/false: use --task classification")
        if len(distinct) < 2:
            raise InitError(
                f"{path}: target {target!r} has one value only ({distinct[0]:g}): "
                "there is nothing to learn"
            )
        labels = numbers
    else:
        if threshold is None:
            if len(distinct) > 2:
                raise InitError(
                    f"{path}: target {target!r} has {len(distinct)} distinct values: give "
                    f"--threshold X (the class is {target} > X), or --task regression"
                )
            threshold = float(min(distinct)) if len(distinct) == 2 else 0.0
        labels = (numbers > threshold).astype("float64").where(numbers.notna())
        if labels.dropna().nunique() < 2:
            side = "above" if labels.dropna().iloc[0] == 1 else "at or below"
            raise InitError(
                f"{path}: target {target!r} has one class only: every labelled row is {side} "
                f"{threshold:g}; a classifier needs both (choose another --threshold)"
            )
    labelled = labels.notna()
    profile = TargetProfile(
        column=target,
        task=task,
        inferred_task=inferred,
        threshold=threshold if task == "classification" else None,
        missing=int((~labelled).sum()),
        missing_share=float((~labelled).mean()),
        labelled=int(labelled.sum()),
        positive_share=float(labels.mean()) if task == "classification" else None,
        mean=float(labels.mean()),
        std=float(labels.std()),
    )
    return profile, labels


# -- the whole profile ------------------------------------------------------------------------


def profile_data(
    df: pd.DataFrame,
    path: Path,
    fmt: Literal["csv", "parquet"],
    entity: list[str],
    timestamp: str,
    target: str,
    task: Task | None = None,
    threshold: float | None = None,
    timestamp_format: str | None = None,
) -> DataProfile:
    """Profile the table for a use case keyed by ``entity``, timed by ``timestamp``, predicting
    ``target``; raise :class:`InitError` when no use case can be made of it."""
    column, parts = parse_timestamp_option(timestamp, list(df.columns))
    time_columns = [column] if column else list(parts.values())
    require_columns(
        df, path, {"--entity": entity, "--timestamp": time_columns, "--target": [target]}
    )
    if target in entity or target in time_columns:
        raise InitError(f"--target {target!r} is also given as an entity or the timestamp")
    parts = time_parts(df, parts)
    stamps, time_format = event_times(df, path, column, parts, timestamp_format)
    markers = {name: found for name in df.columns if (found := text_markers(df[name]))}
    df = df.assign(**{name: _numeric(df[name]) for name in markers if name not in time_columns})
    target_profile, labels = target_labels(df, path, target, task, threshold)
    keys = entity_keys(df, entity)
    cadence, gap = detect_cadence(stamps, keys)
    types = {name: column_type(df[name]) for name in df.columns}
    if column is not None:
        types[column] = "timestamp"
    roles = _roles(df, types, entity, column, parts, target, stamps, labels, keys)
    over_time, freq = _over_time(stamps, labels, cadence)
    columns = [
        _column_profile(name, df[name], types[name], *roles[name]).model_copy(
            update={"markers": markers.get(name, [])}
        )
        for name in df.columns
    ]
    profile = DataProfile(
        file=str(path),
        format=fmt,
        rows=len(df),
        columns=columns,
        time=_time_profile(df, stamps, keys, column, parts, cadence, gap).model_copy(
            update={"format": time_format}
        ),
        per_interval=_interval_counts(stamps, cadence),
        entity=_entity_profile(entity, keys, stamps),
        target=target_profile,
        over_time=over_time,
        over_time_freq=freq,
        findings=[],
    )
    return profile.model_copy(update={"findings": plain_findings(profile)})


def entity_keys(df: pd.DataFrame, entity: list[str]) -> pd.Series:
    """One key per row from the entity columns (joined with ``_``; missing if any part is)."""
    parts = [df[c].astype("string") for c in entity]
    key = parts[0]
    for part in parts[1:]:
        key = key.str.cat(part, sep="_")
    return key


def calendar_parts(stamps: pd.Series) -> dict[str, pd.Series]:
    """The calendar parts of each moment a column might restate."""
    times = stamps.dt.tz_convert("UTC")
    return {
        "year": times.dt.year,
        "quarter": times.dt.quarter,
        "month": times.dt.month,
        "week of the year": times.dt.isocalendar().week.astype("float64"),
        "day of the year": times.dt.dayofyear,
        "day of the month": times.dt.day,
        "day of the week": times.dt.dayofweek,
        "hour": times.dt.hour,
        "_day": times.dt.floor("D"),  # not a part: what tells whether a part recurs
    }


def follows_calendar(values: pd.Series, parts: dict[str, pd.Series]) -> str | None:
    """The calendar part a column is a function of (a ``month`` column, a ``weekday`` name, a
    ``season``), or None. Only a part whose values each recur on three days or more can show
    it: in a year of hourly rows, a daily figure is a function of the day of the year, and
    is still a measurement."""
    present = values.notna()
    if present.sum() < 10 or values[present].nunique() < 2:
        return None
    text = values.astype("string")
    days = parts["_day"]
    for name, part in parts.items():
        if name == "_day":
            continue
        frame = pd.DataFrame({"part": part, "value": text, "day": days})[present].dropna()
        if frame.groupby("part")["day"].nunique().median() < 3:
            continue
        agrees = frame.groupby(["part", "value"]).size().groupby(level=0).max().sum()
        if agrees >= CALENDAR_AGREEMENT * len(frame):
            return name
    return None


def explains_within_entity(values: pd.Series, keys: pd.Series, labels: pd.Series) -> float:
    """The share of the label's variation within each entity that a text column's values
    account for on the same row (the correlation ratio of the label's deviations from its
    entity's mean): near 1, the column states the outcome (a day's weather events and its
    rain); near 0, it is an attribute or unrelated to it."""
    text = values.astype("string").fillna("(missing)")  # no event is a value too
    frame = pd.DataFrame({"value": text, "key": keys, "y": labels}).dropna()
    if len(frame) < 30 or frame["value"].nunique() < 2:
        return 0.0
    frame["y"] = frame["y"] - frame.groupby("key")["y"].transform("mean")
    total = float((frame["y"] ** 2).sum())
    if total <= 0:
        return 0.0
    means = frame.groupby("value")["y"].agg(["mean", "size"])
    return float((means["mean"] ** 2 * means["size"]).sum() / total)


def is_counter(values: pd.Series, keys: pd.Series, stamps: pd.Series) -> bool:
    """A row number or a counter: whole numbers, each a different one (``rownames``), or
    rising by one from row to row of each entity in time order (``t``). An identifier, not a
    measurement."""
    numbers = pd.to_numeric(values, errors="coerce")
    present = numbers.dropna()
    if len(present) < 20 or not (present % 1 == 0).all():
        return False
    if present.nunique() == len(values):
        return True
    frame = pd.DataFrame({"key": keys, "ts": stamps, "n": numbers}).dropna()
    steps = frame.sort_values(["key", "ts"]).groupby("key")["n"].diff().dropna()
    return len(steps) >= 20 and bool((steps == 1).mean() >= CALENDAR_AGREEMENT)


def _roles(
    df: pd.DataFrame,
    types: dict[str, ColumnType],
    entity: list[str],
    column: str | None,
    parts: dict[str, str],
    target: str,
    stamps: pd.Series,
    labels: pd.Series,
    keys: pd.Series,
) -> dict[str, tuple[Role, float | None, str | None]]:
    """Each column's role in the use case, its correlation with the target (or the label
    made of it, whichever is stronger), and the calendar part it restates, if any."""
    epoch = (stamps - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    raw_target = _numeric(df[target])
    named: dict[str, Role] = {
        **{c: "time_part" for c in parts.values()},
        **({column: "timestamp"} if column else {}),
        **{c: "entity" for c in entity},
        target: "target",
    }
    calendar = calendar_parts(stamps)
    roles: dict[str, tuple[Role, float | None, str | None]] = {}
    for name in df.columns:
        values, kind = df[name], types[name]
        corr = None
        follows = None
        if kind in ("number", "integer") and name != target:
            numbers = _numeric(values)
            found = (_correlation(numbers, raw_target), _correlation(numbers, labels))
            corr = max((c for c in found if c is not None), key=abs, default=None)
        role: Role
        if name in named:
            role = named[name]
        elif values.nunique(dropna=False) < 2:  # present or missing: two values tell something
            role = "constant"
        elif _identical(values, df[target]) or (corr is not None and abs(corr) > LEAK_CORRELATION):
            role = "leak"
        elif kind in ("number", "integer", "string", "bool") and (
            follows := follows_calendar(values, calendar)
        ):
            role = "time_encoding"
        elif kind == "integer" and is_counter(values, keys, stamps):
            role = "text"  # an identifier: reported with the text and identifiers
        elif kind in ("number", "integer"):
            to_time = _correlation(_numeric(values), epoch)
            role = "time_encoding" if to_time and abs(to_time) > TIME_CORRELATION else "measurement"
        elif kind in ("string", "bool") and values.nunique() > CATEGORICAL_MAX:
            role = "text"
        elif (
            kind in ("string", "bool")
            and (told := explains_within_entity(values, keys, labels)) > OUTCOME_SHARE
        ):
            role, corr = "leak", told
        elif kind in ("string", "bool"):
            role = "categorical"
        else:
            role = "other_time"
        roles[name] = (role, corr, follows)
    return roles


def _time_profile(
    df: pd.DataFrame,
    stamps: pd.Series,
    keys: pd.Series,
    column: str | None,
    parts: dict[str, str],
    cadence: str,
    gap: timedelta | None,
) -> TimeProfile:
    frame = pd.DataFrame({"key": keys, "ts": stamps})
    backwards = frame.groupby("key", dropna=False)["ts"].diff() < pd.Timedelta(0)
    sources = [column] if column else list(parts.values())
    bad = df.loc[stamps.isna(), sources].head(3).astype("string").fillna("(missing)")
    return TimeProfile(
        unparseable_examples=[" ".join(row) for row in bad.itertuples(index=False)],
        column=column,
        parts=parts,
        first=stamps.min().isoformat(),
        last=stamps.max().isoformat(),
        unparseable=int(stamps.isna().sum()),
        unordered=int(backwards.sum()),
        typical_gap_hours=gap.total_seconds() / 3600 if gap is not None else None,
        cadence=cadence,
        schedule=CADENCES[cadence].schedule,
    )


def _interval_counts(stamps: pd.Series, cadence: str) -> IntervalCounts:
    """Rows per interval, empty ones included, and where a thin start of the data ends.

    A thin start (a series whose first years hold few rows) ends on the day from which every
    interval holds at least half the median; there is none when thin or empty intervals come
    later too (nights, weekends), since the gate must then accept them anyway.
    """
    starts = interval_starts(stamps.dropna(), cadence)
    every = interval_range(stamps.min(), stamps.max(), cadence)
    per = starts.value_counts().reindex(every, fill_value=0).sort_index()
    median = float(per[per > 0].median())
    thin = per < 0.5 * median
    thin_until = None
    if thin.iloc[0] and not thin.all():
        day = per.index[(~thin).argmax()].ceil("D")  # allow_empty_before is a day
        if not thin[per.index >= day].any():
            thin_until = day
    steady = per[per.index >= thin_until] if thin_until is not None else per
    return IntervalCounts(
        intervals=len(per),
        empty=int((per == 0).sum()),
        min=int(per.min()),
        median=median,
        max=int(per.max()),
        thin_until=thin_until.date().isoformat() if thin_until is not None else None,
        steady_min=int(steady.min()),
    )


def _entity_profile(entity: list[str], keys: pd.Series, stamps: pd.Series) -> EntityProfile:
    per_entity = keys.value_counts()
    alone = per_entity[per_entity == 1]
    duplicated = pd.DataFrame({"key": keys, "ts": stamps}).dropna().duplicated().sum()
    return EntityProfile(
        columns=entity,
        count=len(per_entity),
        missing=int(keys.isna().sum()),
        single_row=len(alone),
        single_row_examples=[str(k) for k in alone.index[:3]],
        rows_median=float(per_entity.median()) if len(per_entity) else 0.0,
        duplicate_events=int(duplicated),
    )


def _over_time(stamps: pd.Series, labels: pd.Series, cadence: str) -> tuple[list[Point], str]:
    """Rows and the target per interval, coarsened until the series fits on a page."""
    order = list(CADENCES)
    freq = cadence
    for name in order[order.index(cadence) :]:
        freq = name
        span = interval_range(stamps.min(), stamps.max(), name)
        if len(span) <= MAX_POINTS:
            break
    frame = pd.DataFrame({"start": interval_starts(stamps, freq), "label": labels}).dropna(
        subset=["start"]
    )
    grouped = frame.groupby("start")["label"]
    table = pd.DataFrame(
        {"rows": grouped.size(), "labelled": grouped.count(), "mean": grouped.mean()}
    )
    table = table.reindex(interval_range(stamps.min(), stamps.max(), freq))
    points = [
        Point(
            start=start.isoformat(),
            rows=int(row["rows"]) if pd.notna(row["rows"]) else 0,
            labelled=int(row["labelled"]) if pd.notna(row["labelled"]) else 0,
            target=row["mean"],
        )
        for start, row in table.iterrows()
    ]
    return points, freq
