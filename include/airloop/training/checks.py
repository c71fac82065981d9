"""The training-set gate: label balance, missing features, feature ranges (Great Expectations)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from airloop.core.columns import LABEL
from airloop.core.records import Number, Record
from airloop.quality.expectations import columns_present, run_expectations
from airloop.training.dataset import TrainingDataError
from airloop.usecase import UseCase
from airloop.usecase.views import Bounds


class TrainingSetCheck(Record):
    """The training set passed its gate: its size and label balance."""

    success: bool
    rows: int
    positive_rate: Number = None


def input_bounds(usecase: UseCase) -> dict[str, Bounds]:
    """Declared bounds of every model input that has them (feature views, request fields)."""
    bounds: dict[str, Bounds] = {}
    for view in usecase.service_views:
        for name, limits in view.bounds(usecase).items():
            bounds[f"{view.name}__{name}"] = limits
    events = usecase.sources[usecase.events.source]
    for name in usecase.training.numeric:
        spec = events.column(name)
        if spec is not None and spec.bounds is not None:
            bounds[name] = spec.bounds
    return bounds


def training_set_expectations(usecase: UseCase, columns: list[str]) -> list[Any]:
    """The gate's checks: enough rows, labels present and balanced, inputs present and in range."""
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
    exps.append(columns_present(columns))
    for column in columns:
        allowed = spec.max_null_shares.get(column, spec.max_null_share)
        exps.append(gxe.ExpectColumnValuesToNotBeNull(column=column, mostly=1.0 - allowed))
    for column, (lo, hi) in input_bounds(usecase).items():
        exps.append(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=lo, max_value=hi))
    return exps


def check_training_set(
    usecase: UseCase, frame: pd.DataFrame, columns: list[str]
) -> TrainingSetCheck:
    """Pass with a summary, or raise TrainingDataError naming every failed check."""
    failures, _ = run_expectations(
        frame, training_set_expectations(usecase, columns), "training_set"
    )
    if failures:
        reasons = "; ".join(f.reason for f in failures)
        raise TrainingDataError(
            f"the training set failed validation: {reasons}{_null_hint(failures, len(frame))}"
        )
    return TrainingSetCheck(
        success=True,
        rows=len(frame),
        positive_rate=float(frame[LABEL].mean()) if usecase.task == "classification" else None,
    )


def _null_hint(failures: list[Any], rows: int) -> str:
    """What to do when features are missing on too many rows: most often a lag or a window that
    reaches further back than the data before the training window."""
    empty = [
        f.column
        for f in failures
        if f.check == "column_values_to_not_be_null" and f.column != LABEL
    ]
    if not empty:
        return ""
    return (
        f". {len(empty)} input(s) missing on too many of the {rows} rows: a lag or a window that"
        " reaches back before the first interval with data leaves its feature empty on the first"
        " rows; train on a longer window (a later end, or more intervals before it), or allow"
        " more missing values for these columns with training.max_null_shares in usecase.yaml"
    )
