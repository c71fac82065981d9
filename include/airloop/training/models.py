"""Model families for each task type, as scikit-learn pipelines with their preprocessing."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from airloop.training.families import FAMILY_NAMES

FAMILIES: dict[str, dict[str, Any]] = {
    "classification": {
        "logistic": LogisticRegression,
        "hist_gradient_boosting": HistGradientBoostingClassifier,
        "random_forest": RandomForestClassifier,
    },
    "regression": {
        "linear": Ridge,
        "hist_gradient_boosting": HistGradientBoostingRegressor,
        "random_forest": RandomForestRegressor,
    },
}
_LINEAR = {"logistic", "linear"}


class ModelConfigError(ValueError):
    """An unknown family or parameter; the message lists what is allowed."""


def families(task: str) -> list[str]:
    return FAMILY_NAMES[task]


def split_columns(
    frame: pd.DataFrame, columns: list[str], categorical: list[str]
) -> tuple[list[str], list[str]]:
    """Which inputs are categories (declared, or text) and which are numbers."""
    cats = [c for c in columns if c in categorical or frame[c].dtype == object]
    nums = [c for c in columns if c not in cats]
    return cats, nums


def build_model(
    task: str,
    family: str,
    params: dict[str, Any],
    categorical: list[str],
    numeric: list[str],
    seed: int,
) -> Pipeline:
    if family not in FAMILIES[task]:
        raise ModelConfigError(
            f"unknown {task} model family {family!r}; choose one of {families(task)}"
        )
    estimator_cls = FAMILIES[task][family]
    kwargs = dict(params)
    if "random_state" in estimator_cls().get_params():
        kwargs.setdefault("random_state", seed)
    if family == "logistic":
        kwargs.setdefault("max_iter", 1000)
    try:
        estimator = estimator_cls(**kwargs)
    except TypeError as exc:
        raise ModelConfigError(f"{family}: {exc}") from None
    if family in _LINEAR:
        cat = OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False)
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


def model_inputs(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The model's input frame: numbers as float64, so a missing value never breaks the schema.

    Counts and years are integers in the data, but a lookup can miss them at serving time;
    MLflow's signature would then refuse a float where it recorded an integer.
    """
    out = frame[columns].copy()
    for column in columns:
        if pd.api.types.is_numeric_dtype(out[column]) and not pd.api.types.is_bool_dtype(
            out[column]
        ):
            out[column] = out[column].astype("float64")
    return out


def score(model: Pipeline, task: str, frame: pd.DataFrame) -> Any:
    """Positive-class probability for classifiers, the prediction for regressors."""
    if task == "classification":
        return model.predict_proba(frame)[:, 1]
    return model.predict(frame)
