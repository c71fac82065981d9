"""The model families and metrics airloop knows, per task type: one list of each.

Everything that names a family or a metric asks here: the use case's validation, the forms of
the experimentation DAG, training, the gate and monitoring. Light on purpose: scikit-learn and
numpy are imported only when a model is built or a metric computed, so DAG files can offer
these names in forms without importing them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from airloop.core.errors import PermanentError

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")


class ModelConfigError(PermanentError, ValueError):
    """An unknown family, metric or parameter; the message lists what is allowed."""


# -- metrics ----------------------------------------------------------------------------------


def _roc_auc(y: Any, s: Any) -> float:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if len(np.unique(y)) > 1 else float("nan")


def _average_precision(y: Any, s: Any) -> float:
    import numpy as np
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, s)) if len(np.unique(y)) > 1 else float("nan")


def _log_loss(y: Any, s: Any) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y, s, labels=[0, 1]))


def _brier_score(y: Any, s: Any) -> float:
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss(y, s))


def _accuracy(y: Any, s: Any) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y, s >= 0.5))


def _rmse(y: Any, s: Any) -> float:
    import numpy as np
    from sklearn.metrics import mean_squared_error

    return float(np.sqrt(mean_squared_error(y, s)))


def _mae(y: Any, s: Any) -> float:
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(y, s))


def _r2(y: Any, s: Any) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y, s))


@dataclass(frozen=True)
class Metric:
    """A metric of one task type: its direction and how to compute it from labels and scores."""

    name: str
    task: Task
    higher_is_better: bool
    compute: Callable[[Any, Any], float]


METRICS: tuple[Metric, ...] = (
    Metric("roc_auc", "classification", True, _roc_auc),
    Metric("average_precision", "classification", True, _average_precision),
    Metric("log_loss", "classification", False, _log_loss),
    Metric("brier_score", "classification", False, _brier_score),
    Metric("accuracy", "classification", True, _accuracy),
    Metric("rmse", "regression", False, _rmse),
    Metric("mae", "regression", False, _mae),
    Metric("r2", "regression", True, _r2),
)


def metric_names(task: str) -> list[str]:
    """The metrics a use case of this task type may name, in catalogue order."""
    return [m.name for m in METRICS if m.task == task]


def metric(name: str, task: str) -> Metric:
    """The metric called ``name`` for this task type; the error lists the known ones."""
    found = next((m for m in METRICS if m.name == name and m.task == task), None)
    if found is None:
        raise ModelConfigError(f"unknown {task} metric {name!r}; known: {metric_names(task)}")
    return found


def is_better(name: str, task: str, a: float, b: float, margin: float = 0.0) -> bool:
    """Whether ``a`` is no worse than ``b`` by more than ``margin`` on metric ``name``."""
    if metric(name, task).higher_is_better:
        return a >= b - margin
    return a <= b + margin


# -- model families ---------------------------------------------------------------------------


def _hist_gradient_boosting(task: str) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return (
        HistGradientBoostingClassifier
        if task == "classification"
        else HistGradientBoostingRegressor
    )


def _random_forest(task: str) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    return RandomForestClassifier if task == "classification" else RandomForestRegressor


def _logistic(task: str) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression


def _linear(task: str) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge


@dataclass(frozen=True)
class ModelFamily:
    """A kind of model: the estimator class per task type, its preprocessing and search space.

    ``linear`` families get one-hot categories and scaled numbers; tree families get ordinal
    codes and raw numbers. ``defaults`` are set unless the configuration gives them.
    """

    name: str
    tasks: tuple[Task, ...]
    estimator: Callable[[str], Any]
    linear: bool
    search_space: dict[str, list[Any]]
    defaults: dict[str, Any] = field(default_factory=dict)


FAMILIES: tuple[ModelFamily, ...] = (
    ModelFamily(
        "hist_gradient_boosting",
        TASKS,
        _hist_gradient_boosting,
        linear=False,
        search_space={"learning_rate": [0.05, 0.1], "max_leaf_nodes": [15, 31], "max_iter": [100]},
    ),
    ModelFamily(
        "logistic",
        ("classification",),
        _logistic,
        linear=True,
        search_space={"C": [0.1, 1.0, 10.0]},
        defaults={"max_iter": 1000},
    ),
    ModelFamily(
        "linear", ("regression",), _linear, linear=True, search_space={"alpha": [0.1, 1.0, 10.0]}
    ),
    ModelFamily(
        "random_forest",
        TASKS,
        _random_forest,
        linear=False,
        search_space={"n_estimators": [100], "max_depth": [6, 12], "min_samples_leaf": [5, 20]},
    ),
)


def family_names(task: str) -> list[str]:
    """The model families of a task type, in catalogue order."""
    return [f.name for f in FAMILIES if task in f.tasks]


def family(name: str, task: str) -> ModelFamily:
    """The family called ``name`` for this task type; the error lists the known ones."""
    found = next((f for f in FAMILIES if f.name == name and task in f.tasks), None)
    if found is None:
        raise ModelConfigError(
            f"unknown {task} model family {name!r}; choose one of {family_names(task)}"
        )
    return found
