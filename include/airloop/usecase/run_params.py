"""Run parameters from the Airflow trigger form or ``airflow dags trigger --conf``, checked
before any work starts.

Airflow checks what a Param's JSON schema can say (types, enums, bounds); it cannot say "not
in the future" or "start before end", and ``--conf`` may carry keys no Param declares (a typo
such as ``n_trial`` would otherwise be ignored in silence). These functions check the whole
set against the use case, collect every problem, and raise one error naming each field.
Orchestration calls them first in each DAG's first task; the CLI and tests call them directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from airloop.catalog import family_names, metric_names
from airloop.core.errors import PermanentError
from airloop.usecase.model import UseCase

N_TRIALS_MAX = 50  # the form's bound: a grid this size already takes a worker for an hour
SEED_MAX = 2**32 - 1  # numpy's and scikit-learn's seeds are unsigned 32-bit integers

TRAINING_FIELDS = ("window_start", "window_end", "config")
EXPERIMENT_FIELDS = (
    "window_start",
    "window_end",
    "model_family",
    "search_space",
    "n_trials",
    "metric",
    "seed",
)


class RunParamsError(PermanentError, ValueError):
    """The run's parameters were refused before any work; ``problems`` maps field → why."""

    def __init__(self, dag: str, problems: dict[str, str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {field}: {why}" for field, why in problems.items())
        super().__init__(
            f"{dag}: the run's parameters were refused, nothing was started:\n{lines}\n"
            "Trigger the run again with these fields corrected (the Trigger form, or "
            "`airflow dags trigger --conf`)."
        )


def check_training_params(
    params: Mapping[str, Any], usecase: UseCase, now: datetime | None = None
) -> None:
    """Refuse ``model_training`` parameters that would fail later or train on the wrong thing.

    ``window_start``/``window_end``: ISO dates or empty, the start before the end, neither
    after ``now`` (data cannot have landed for a future window); ``config``: an object with at
    most ``family`` (one of the use case's task's families) and ``params`` (an object).
    """
    problems = _unknown(params, TRAINING_FIELDS)
    problems |= _window(params, now or datetime.now(UTC))
    config = params.get("config")
    if config is not None and not isinstance(config, dict):
        problems["config"] = (
            f"must be an object like {{'family': ..., 'params': {{...}}}}, not {_shown(config)}"
        )
    elif config:
        extra = sorted(set(config) - {"family", "params"})
        if extra:
            problems["config"] = f"unknown keys {extra}; it takes 'family' and 'params'"
        family = config.get("family")
        if family is not None and family not in family_names(usecase.task):
            problems["config.family"] = _not_one_of(family, family_names(usecase.task))
        if config.get("params") is not None and not isinstance(config["params"], dict):
            problems["config.params"] = f"must be an object, not {_shown(config['params'])}"
    if problems:
        raise RunParamsError("model_training", problems)


def check_experiment_params(
    params: Mapping[str, Any], usecase: UseCase, now: datetime | None = None
) -> None:
    """Refuse ``experimentation`` parameters: the window as for training, a known family and
    metric for the use case's task, a search space of non-empty lists, a trial count from 1 to
    :data:`N_TRIALS_MAX`, a seed from 0 to :data:`SEED_MAX`."""
    problems = _unknown(params, EXPERIMENT_FIELDS)
    problems |= _window(params, now or datetime.now(UTC))
    family = params.get("model_family")
    if family is not None and family not in family_names(usecase.task):
        problems["model_family"] = _not_one_of(family, family_names(usecase.task))
    chosen = params.get("metric")
    if chosen is not None and chosen not in metric_names(usecase.task):
        problems["metric"] = _not_one_of(chosen, metric_names(usecase.task))
    space = params.get("search_space")
    if space is not None:
        if not isinstance(space, dict):
            problems["search_space"] = f"must be an object of lists, not {_shown(space)}"
        else:
            for key, values in space.items():
                if not isinstance(values, list) or not values:
                    problems[f"search_space.{key}"] = (
                        f"must be a non-empty list of values, not {_shown(values)}"
                    )
    for field, low, high in (("n_trials", 1, N_TRIALS_MAX), ("seed", 0, SEED_MAX)):
        why = _whole_number(params.get(field), low, high)
        if why:
            problems[field] = why
    if problems:
        raise RunParamsError("experimentation", problems)


def _unknown(params: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, str]:
    return {
        key: f"not a parameter of this DAG (its parameters: {', '.join(fields)})"
        for key in params
        if key not in fields
    }


def _window(params: Mapping[str, Any], now: datetime) -> dict[str, str]:
    problems: dict[str, str] = {}
    days: dict[str, datetime] = {}
    for field in ("window_start", "window_end"):
        value = params.get(field)
        if value is None or value == "":
            continue
        day = _day(value)
        if day is None:
            problems[field] = f"must be a date like 2013-03-01, not {_shown(value)}"
        elif day > now:
            problems[field] = (
                f"{value} is in the future (now {now:%Y-%m-%d %H:%M} UTC): no data can have "
                "landed for it"
            )
        else:
            days[field] = day
    if len(days) == 2 and days["window_start"] >= days["window_end"]:
        problems["window_end"] = (
            f"must be after window_start ({params['window_start']}); the window is "
            "[window_start, window_end)"
        )
    return problems


def _day(value: Any) -> datetime | None:
    """A date or date-time given as ISO text, at UTC; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _whole_number(value: Any, low: int, high: int) -> str | None:
    if value is None:
        return None
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole:
        return f"must be a whole number from {low} to {high}, not {_shown(value)}"
    if not low <= value <= high:
        return f"{value} is outside {low}..{high}"
    return None


def _not_one_of(value: Any, known: list[str]) -> str:
    return f"{_shown(value)} is not one of {known}"


def _shown(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"
