"""How time runs through the table: the moment of each row, the form its text is written in,
the intervals of a cadence and the table's natural cadence.

``--timestamp`` names one column, the columns of year+month[+day[+hour]], or a date and a
time of day; each is read here as the use case's source will read the partitions.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd

from airloop.initiation.records import CADENCES, InitError
from airloop.usecase.sources import check_time_format, clock_times, parse_times

TIME_PARTS = ("year", "month", "day", "hour")
PART_RANGES = {"year": (1, 9999), "month": (1, 12), "day": (1, 31), "hour": (0, 23)}
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
