"""``/invocations``: MLflow's scoring protocol under the use case's contract.

MLflow's own scoring code parses the request (JSON in any of its formats, CSV, Parquet) and
calls the model; :class:`CheckedModel` stands in for the model and checks the parsed table
first, by the rules ``/v1/predict`` applies to the same fields (``schema.field_rule``):

- a column that is not an input of the model is refused (MLflow would drop it silently);
- a request field (the entity keys and request-time inputs the model takes) must be present
  unless nullable, hold a number for a number (whole for an integer), finite, within its
  declared range, and a string within its declared value set; a column declaring ``mostly``
  below 1 admits values outside its range or set, as in ``/v1/predict``.

What it leaves to MLflow's signature check, and why: the features (``<view>__<feature>``),
which ``/v1/predict`` never takes from a caller (it reads them from the online store) and
whose declared ranges the training-set gate checks, are checked for their type only; the
calendar features (``event_<part>``), which ``/v1/predict`` computes from ``event_time``, are
inputs like features here. Integers may come as whole doubles (the signature records numbers
as doubles). A table without column names (a bare list of rows) cannot be checked by name and
is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from airloop.serving.errors import ApiError
from airloop.serving.schema import FieldRule, field_rule
from airloop.usecase import UseCase

MAX_NAMED = 20  # unknown columns named in one refusal


def request_rules(usecase: UseCase) -> dict[str, FieldRule]:
    """The rules of the fields a caller of ``/v1/predict`` sends, by name."""
    return {name: field_rule(usecase, name) for name in usecase.request_keys}


def column_problems(rule: FieldRule, values: pd.Series) -> list[str]:
    """What is wrong with a request field's column, each with its first row; [] if nothing."""
    problems: list[str] = []

    def report(bad: Any, what: str) -> None:
        rows = np.flatnonzero(np.asarray(bad, dtype=bool))
        if len(rows):
            more = f" and {len(rows) - 1} more" if len(rows) > 1 else ""
            problems.append(f"{what} (row {int(rows[0])}{more})")

    null = values.isna().to_numpy()
    if not rule.nullable:
        report(null, "must not be empty")
    if rule.kind in ("number", "integer"):
        if pd.api.types.is_bool_dtype(values):
            flags = np.ones(len(values), dtype=bool)
        elif pd.api.types.is_numeric_dtype(values):
            flags = np.zeros(len(values), dtype=bool)
        else:  # objects: a JSON true is not a number, as in /v1/predict
            flags = values.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
        numbers = pd.to_numeric(values.where(~flags), errors="coerce").to_numpy(dtype=float)
        report(~null & (flags | np.isnan(numbers)), "must be a number")
        with np.errstate(invalid="ignore"):
            report(np.isinf(numbers), "must be a finite number")
            finite = np.isfinite(numbers)
            if rule.kind == "integer":
                report(finite & (numbers % 1 != 0), "must be a whole number")
            if rule.minimum is not None:
                report(finite & (numbers < rule.minimum), f"must be at least {rule.minimum:g}")
            if rule.maximum is not None:
                report(finite & (numbers > rule.maximum), f"must be at most {rule.maximum:g}")
    elif rule.values is not None:
        allowed = ", ".join(rule.values)
        report(~null & ~values.isin(rule.values).to_numpy(), f"must be one of: {allowed}")
    return problems


def table_problems(
    rules: dict[str, FieldRule], input_columns: list[str], table: pd.DataFrame
) -> list[dict[str, str]]:
    """The table's problems by column, as ``/v1/predict`` names its fields; [] if none."""
    known = set(input_columns)
    unknown = [str(column) for column in table.columns if column not in known]
    problems = [
        {"field": column[:100], "problem": "not an input of the model"}
        for column in unknown[:MAX_NAMED]
    ]
    for column in input_columns:
        rule = rules.get(column)
        if rule is None:
            continue
        if column not in table.columns:
            if not rule.nullable:
                problems.append({"field": column, "problem": "missing"})
            continue
        for problem in column_problems(rule, table[column]):
            problems.append({"field": column, "problem": problem})
    return problems


class CheckedModel:
    """The served pyfunc as MLflow's scoring code calls it: the parsed table is checked first.

    MLflow turns any error of ``predict`` into its own, so a refusal is kept here
    (``refusal``) for the route to answer with; one instance per request.
    """

    def __init__(self, pyfunc: Any, input_columns: list[str], rules: dict[str, FieldRule]):
        self.pyfunc, self.input_columns, self.rules = pyfunc, input_columns, rules
        self.metadata = pyfunc.metadata
        self.refusal: ApiError | None = None

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Check the table, then let the model score it."""
        if isinstance(data, dict):
            data = pd.DataFrame(data)
        if not isinstance(data, pd.DataFrame):
            self.refusal = ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                "send a table with named columns (dataframe_split, dataframe_records, inputs as"
                " columns, instances as records, or CSV with a header); expected columns: "
                + ", ".join(self.input_columns),
            )
            raise ValueError(self.refusal.message)
        problems = table_problems(self.rules, self.input_columns, data)
        if problems:
            self.refusal = ApiError(  # 400, as MLflow answers any input it cannot score
                400,
                "INVALID_PARAMETER_VALUE",
                "the input does not match the use case's declared columns (expected columns: "
                + ", ".join(self.input_columns)
                + ")",
                problems,
            )
            raise ValueError(self.refusal.message)
        return self.pyfunc.predict(data, params=params)
