"""Choosing the proposal's defaults: what ``airloop init`` was asked for, and the names and
sizes that follow from the profile (the cadence's rhythm, the label delay, the derived
timestamp and keys, the measurements ranked by relevance, the training window's length).

Decided once here, they are what :mod:`airloop.initiation.proposal` writes the use case from.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.core.periods import Span
from airloop.initiation.measures import entity_keys, target_labels
from airloop.initiation.records import CADENCES, DataProfile, InitError, Relevance, Task
from airloop.initiation.relevance import rank_measurements
from airloop.initiation.times import event_times, interval_starts

TRAINING_ROWS = 1500  # what a first training window should hold, when the data allows


@dataclass(frozen=True)
class Rhythm:
    """What follows from a cadence, counted in its intervals."""

    step: Span  # one interval
    windows: tuple[int, ...]  # of the aggregates and the label rates, shortest first
    season: int  # the seasonal lag: a year of monthly data, a week of daily data
    min_training: int  # the fewest intervals a training window should span
    nice: int  # training windows are rounded up to a multiple of this
    lookback: int  # the history the transform example reads
    monitoring_max: int  # the most intervals a monitoring window spans
    cooldown: int  # intervals after a retrain request in which breaches wait
    budget_window: Span  # at most four retrain requests in this long
    retrain: str  # the scheduled retraining
    calendar: tuple[str, ...]  # the calendar features of the event time


RHYTHMS: dict[str, Rhythm] = {
    "hourly": Rhythm(
        step=Span.of(hours=1), windows=(6, 24, 168), season=24, min_training=168, nice=24,
        lookback=336, monitoring_max=24, cooldown=24, budget_window=Span.of(days=7),
        retrain="@daily", calendar=("hour", "day_of_week", "is_weekend", "month"),
    ),
    "daily": Rhythm(
        step=Span.of(days=1), windows=(3, 7, 28), season=7, min_training=28, nice=7,
        lookback=56, monitoring_max=7, cooldown=7, budget_window=Span.of(days=30),
        retrain="@weekly", calendar=("day_of_week", "is_weekend", "day_of_year", "month"),
    ),
    "weekly": Rhythm(
        step=Span.of(weeks=1), windows=(2, 4, 13), season=52, min_training=26, nice=4,
        lookback=26, monitoring_max=4, cooldown=4, budget_window=Span.of(weeks=13),
        retrain="@monthly", calendar=("week_of_year", "month", "quarter"),
    ),
    "monthly": Rhythm(
        step=Span.of(months=1), windows=(3, 6, 12), season=12, min_training=24, nice=12,
        lookback=24, monitoring_max=3, cooldown=3, budget_window=Span.of(months=12),
        retrain="@monthly", calendar=("month", "quarter"),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class InitOptions:
    """What ``airloop init`` was asked for."""

    name: str
    data: Path
    entity: list[str]
    timestamp: str
    target: str
    task: Task | None = None
    label_delay: str | None = None
    threshold: float | None = None
    timestamp_format: str | None = None  # strftime form of a timestamp not in ISO 8601
    into: Path | None = None
    force: bool = False

    @property
    def folder(self) -> Path:
        """Where the use case goes: ``--into``, else ``./NAME``."""
        return (self.into or Path(self.name)).expanduser().absolute()


@dataclass(frozen=True)
class Plan:
    """The names and sizes of the proposal, decided once from the profile and the options."""

    name: str
    source: str
    cadence: str
    rhythm: Rhythm
    delay: Span
    delay_intervals: int
    timestamp: str  # the events' timestamp: the given column, or one derived from its parts
    event_id: str
    entity_key: str  # the entities' join key: the entity column, or one derived from several
    categoricals: list[str]  # request fields besides the entity columns
    measurements: list[str]  # numeric columns reported with the target: features, not inputs
    label_name: str
    trend_function: str
    trend_feature: str
    training_intervals: int
    derive: list[dict[str, Any]] = field(default_factory=list)


def make_plan(profile: DataProfile, options: InitOptions) -> Plan:
    """Names and sizes of the proposal: what is derived, what is a feature, how long to train."""
    cadence = profile.time.cadence
    rhythm = RHYTHMS[cadence]
    delay = _label_delay(options.label_delay, rhythm)
    columns = {c.name for c in profile.columns}
    derive: list[dict[str, Any]] = []
    timestamp = profile.time.column
    parts = profile.time.parts
    if timestamp is None and "date" in parts:
        timestamp = _free_name(columns, "timestamp", "event_time", "moment")
        both: dict[str, Any] = {"date": parts["date"], "time": parts["time"]}
        if profile.time.format:
            both["date_format"] = profile.time.format
        derive.append({"name": timestamp, "date_time": both})
    elif timestamp is None:
        timestamp = _free_name(columns, "date", "period", "period_start")
        derive.append({"name": timestamp, "date_from": dict(parts)})
    entity = profile.entity.columns
    entity_key = entity[0]
    if len(entity) > 1:
        entity_key = _free_name(columns, "_".join(entity))
        derive.append({"name": entity_key, "concat": list(entity), "sep": "_"})
    event_id = _free_name(
        columns | {timestamp}, f"{'_'.join(entity)}_{CADENCES[cadence].word}", "event_id"
    )
    derive.append({"name": event_id, "concat": [*entity, timestamp], "sep": "_"})
    target = profile.target.column
    measurements = sorted(profile.with_role("measurement"), key=lambda c: c.missing_share)
    label_name = target  # a class of a number is named by its threshold: price_over_130
    threshold, column = profile.target.threshold, profile.column(target)
    if threshold is not None and column.type != "bool" and column.cardinality > 2:
        label_name = f"{target}_over_{_number_name(threshold)}"
    trend = _identifier(target)
    labelled = profile.per_interval.median * (1 - profile.target.missing_share)
    return Plan(
        name=options.name,
        source=_identifier(Path(profile.file).name.split(".")[0]) or "data",
        cadence=cadence,
        rhythm=rhythm,
        delay=delay,
        delay_intervals=_intervals(delay, rhythm),
        timestamp=timestamp,
        event_id=event_id,
        entity_key=entity_key,
        categoricals=[c.name for c in profile.with_role("categorical")],
        measurements=[c.name for c in measurements],
        label_name=label_name,
        trend_function=f"{trend}_trend",
        trend_feature=f"{trend}_trend",
        training_intervals=_training_intervals(profile, rhythm, labelled, delay),
        derive=derive,
    )


def rank_for_plan(frame: pd.DataFrame, profile: DataProfile, plan: Plan) -> list[Relevance]:
    """The measurements, best first by what their values one label delay back tell of the
    target on the first training window."""
    t = profile.time
    path = Path(profile.file)
    column, parts = t.column, t.parts
    stamps, _ = event_times(frame, path, column, parts, t.format)
    target = profile.target
    _, labels = target_labels(frame, path, target.column, target.task, target.threshold)
    keys = entity_keys(frame, profile.entity.columns)
    first = interval_starts(stamps.dropna(), plan.cadence).min()
    window_end = pd.Timestamp((plan.rhythm.step * plan.training_intervals).after(first))
    lag = max(1, plan.delay_intervals)
    return rank_measurements(
        frame, keys, stamps, labels, plan.measurements, plan.cadence, lag, window_end,
        target.task == "classification",
    )  # fmt: skip


def _label_delay(text: str | None, rhythm: Rhythm) -> Span:
    if text is None:
        return rhythm.step
    try:
        delay = Span.parse(text)
    except ValueError as exc:
        raise InitError(f"--label-delay {text!r}: {exc}") from None
    if not delay:
        raise InitError(
            f"--label-delay {text!r}: a target is known some time after its row (a day's "
            "outcome at the day's end): give a duration longer than 0, such as "
            f"{rhythm.step} (one interval, the default)"
        )
    return delay


def _intervals(span: Span, rhythm: Rhythm) -> int:
    """How many intervals ``span`` reaches into (a part of one counts as one)."""
    ratio = span.approximate / rhythm.step.approximate
    return max(0, math.ceil(ratio - 0.05))


def _training_intervals(profile: DataProfile, rhythm: Rhythm, labelled: float, delay: Span) -> int:
    """Enough intervals for about TRAINING_ROWS labelled rows, at least ``min_training``, and
    at most half the data, so the demo has as much again to serve and monitor."""
    wanted = max(math.ceil(TRAINING_ROWS / max(labelled, 1.0)), rhythm.min_training)
    limit = max(profile.per_interval.intervals // 2, _intervals(delay, rhythm) + 3)
    rounded = math.ceil(wanted / rhythm.nice) * rhythm.nice
    return rounded if rounded <= limit else min(wanted, limit)


def _free_name(taken: set[str], *candidates: str) -> str:
    for name in candidates:
        if name not in taken:
            return name
    stem, n = candidates[-1], 2
    while f"{stem}_{n}" in taken:
        n += 1
    return f"{stem}_{n}"


def _identifier(text: str) -> str:
    out = re.sub(r"[^0-9a-zA-Z_]+", "_", text).strip("_").lower()
    return f"c_{out}" if out[:1].isdigit() else out


def _number_name(value: float) -> str:
    return f"{value:g}".replace("-", "minus_").replace(".", "_")
