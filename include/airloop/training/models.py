"""Model families as scikit-learn pipelines with their preprocessing, the input rule, scoring.

The input rule and scoring are the ones serving and batch inference use too: a model scored
anywhere sees its inputs exactly as it saw them in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from airloop.catalog import ModelConfigError, family


def split_columns(
    frame: pd.DataFrame, columns: list[str], categorical: list[str]
) -> tuple[list[str], list[str]]:
    """Which inputs are categories (declared, or text) and which are numbers."""
    cats = [c for c in columns if c in categorical or frame[c].dtype == object]
    nums = [c for c in columns if c not in cats]
    return cats, nums


def build_model(
    task: str,
    family_name: str,
    params: dict[str, Any],
    categorical: list[str],
    numeric: list[str],
    seed: int,
) -> Pipeline:
    """The family's estimator behind its preprocessing; unknown families or params are refused."""
    chosen = family(family_name, task)
    estimator_cls = chosen.estimator(task)
    kwargs = {**chosen.defaults, **params}
    if "random_state" in estimator_cls().get_params():
        kwargs.setdefault("random_state", seed)
    try:
        estimator = estimator_cls(**kwargs)
    except TypeError as exc:
        raise ModelConfigError(f"{family_name}: {exc}") from None
    if chosen.linear:
        cat: Any = OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False)
        num: Any = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        )
    else:
        cat = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
        )
        num = SimpleImputer(strategy="median", keep_empty_features=True)
    cat_pipe = Pipeline(
        [("fill", SimpleImputer(strategy="constant", fill_value="__missing__")), ("encode", cat)]
    )
    pre = ColumnTransformer(
        [("categorical", cat_pipe, categorical), ("numeric", num, numeric)],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    return Pipeline([("preprocess", pre), ("model", estimator)])


def calibrate(model: Pipeline, method: str, inputs: pd.DataFrame, labels: pd.Series) -> Any:
    """A fitted classifier whose scores are mapped to probabilities on these rows (held out
    from its fit): ``sigmoid`` or ``isotonic``; ``none`` returns the model as it is.

    The fitted model is frozen, not refitted: only the mapping learns from these rows.
    """
    if method == "none":
        return model
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    calibrated = CalibratedClassifierCV(FrozenEstimator(model), method=method)
    return calibrated.fit(inputs, labels)


def input_column(values: Sequence[Any] | pd.Series, numeric: bool) -> np.ndarray:
    """One model input column, by the one rule training and serving share.

    Numbers are float64, with None as NaN: counts and years are integers in the data, but a
    lookup can miss them at serving time, and MLflow's signature would then refuse a float
    where it recorded an integer. Everything else stays as Python objects.
    """
    if not numeric:
        return np.asarray(values, dtype=object)
    if isinstance(values, pd.Series):
        return values.astype("float64").to_numpy()
    try:
        return np.array([np.nan if v is None else v for v in values], dtype="float64")
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy("float64")


def is_numeric_input(series: pd.Series) -> bool:
    """Whether a training column is a number (booleans are not)."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def model_inputs(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The model's input frame: numbers as float64 (:func:`input_column`), in column order."""
    out = frame[columns].copy()
    for column in columns:
        if is_numeric_input(out[column]):
            out[column] = input_column(out[column], numeric=True)
    return out


class RelativeTo(RegressorMixin, BaseEstimator):
    """A regressor that learns the target's difference from one of its inputs (the target's
    last known value, say) and adds that input back when it predicts.

    Trees cannot predict beyond the targets they were fitted on: a series that trends (prices,
    employment, a level) leaves them behind, where "the last value and a change" follows it.
    Rows without the input are not fitted on; a prediction for one adds the training targets'
    mean instead.
    """

    def __init__(self, estimator: Any = None, relative_to: str = "") -> None:
        self.estimator = estimator
        self.relative_to = relative_to

    def fit(self, inputs: pd.DataFrame, target: Any) -> RelativeTo:
        """Fit the estimator on the target minus the input, where the input is known."""
        base = pd.to_numeric(inputs[self.relative_to], errors="coerce").to_numpy(dtype=float)
        values = np.asarray(target, dtype=float)
        known = np.isfinite(base)
        if not known.any():
            raise ValueError(f"training.relative_to: {self.relative_to!r} is missing on every row")
        self.fill_ = float(np.mean(values))
        self.estimator_ = clone(self.estimator).fit(inputs[known], values[known] - base[known])
        return self

    def predict(self, inputs: pd.DataFrame) -> np.ndarray:
        """The estimator's change added to the input (to the training mean where it is missing)."""
        base = pd.to_numeric(inputs[self.relative_to], errors="coerce").to_numpy(dtype=float)
        base = np.where(np.isfinite(base), base, self.fill_)
        return np.asarray(self.estimator_.predict(inputs)) + base


def score(model: Any, task: str, frame: pd.DataFrame) -> np.ndarray:
    """Positive-class probability for classifiers, the prediction for regressors."""
    if task == "classification":
        return np.asarray(model.predict_proba(frame)[:, 1])
    return np.asarray(model.predict(frame))
