"""Judging each column: what it is for in the use case (its role) and why.

A column is an entity, the timestamp or the target because the person said so; any other is
judged from what :mod:`airloop.initiation.measures` found: the target in another form (a
leak), the time in another form (a calendar part, a counter), a measurement, a category, or
text to leave out.
"""

from __future__ import annotations

import pandas as pd

from airloop.initiation.measures import correlation, numeric
from airloop.initiation.records import ColumnType, Role

CATEGORICAL_MAX = 50  # more distinct values than this: text or an identifier, not a category
LEAK_CORRELATION = 0.98  # |correlation| with the target above this: the target in disguise
TIME_CORRELATION = 0.999  # |correlation| with the timestamp above this: the time, re-encoded
CALENDAR_AGREEMENT = 0.99  # a column that follows a calendar part on this share of rows
OUTCOME_SHARE = 0.3  # a text column that accounts for more of the target within an entity
# on its own row states the outcome (it is observed with it), not what is known before


def _identical(a: pd.Series, b: pd.Series) -> bool:
    present = b.notna()
    if present.sum() < 10:
        return False
    left, right = a[present], b[present]
    if pd.api.types.is_numeric_dtype(left) and pd.api.types.is_numeric_dtype(right):
        return bool((left.astype("float64") == right.astype("float64")).all())
    return bool((left.astype("string") == right.astype("string")).all())


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


def column_roles(
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
    raw_target = numeric(df[target])
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
            numbers = numeric(values)
            found = (correlation(numbers, raw_target), correlation(numbers, labels))
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
            to_time = correlation(numeric(values), epoch)
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
