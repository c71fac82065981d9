"""From a profiled table to a use-case folder the engine can run: ``airloop init``.

Everything proposed here follows from the profile and says so in a comment: the cadence sets
the schedule, the observed ranges and value sets become the validation gate's rules, the rows
per interval size the training window and the monitoring thresholds. The folder is built
beside its destination and renamed into place only once the use case it holds loads, so a
failure leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import textwrap
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from airloop.core.files import write_json, write_text
from airloop.core.periods import Span
from airloop.initiation.findings import Finding
from airloop.initiation.page import render_html
from airloop.initiation.profile import (
    CADENCES,
    DataProfile,
    InitError,
    Relevance,
    Task,
    entity_keys,
    event_times,
    interval_starts,
    profile_data,
    read_table,
    target_labels,
)
from airloop.initiation.relevance import feature_budget, rank_measurements
from airloop.initiation.selfcheck import loosen, own_file_failures
from airloop.monitoring.minimums import MIN_LABELLED, MIN_ROWS
from airloop.settings import get_settings
from airloop.usecase import UseCase, UseCaseError, load_usecase, window_suffix

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
GENERATED = ("usecase.yaml", "transforms.py", "README.md", "profile.html", "profile.json")
CATEGORY_MAX = 200  # an entity with more values is a key, not a model input
WINDOWED = 3  # the measurements ranked most relevant get windows (while the budget allows)
SEASONAL = 3  # ... and, with the history for it, the seasonal lag (with the target)
TRAINING_ROWS = 1500  # what a first training window should hold, when the data allows
MONITORING_ROWS = 200  # predictions a monitoring window should hold, when the data allows


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
class InitResult:
    """The folder written and the profile it was proposed from."""

    folder: Path
    files: list[str]
    profile: DataProfile


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


# -- the whole command ------------------------------------------------------------------------


def init_usecase(options: InitOptions) -> InitResult:
    """Profile the data, propose a use case, and write its folder; nothing on any failure."""
    if not NAME.match(options.name):
        raise InitError(
            f"use case name {options.name!r}: use lowercase letters, digits and '_', "
            "starting with a letter (it is also the Feast project's name)"
        )
    folder = options.folder
    _check_destination(folder, options.force)
    data = options.data.expanduser().absolute()
    frame, fmt = read_table(data)
    profile = profile_data(
        frame, data, fmt, options.entity, options.timestamp, options.target,
        options.task, options.threshold, options.timestamp_format,
    )  # fmt: skip
    plan = make_plan(profile, options)
    ranking = rank_for_plan(frame, profile, plan)
    profile = profile.model_copy(update={"relevance": ranking})
    plan = replace(plan, measurements=[r.column for r in ranking])
    raw = propose_usecase(profile, plan, folder)
    files = {
        "usecase.yaml": render_yaml(raw, profile, plan),
        "transforms.py": render_transforms(profile, plan),
        "profile.html": render_html(profile),
    }
    created = _missing_parents(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.init-"))
    try:
        for name, text in files.items():
            write_text(staging / name, text)
        write_json(staging / "profile.json", profile.to_dict())
        try:
            usecase = load_usecase(str(staging / "usecase.yaml"))
        except UseCaseError as exc:
            raise InitError(
                f"the proposed use case does not load (a bug in airloop init; please report "
                f"it with the data's profile):\n{exc}"
            ) from None
        usecase, profile = _hold_for_own_file(usecase, frame, raw, profile, plan, staging)
        last = last_event(usecase, frame)
        example = example_request(usecase, last)
        if example is not None:  # the service's /docs page shows it; it must load as before
            raw["events"]["example"] = example
            write_text(staging / "usecase.yaml", render_yaml(raw, profile, plan))
            usecase = load_usecase(str(staging / "usecase.yaml"))
        port = get_settings().serving_port
        readme = render_readme(profile, plan, folder, usecase) + render_request(usecase, last, port)
        write_text(staging / "README.md", readme)
        _as_umask_allows(staging)
        _commit(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for parent in created:
            shutil.rmtree(parent, ignore_errors=True)
        raise
    return InitResult(folder=folder, files=list(GENERATED), profile=profile)


def _hold_for_own_file(
    usecase: UseCase,
    frame: pd.DataFrame,
    raw: dict[str, Any],
    profile: DataProfile,
    plan: Plan,
    staging: Path,
) -> tuple[UseCase, DataProfile]:
    """The proposal, checked against the file it came from (:mod:`selfcheck`): a rule the
    file breaks is relaxed and a finding says so; one that cannot be is refused here, before
    the replay would quarantine the user's own data."""
    failures = own_file_failures(usecase, frame)
    if not failures:
        return usecase, profile
    relaxed = loosen(raw, plan.source, failures)
    if relaxed:
        found = Finding(
            kind="rules_relaxed",
            message="The file itself broke some of the rules observed in it, so they were "
            "relaxed: " + "; ".join(relaxed),
        )
        profile = profile.model_copy(update={"findings": [*profile.findings, found]})
        write_text(staging / "usecase.yaml", render_yaml(raw, profile, plan))
        write_text(staging / "profile.html", render_html(profile))
        write_json(staging / "profile.json", profile.to_dict())
        usecase = load_usecase(str(staging / "usecase.yaml"))
        failures = own_file_failures(usecase, frame)
    if failures:
        reasons = "\n".join(f"  - {f.reason}" for f in failures[:10])
        raise InitError(
            "the proposed validation gate refuses the file it was made from (a bug in "
            f"airloop init; please report it with the data's profile):\n{reasons}"
        )
    return usecase, profile


def _check_destination(folder: Path, force: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise InitError(f"{folder} exists and is not a folder: choose another --into")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise InitError(
            f"{folder} exists and is not empty: choose another --into, or --force to "
            f"overwrite the generated files in it ({', '.join(GENERATED)}; other files stay)"
        )


def _missing_parents(folder: Path) -> list[Path]:
    """The outermost folder above ``folder`` that does not exist yet (to remove on failure)."""
    missing = [p for p in folder.parents if not p.exists()]
    return missing[-1:]


def _as_umask_allows(staging: Path) -> None:
    """Temporary folders and atomic writes are private (0700, 0600); a use-case folder is an
    ordinary one, with the permissions the user's umask gives."""
    mask = os.umask(0)
    os.umask(mask)
    staging.chmod(0o777 & ~mask)
    for path in staging.iterdir():
        path.chmod(0o666 & ~mask)


def _commit(staging: Path, folder: Path) -> None:
    """Put the staged folder in place: one rename, or file by file into an existing folder."""
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    if not folder.exists():
        os.replace(staging, folder)
        return
    for path in staging.iterdir():
        os.replace(path, folder / path.name)
    staging.rmdir()


# -- the plan ---------------------------------------------------------------------------------


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


# -- the use case -----------------------------------------------------------------------------


def propose_usecase(profile: DataProfile, plan: Plan, folder: Path) -> dict[str, Any]:
    """The use case as the YAML's mapping, in the order a reader wants it."""
    target = profile.target
    entity = profile.entity.columns
    description = (
        f"{target.column} per {'+'.join(entity)}, {profile.time.cadence}, from "
        f"{Path(profile.file).name} ({profile.rows} rows, {profile.time.first[:7]} to "
        f"{profile.time.last[:7]})"
    )
    return {
        "name": plan.name,
        "description": description,
        "owner": "airloop",
        "task": target.task,
        "schedule": profile.time.schedule,
        "sources": {plan.source: _source(profile, plan)},
        "events": {
            "source": plan.source,
            "id": plan.event_id,
            "timestamp": plan.timestamp,
            "request_fields": list(dict.fromkeys([*entity, *plan.categoricals])),
            "calendar": list(plan.rhythm.calendar),
        },
        "label": _label(profile, plan),
        "entities": [
            {
                "name": plan.entity_key,
                "join_key": plan.entity_key,
                "description": f"One {'+'.join(entity)} ({profile.entity.count} in the data)",
            }
        ],
        "feature_views": _feature_views(profile, plan),
        "feature_service": {
            "name": f"{plan.name}_v1",
            "description": f"Features of the {plan.name} model",
        },
        **_model(profile, plan),
        "training": _training(profile, plan),
        "monitoring": _monitoring(profile, plan),
        "replay": _replay(profile, plan, folder),
    }


def _source(profile: DataProfile, plan: Plan) -> dict[str, Any]:
    counts = profile.per_interval
    source: dict[str, Any] = {
        "kind": "partitioned",
        "format": profile.format,
        "partition_by": plan.timestamp,
    }
    # The row's measurements are reported with its target: features know them after the delay.
    source["available_after"] = str(plan.delay)
    if not profile.entity.duplicate_events:  # the event id's parts, as the file has them
        time_columns = (
            [profile.time.column] if profile.time.column else [*profile.time.parts.values()]
        )
        source["unique"] = [*profile.entity.columns, *time_columns]
    min_rows = min(max(1, int(counts.median // 2)), counts.steady_min)
    source["min_rows"] = min_rows
    if counts.thin_until and min_rows > 0:
        source["allow_empty_before"] = date.fromisoformat(counts.thin_until)
    source["columns"] = [_column(profile, c.name) for c in profile.columns]
    source["derive"] = plan.derive
    return source


def _column(profile: DataProfile, name: str) -> dict[str, Any]:
    col = profile.column(name)
    spec: dict[str, Any] = {"name": name, "type": col.type, "nullable": col.missing > 0}
    if col.markers:  # read as missing by default; `replace` maps a marker to a number instead
        spec["na_values"] = [marker for marker, _ in col.markers]
    if name == profile.time.column and profile.time.format:
        spec["format"] = profile.time.format
    if col.type in ("number", "integer") and col.min is not None and col.max is not None:
        lo, hi = float(col.min), float(col.max)
        spec["min"], spec["max"] = (int(lo), int(hi)) if col.type == "integer" else (lo, hi)
    if col.type == "string" and col.values is not None:
        spec["values"] = col.values
    return spec


def _label(profile: DataProfile, plan: Plan) -> dict[str, Any]:
    label: dict[str, Any] = {
        "source": plan.source,
        "column": profile.target.column,
        "name": plan.label_name,
        "delay": str(plan.delay),
    }
    if profile.target.task == "classification":
        label["threshold"] = profile.target.threshold
    return label


def _lagged(profile: DataProfile, plan: Plan) -> list[str]:
    """The columns whose last known value the lag view holds: the target (unless it is a
    true/false column) and every measurement."""
    target_is_bool = profile.column(profile.target.column).type == "bool"
    return [*([] if target_is_bool else [profile.target.column]), *plan.measurements]


def _feature_views(profile: DataProfile, plan: Plan) -> list[dict[str, Any]]:
    """The proposal's features, within :func:`feature_budget` of the training rows: the last
    known value of every measurement (the plain baseline a model must at least match), the
    past labels, the calendar, then windows of the measurements ranked most relevant and the
    seasonal lag, as far as the budget goes (shorter horizons first)."""
    rhythm, step, key = plan.rhythm, plan.rhythm.step, plan.entity_key
    ttl = str(step * max(2, plan.delay_intervals + 1))
    target_is_bool = profile.column(profile.target.column).type == "bool"
    own = [] if target_is_bool else [profile.target.column]
    lagged = _lagged(profile, plan)
    classification = profile.target.task == "classification"
    budget = feature_budget(_labelled_training_rows(profile, plan))
    used = len(lagged) + len(rhythm.calendar) + (0 if target_is_bool else 2)
    used += len(_spread_windows(profile, plan)) * (2 if classification else 4)  # label rates
    seasonal = [*own, *plan.measurements[:SEASONAL]] if _seasonal_lag(plan) else []
    if used + len(seasonal) > budget:
        seasonal = []
    used += len(seasonal)
    windows = _spread_windows(profile, plan)
    windowed = plan.measurements[:WINDOWED]
    functions = ["mean", "std"]
    while windowed and used + len(windowed) * len(windows) * len(functions) > budget:
        if len(windows) > 2:
            windows = windows[:-1]
        else:
            windowed = windowed[:-1]
    views: list[dict[str, Any]] = []
    if lagged:
        views.append(
            {
                "name": f"{key}_lags",
                "kind": "lag",
                "entity": key,
                "source": plan.source,
                "columns": lagged,
                "lags": [str(step * max(1, plan.delay_intervals))],
                "ttl": ttl,
                "description": f"Each {key}'s last known values",
            }
        )
    if seasonal:
        views.append(
            {
                "name": f"{key}_seasonal",
                "kind": "lag",
                "entity": key,
                "source": plan.source,
                "columns": seasonal,
                "lags": [str(step * rhythm.season)],
                "ttl": ttl,
                "description": f"Each {key}'s values a season ({step * rhythm.season}) back",
            }
        )
    if windowed:
        spans = [str(step * n) for n in windows]
        views.append(
            {
                "name": f"{key}_stats",
                "kind": "aggregate",
                "entity": key,
                "source": plan.source,
                "windows": spans,
                "ttl": ttl,
                "description": f"Each {key}'s most relevant measurements over {' and '.join(spans)}",
                "aggregates": [{"column": c, "functions": functions} for c in windowed],
            }
        )
    if not target_is_bool:
        views.append(
            {
                "name": f"{key}_trend",
                "kind": "transform",
                "entity": key,
                "source": plan.source,
                "function": plan.trend_function,
                "lookback": str(step * rhythm.lookback),
                "ttl": ttl,
                "description": f"The trend of {profile.target.column}, computed in transforms.py",
                "features": [{"name": plan.trend_feature}, {"name": "n_periods", "dtype": "int"}],
            }
        )
    views.append(
        {
            "name": f"{key}_labels",
            "kind": "label_rate",
            "entity": key,
            "windows": [str(step * n) for n in _spread_windows(profile, plan)],
            "ttl": ttl,
            "description": f"Each {key}'s past labels, as known then, over each window",
        }
    )
    return views


def _spread_windows(profile: DataProfile, plan: Plan) -> list[int]:
    """The horizons (in intervals) over which an entity has two known rows or more, so a
    spread (std) can be computed: a window reaches back its length, less the delay before a
    row is known. The longest is kept whatever."""
    per_entity = profile.per_interval.median / max(profile.entity.count, 1)
    known = [n for n in plan.rhythm.windows if (n - plan.delay_intervals) * per_entity >= 2]
    return known or [plan.rhythm.windows[-1]]


def _labelled_training_rows(profile: DataProfile, plan: Plan) -> float:
    """The labelled rows the first training window holds, about."""
    per = profile.per_interval.median * (1 - profile.target.missing_share)
    return max(plan.training_intervals - plan.delay_intervals, 1) * per


def _seasonal_lag(plan: Plan) -> bool:
    """The seasonal lag when it reaches past the first lag and the training window holds two
    seasons (so it is mostly present)."""
    season = plan.rhythm.season
    return season > max(1, plan.delay_intervals) and plan.training_intervals >= 2 * season


def _model(profile: DataProfile, plan: Plan) -> dict[str, Any]:
    if profile.target.task == "classification":
        return {
            "metrics": ["roc_auc", "average_precision", "log_loss", "brier_score"],
            "gates": {"minimum": {"roc_auc": 0.55}, "max_regression": 0.01},
        }
    return {
        "metrics": ["mae", "rmse", "r2"],
        "gates": {"minimum": {"r2": 0.0}, "max_regression": "2%"},
    }


def _training(profile: DataProfile, plan: Plan) -> dict[str, Any]:
    entity = [c for c in profile.entity.columns if profile.column(c).cardinality <= CATEGORY_MAX]
    categorical = list(dict.fromkeys([*entity, *plan.categoricals]))
    slices = [c for c in categorical if profile.column(c).cardinality <= 10][:2]
    labelled_rows = profile.per_interval.median * (1 - profile.target.missing_share)
    usable = max(plan.training_intervals - plan.delay_intervals, 1) * labelled_rows
    plain = "logistic" if profile.target.task == "classification" else "linear"
    # the plain model on every input, and on the last known values alone (the baseline more
    # inputs must beat on the validation slice to be kept), fitted beside the boosted trees
    candidates: list[Any] = [plain]
    if _lagged(profile, plan):
        candidates.append({"family": plain, "views": [f"{plan.entity_key}_lags"]})
    training: dict[str, Any] = {
        "model_name": plan.name,
        "categorical": categorical,
        # the calendar of the event's time (the service computes it from event_time)
        "numeric": [f"event_{part}" for part in plan.rhythm.calendar],
        "slices": slices,
        "window": str(plan.rhythm.step * plan.training_intervals),
        "schedule": plan.rhythm.retrain,
        "family": "hist_gradient_boosting",
        "candidates": candidates,
        **_relative_to(profile, plan),
        # a training set this small means rows went missing (a lost partition), not a
        # shorter window: a quarter of what the window holds, at most 100, at least 30
        "min_rows": max(30, min(int(usable // 4), 100)),
    }
    # An input as often missing as its column is in the file is not a broken pipeline: the
    # training-set gate allows the most-missing input's share and a margin (at most 95 %).
    used = [profile.column(c) for c in [*plan.measurements, *categorical]]
    worst = max((c.missing_share for c in used), default=0.0)
    if worst + 0.2 > 0.6:
        training["max_null_share"] = round(min(0.95, worst + 0.2), 2)
    share = profile.target.positive_share
    if profile.target.task == "classification" and share is not None:
        training["positive_rate"] = [
            round(min(0.01, share / 3), 4),
            round(max(0.99, 1 - (1 - share) / 3), 4),
        ]
    return training


def _relative_to(profile: DataProfile, plan: Plan) -> dict[str, Any]:
    """A numeric target is learnt as its change from its last known value (the lag view's
    first lag of it), which follows a trending series where trees alone cannot."""
    if profile.target.task != "regression":
        return {}
    lag = window_suffix(plan.rhythm.step * max(1, plan.delay_intervals))
    return {"relative_to": f"{plan.entity_key}_lags__{profile.target.column}_lag_{lag}"}


def _monitoring(profile: DataProfile, plan: Plan) -> dict[str, Any]:
    # The window spans enough intervals to hold MONITORING_ROWS predictions and half as many
    # labels at the data's median rows per interval: twice the minimums below, so that a
    # thinner window than usual still gets a verdict. It grows up to the longer feature window
    # (a week of hours, four weeks of days, a quarter of weeks, a year of months) and no further:
    # drift seen a season late tells nobody anything. The minimums are half of what the window
    # holds, never below the engine's floors (50 values, 50 labels): where even the longest
    # window holds fewer, the checks say "not enough data" instead of breaching on noise.
    rhythm = plan.rhythm
    per = max(profile.per_interval.median, 1.0)
    share = max(1 - profile.target.missing_share, 0.01)  # of the rows, those with a label
    wanted = max(MONITORING_ROWS / per, MONITORING_ROWS / 2 / (per * share))
    longest = max(rhythm.monitoring_max, *rhythm.windows)
    window = min(max(1, math.ceil(wanted)), longest)
    rows = window * per
    labelled = rows * share
    classification = profile.target.task == "classification"
    return {
        "numeric_measure": "wasserstein",
        "categorical_measure": "psi",
        "feature_threshold": 0.5,
        "categorical_threshold": 0.25,
        "share_of_drifting_features": 0.3,
        "prediction_threshold": 0.2,
        "exclude": [],  # the calendar features never are drift inputs: the checks skip them
        "window": str(rhythm.step * window),
        "min_rows": max(MIN_ROWS, int(rows // 2)),
        "performance_drop": 0.05 if classification else "10%",
        "min_labelled": max(MIN_LABELLED, int(labelled // 2)),
        "retraining": {
            "hysteresis": 2,
            "cooldown": rhythm.cooldown,
            "budget": 4,
            "budget_window": str(rhythm.budget_window),
        },
    }


def _replay(profile: DataProfile, plan: Plan, folder: Path) -> dict[str, Any]:
    first = pd.Timestamp(profile.time.first)
    last = pd.Timestamp(profile.time.last)
    start = _floor(first, plan.cadence)
    end = plan.rhythm.step.after(_floor(last, plan.cadence))
    end_day = end.date() if end == end.normalize() else end.date() + timedelta(days=1)
    data = Path(profile.file)
    path = str(data.relative_to(folder)) if data.is_relative_to(folder) else str(data)
    return {"start": start.date(), "end": end_day, "sources": {plan.source: {"path": path}}}


def _floor(point: pd.Timestamp, cadence: str) -> pd.Timestamp:
    return pd.Timestamp(interval_starts(pd.Series([point]), cadence).iloc[0])


# -- the files --------------------------------------------------------------------------------

SECTION_NOTES = {
    "schedule": "from the data's cadence",
    "sources": "every column as observed: types, nullability, ranges and value sets are the "
    "validation gate's expectation suite; widen them for data still to come",
    "events": "one prediction per row; request_fields are what a caller knows at prediction "
    "time (the row's measurements are reported with the target, so they are features instead)",
    "label": "the target of the events' own rows, known `delay` after the event",
    "feature_views": "per entity, from past rows only: aggregates over windows, lags, the "
    "transform in transforms.py, and the past labels",
    "metrics": "the first one is optimised and gated",
    "training": "window sized to the rows per interval; min_rows is a quarter of what it holds "
    "(at most 100): fewer means rows went missing",
    "monitoring": "window and minimums sized to the rows per interval; calendar features change "
    "by design, so they are not checked for drift",
    "replay": "the whole file; `airloop demo` replays a window of it",
}


def render_yaml(raw: dict[str, Any], profile: DataProfile, plan: Plan) -> str:
    """The use case as YAML a person can read: one section at a time, each with why."""
    header = [
        f"# {plan.name}: {profile.target.column} per {'+'.join(profile.entity.columns)}, "
        f"proposed by `airloop init` from {Path(profile.file).name}.",
        "# Every value below is a proposal from the data's profile (profile.html): read it and",
        "# edit it. What the profile found:",
    ]
    for finding in profile.findings:
        wrapped = textwrap.wrap(f"{finding.severity}: {finding.message}", 94)
        header += [f"#   {wrapped[0]}", *(f"#     {line}" for line in wrapped[1:])]
    parts = ["\n".join(header) + "\n"]
    for key, value in raw.items():
        nested = isinstance(value, dict | list)  # leaf collections inline, the rest in blocks
        text = yaml.dump(
            {key: value},
            Dumper=_Dumper,
            sort_keys=False,
            default_flow_style=None if nested else False,
            width=100,
            allow_unicode=True,
        )
        if key in SECTION_NOTES:
            note = textwrap.wrap(SECTION_NOTES[key], 96)
            text = "".join(f"# {line}\n" for line in note) + text
            if nested:
                text = "\n" + text
        parts.append(text)
    return "".join(parts)


class _Dumper(yaml.SafeDumper):
    """Safe YAML without anchors: a reader should not have to resolve ``*id001``."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_transforms(profile: DataProfile, plan: Plan) -> str:
    """``transforms.py``: the example transform the use case's ``transform`` view calls."""
    key, ts, target = plan.entity_key, plan.timestamp, profile.target.column
    return f'''"""Transforms of the {plan.name} use case: features computed in Python from past rows.

A feature view of ``kind: transform`` in usecase.yaml names a function here. For each interval,
airloop calls it with the rows of the view's source from its ``lookback`` before the interval
(``history``) and the interval's start (``as_of``); it returns one row per entity: the entity
key and the view's features. It sees only rows from before ``as_of``, so it cannot peek at the
outcome it helps to predict. Edit this one, or add your own and a view that names it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ENTITY = {_py(key)}
TIMESTAMP = {_py(ts)}
TARGET = {_py(target)}
MIN_POINTS = 3  # fewer rows give no trend


def {plan.trend_function}(history: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Each {key}'s trend of {target}: the slope of a straight line through its recent values,
    per 30 days, and how many rows it was fitted on.

    A level says where a series is; the slope says where it is heading, which lags and window
    means do not. Fewer than MIN_POINTS rows give no slope (missing, not zero).
    """
    columns = [ENTITY, {_py(plan.trend_feature)}, "n_periods"]
    rows = history.dropna(subset=[ENTITY, TIMESTAMP, TARGET])
    if rows.empty:
        return pd.DataFrame(columns=columns)
    when = pd.to_datetime(rows[TIMESTAMP], utc=True)
    days = (when - when.max()).dt.total_seconds() / 86400
    values = pd.to_numeric(rows[TARGET], errors="coerce").astype("float64")
    out = []
    for entity, index in rows.groupby(ENTITY).groups.items():
        x, y = days.loc[index].to_numpy(), values.loc[index].to_numpy()
        keep = np.isfinite(y)
        x, y = x[keep], y[keep]
        slope = np.nan
        if len(x) >= MIN_POINTS and np.ptp(x) > 0:
            slope = float(np.polyfit(x, y, 1)[0]) * 30
        out.append({{ENTITY: entity, {_py(plan.trend_feature)}: slope, "n_periods": len(x)}})
    return pd.DataFrame(out, columns=columns)
'''


def _py(text: str) -> str:
    """A Python string literal, double-quoted as ruff formats them."""
    return json.dumps(text)


def render_readme(profile: DataProfile, plan: Plan, folder: Path, usecase: UseCase) -> str:
    """``README.md``: what was generated, the features the use case has, what the profile
    found, and the next commands."""
    here = display_path(folder)
    t, target = profile.time, profile.target
    warnings = sum(f.severity == "warning" for f in profile.findings)
    found = "\n".join(f"- **{f.severity}**: {f.message}" for f in profile.findings)
    heed = f"\n{warnings} of these are warnings: read them before trusting the proposal.\n"
    transforms = [v.name for v in usecase.feature_views if v.kind == "transform"]
    transforms_row = (
        f"the example transform that the `{transforms[0]}` view calls"
        if transforms
        else "where a transform of your own goes (no view calls one yet)"
    )
    views = "\n".join(
        f"| `{v.name}` | {v.kind} | {len(v.feature_names(usecase))} | {v.description} |"
        for v in usecase.feature_views
    )
    calendar = ", ".join(f"`{c}`" for c in usecase.events.calendar_features) or "none"
    fields = ", ".join(f"`{c}`" for c in usecase.request_keys)
    return f"""# {plan.name}

Generated by `airloop init` from `{profile.file}`:
{profile.rows} rows from {t.first[:10]} to {t.last[:10]}, {t.cadence} ({t.schedule});
{profile.entity.count} values of `{"+".join(profile.entity.columns)}`; the target
`{target.column}` ({target.task}).

| file | what |
|---|---|
| `usecase.yaml` | the use case: the source and its rules (the validation gate), events, label, entities, feature views, model, gates, monitoring, replay |
| `transforms.py` | `{plan.trend_function}`, {transforms_row} |
| `profile.html` | the data's profile: findings, columns, the target, rows over time, the measurements' relevance, distributions |
| `profile.json` | the same figures as JSON |

## What the model learns from

The request's fields ({fields}), the calendar of the event's time ({calendar}), and
these feature views, each computed per entity from past rows only:

| view | kind | features | what |
|---|---|---:|---|
{views}

## What the profile found

{found}
{heed if warnings else ""}
## Next

```bash
xdg-open {here}/profile.html            # read the profile (open on macOS)
$EDITOR {here}/usecase.yaml             # adjust what the profile could not know
airloop demo --usecase {here}           # replay the data through the whole loop
AIRLOOP_USECASE={here} airloop up       # Airflow, MLflow and the service on this use case
```

The columns' ranges and value sets are those of the data seen so far: the validation gate
and the service refuse values outside them, so widen them for data still to come. airloop's
`docs/your-own-data.md` walks through each step.
"""


def last_event(usecase: UseCase, frame: pd.DataFrame) -> pd.Series:
    """The data's last event, cleaned as the pipeline cleans it: what the example request
    and the README's request are made of."""
    from airloop.features.transforms import clean_source

    return clean_source(frame.tail(1), usecase.sources[usecase.events.source]).iloc[0]


def example_request(usecase: UseCase, row: pd.Series) -> dict[str, Any] | None:
    """The use case's ``events.example``: the request fields of the data's last event
    (:func:`last_event`), or None when one of them is missing from it (a field the service
    computes)."""
    if not all(name in row for name in usecase.request_keys):
        return None
    example: dict[str, Any] = json.loads(row[usecase.request_keys].to_json())  # NaN as null
    return example


def render_request(usecase: UseCase, row: pd.Series, port: int) -> str:
    """The README's section on the service: a request for the data's last event
    (:func:`last_event`), as sent, to the service's port of the settings."""
    stamp = pd.Timestamp(row[usecase.events.timestamp]).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = [name for name in usecase.request_keys if name in row]
    instance: dict[str, Any] = json.loads(row[fields].to_json())  # numpy types, NaN as null
    instance["event_id"] = str(row[usecase.events.id])
    instance["event_time"] = stamp
    body = json.dumps({"instances": [instance]}, indent=2, default=str)
    return f"""
## Asking the service

`POST /v1/predict` takes, per event, the request fields ({
        ", ".join(f"`{n}`" for n in usecase.request_keys)
    }), and `event_id` and `event_time` so the label that arrives later
(`label.delay`: {usecase.label.delay}) is joined to the prediction for live performance.
The features come from the online store; calendar features from `event_time`. For the data's
last event:

```bash
curl -s http://127.0.0.1:{port}/v1/predict -H 'content-type: application/json' -d '{body}'
```

The online store holds each entity's latest features: an event from before them is refused
with a 422 (they would use its future). Score past events with `airloop score`, which reads
the offline store point-in-time.
"""


def display_path(folder: Path) -> str:
    """The folder as a person would type it: ``./name`` below the current folder, else whole."""
    try:
        return f"./{folder.relative_to(Path.cwd())}"
    except ValueError:
        return str(folder)
