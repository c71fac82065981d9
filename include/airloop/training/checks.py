"""The training-set gate: label balance, missing features, feature ranges (Great Expectations)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from airloop.features.compute import LABEL
from airloop.quality.expectations import run_expectations
from airloop.training.dataset import TrainingDataError
from airloop.usecase import UseCase


def _ranges(usecase: UseCase) -> dict[str, tuple[float | None, float | None]]:
    """Declared bounds of every model input that has them."""
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for view in usecase.service_views:
        for name in view.feature_names():
            column = f"{view.name}__{name}"
            if view.kind == "label_rate":
                if name.startswith("count_"):
                    bounds[column] = (0.0, None)
                elif (
                    usecase.task == "classification"
                ):  # a share of positives; a mean for regression
                    bounds[column] = (0.0, 1.0)
            elif view.source:
                feature = next(f for f in view.features if f.name == name)
                spec = usecase.sources[view.source].column(feature.source_column)
                if spec is not None and (spec.min is not None or spec.max is not None):
                    bounds[column] = (spec.min, spec.max)
    events = usecase.sources[usecase.events.source]
    for name in usecase.training.numeric:
        spec = events.column(name)
        if spec is not None and (spec.min is not None or spec.max is not None):
            bounds[name] = (spec.min, spec.max)
    return bounds


def training_set_expectations(usecase: UseCase, columns: list[str]) -> list[Any]:
    import great_expectations.expectations as gxe

    spec = usecase.training
    exps: list[Any] = [
        gxe.ExpectTableRowCountToBeBetween(min_value=spec.min_rows),
        gxe.ExpectColumnValuesToNotBeNull(column=LABEL),
    ]
    if usecase.task == "classification":
        exps.append(gxe.ExpectColumnValuesToBeInSet(column=LABEL, value_set=[0, 1]))
        low, high = spec.positive_rate
        exps.append(gxe.ExpectColumnMeanToBeBetween(column=LABEL, min_value=low, max_value=high))
    for column in columns:
        exps.append(gxe.ExpectColumnToExist(column=column))
        exps.append(
            gxe.ExpectColumnValuesToNotBeNull(column=column, mostly=1.0 - spec.max_null_share)
        )
    for column, (lo, hi) in _ranges(usecase).items():
        exps.append(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=lo, max_value=hi))
    return exps


def check_training_set(usecase: UseCase, frame: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    """Pass with a summary, or raise TrainingDataError naming every failed check."""
    failures, _ = run_expectations(
        frame, training_set_expectations(usecase, columns), "training_set"
    )
    summary = {
        "success": not failures,
        "rows": len(frame),
        "positive_rate": float(frame[LABEL].mean()) if usecase.task == "classification" else None,
        "failures": [f.as_dict() for f in failures],
    }
    if failures:
        reasons = "; ".join(f.reason for f in failures)
        raise TrainingDataError(f"the training set failed validation: {reasons}")
    return summary
