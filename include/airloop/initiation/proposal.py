"""Writing the use case: the proposal as ``usecase.yaml``'s mapping, and the YAML itself.

Everything proposed here follows from the profile and the plan and says so in a comment: the
cadence sets the schedule, the observed ranges and value sets become the validation gate's
rules, the rows per interval size the training window and the monitoring thresholds.
"""

from __future__ import annotations

import math
import textwrap
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from airloop.initiation.plan import Plan
from airloop.initiation.records import DataProfile
from airloop.initiation.relevance import feature_budget
from airloop.initiation.times import interval_starts
from airloop.monitoring.minimums import MIN_LABELLED, MIN_ROWS
from airloop.usecase import window_suffix

CATEGORY_MAX = 200  # an entity with more values is a key, not a model input
WINDOWED = 3  # the measurements ranked most relevant get windows (while the budget allows)
SEASONAL = 3  # ... and, with the history for it, the seasonal lag (with the target)
MONITORING_ROWS = 200  # predictions a monitoring window should hold, when the data allows


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
