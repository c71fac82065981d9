"""Measuring the table: each column's type and figures, the target's labels, the entities,
the rows per interval and the series over time.

What is measured here is what the table holds; what a column is for (its role) and what
looks wrong are judged from it in :mod:`airloop.initiation.roles` and
:mod:`airloop.initiation.findings`.
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from airloop.initiation.records import (
    CADENCES,
    ColumnProfile,
    ColumnType,
    EntityProfile,
    InitError,
    IntervalCounts,
    Point,
    Role,
    TargetProfile,
    Task,
    TimeProfile,
)
from airloop.initiation.times import interval_range, interval_starts

VALUE_SET_MAX = 20  # a string column with at most this many values gets a value set
TOP_VALUES = 5
MAX_POINTS = 400  # points of a series over time, at most, in the page and the JSON
MARKERS_MAX = 10  # distinct text values a numeric column may hold as markers (n/a, -, T, <0.1)
MARKERS_SHARE = 0.5  # ... on fewer than this share of its present rows


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


def numeric(values: pd.Series) -> pd.Series:
    """A column as floats: what does not read as a number is missing."""
    return pd.to_numeric(values, errors="coerce").astype("float64")


def correlation(a: pd.Series, b: pd.Series) -> float | None:
    """Pearson's correlation on the rows where both are present; None with too few of them."""
    both = pd.DataFrame({"a": a, "b": b}).dropna()
    if len(both) < 10 or both["a"].nunique() < 2 or both["b"].nunique() < 2:
        return None
    value = float(np.corrcoef(both["a"], both["b"])[0, 1])
    return value if math.isfinite(value) else None


def profile_column(
    name: str,
    values: pd.Series,
    kind: ColumnType,
    role: Role,
    target_corr: float | None,
    follows: str | None = None,
) -> ColumnProfile:
    """One column's figures (missing, range, commonest values, histogram), with its role."""
    present = values.dropna()
    if kind == "integer":
        present = numeric(present).astype("int64")
    counts = present.astype("string").value_counts().head(TOP_VALUES)
    lo: int | float | str | None = None
    hi: int | float | str | None = None
    mean = None
    histogram = None
    every = None
    if kind in ("number", "integer") and len(present):
        numbers = numeric(present).dropna()
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


def entity_keys(df: pd.DataFrame, entity: list[str]) -> pd.Series:
    """One key per row from the entity columns (joined with ``_``; missing if any part is)."""
    parts = [df[c].astype("string") for c in entity]
    key = parts[0]
    for part in parts[1:]:
        key = key.str.cat(part, sep="_")
    return key


def profile_time(
    df: pd.DataFrame,
    stamps: pd.Series,
    keys: pd.Series,
    column: str | None,
    parts: dict[str, str],
    cadence: str,
    gap: timedelta | None,
) -> TimeProfile:
    """Where the time comes from, its span, what does not parse or runs backwards, the cadence."""
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


def count_per_interval(stamps: pd.Series, cadence: str) -> IntervalCounts:
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


def profile_entities(entity: list[str], keys: pd.Series, stamps: pd.Series) -> EntityProfile:
    """How many entities, how many rows each, and rows that repeat an entity's moment."""
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


def series_over_time(stamps: pd.Series, labels: pd.Series, cadence: str) -> tuple[list[Point], str]:
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
