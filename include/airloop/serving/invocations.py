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
MEDIA_TYPES = ("application/json", "text/csv", "application/vnd.apache.parquet")


def scoring_media_type(content_type: str) -> str:
    """The body's media type as MLflow's scoring code compares it (lower case, no parameters),
    or a 415 for one it would refuse (MLflow answers that in plain text, the service in its
    own JSON error)."""
    media_type, *parameters = (part.strip() for part in content_type.split(";"))
    if media_type.lower() not in MEDIA_TYPES:
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", f"send one of: {', '.join(MEDIA_TYPES)}")
    for parameter in filter(None, parameters):
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
            raise ApiError(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "the only parameter the body's Content-Type may have is charset=utf-8",
            )
    return media_type.lower()


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


def as_signature_says(table: pd.DataFrame, metadata: Any) -> pd.DataFrame:
    """The table as the model takes it, where MLflow's own reading of the protocol stops short.

    - An optional input (``required: false`` in the signature) that is absent becomes a column
      of missing values, as ``/v1/predict`` gives the model a feature the store lacks: MLflow
      lets it through absent, and the model then fails on it (JSON bodies are read with every
      signature column already).
    - A double column of whole numbers or of nothing becomes doubles: MLflow refuses int64 for
      a double ("can not safely convert") and the model fails on a column of None; a Parquet
      or CSV table has them. Values past 2**53 lose precision, as any double does.
    """
    schema = metadata.get_input_schema() if metadata is not None else None
    if schema is None:
        return table
    doubles = {
        spec.name for spec in schema.inputs if str(getattr(spec.type, "name", "")) == "double"
    }
    absent = [
        spec.name
        for spec in schema.inputs
        if not getattr(spec, "required", True) and spec.name not in table.columns
    ]
    if absent:
        filler = pd.DataFrame(
            {name: np.full(len(table), np.nan if name in doubles else None) for name in absent},
            index=table.index,
        )
        table = pd.concat([table, filler], axis=1)
    cast = [
        column
        for column in table.columns
        if column in doubles
        and (
            (
                pd.api.types.is_integer_dtype(table[column])
                and not pd.api.types.is_bool_dtype(table[column])
            )
            or (table[column].dtype == object and bool(table[column].isna().all()))
        )
    ]
    return table.astype(dict.fromkeys(cast, "float64")) if cast else table


def signature_rules(rules: dict[str, FieldRule], metadata: Any) -> dict[str, FieldRule]:
    """The request fields' rules, and for every other input its type from the signature (a
    number must be a number: a CSV cell "False" is not 0)."""
    schema = metadata.get_input_schema() if metadata is not None else None
    if schema is None:
        return rules
    kinds = {"double": "number", "float": "number", "long": "integer", "integer": "integer"}
    typed = {
        spec.name: FieldRule(kind=kinds[kind], nullable=True)
        for spec in schema.inputs
        if (kind := str(getattr(spec.type, "name", ""))) in kinds
    }
    return {**typed, **rules}


JSON_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def json_form_problem(body: dict[str, Any]) -> ApiError | None:
    """A 400 for a JSON body that is not one of the protocol's forms: MLflow scores the first
    form it finds and ignores every other key (a misspelt ``parms``, a second form), so a
    caller would never learn that part of the request was dropped. None: one form."""
    forms = [key for key in body if key in JSON_FORMATS]
    unknown = [str(key)[:100] for key in body if key not in JSON_FORMATS and key != "params"]
    problems = [{"field": key, "problem": "not a key of the scoring protocol"} for key in unknown]
    if len(forms) > 1:
        problems += [{"field": key, "problem": "only one form per request"} for key in forms]
    if "params" in body and not isinstance(body["params"], dict):
        problems.append({"field": "params", "problem": "must be an object"})
    if not problems:
        return None
    return ApiError(
        400,
        "INVALID_PARAMETER_VALUE",
        "send one of " + ", ".join(JSON_FORMATS) + " (and, optionally, params)",
        problems[:MAX_NAMED],
    )


def json_table(body: dict[str, Any]) -> pd.DataFrame | None:
    """The table of a JSON form, with the JSON types it was sent with; None when it is not a
    table with named columns (MLflow's parse, or :class:`CheckedModel`, refuses it)."""
    value = next((body[key] for key in JSON_FORMATS if key in body), None)
    if isinstance(value, dict) and "columns" in value and "data" in value:  # dataframe_split
        return pd.DataFrame(data=value["data"], columns=value["columns"])
    if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
        return pd.DataFrame(value)
    if isinstance(value, dict) and all(isinstance(column, list) for column in value.values()):
        return pd.DataFrame(value)  # inputs as columns
    return None


def table_as_sent(data: bytes, media_type: str) -> pd.DataFrame | None:
    """The body's table with the types it was sent with, for the checks: MLflow reads every
    form by the signature's types, which turns a ``false`` or a CSV cell "False" in a number
    column into 0.0. A JSON body that is not one of the protocol's forms is a 400 (see
    :func:`json_form_problem`). None: not a table (MLflow's own parse answers it)."""
    import io
    import json

    try:
        if media_type == "application/json":
            body = json.loads(data)
            if not isinstance(body, dict):
                return None
            problem = json_form_problem(body)
            if problem is not None:
                raise problem
            return json_table(body)
        if media_type == "text/csv":
            return pd.read_csv(io.BytesIO(data))
        if media_type == "application/vnd.apache.parquet":
            return pd.read_parquet(io.BytesIO(data))
    except ApiError:
        raise
    except Exception:  # not a table: MLflow's own parse answers it
        return None
    return None


class CheckedModel:
    """The served pyfunc as MLflow's scoring code calls it: the parsed table is checked first.

    MLflow turns any error of ``predict`` into its own, so a refusal is kept here
    (``refusal``) for the route to answer with; one instance per request.
    """

    def __init__(
        self,
        pyfunc: Any,
        input_columns: list[str],
        rules: dict[str, FieldRule],
        sent: pd.DataFrame | None = None,
    ):
        self.pyfunc, self.input_columns, self.rules = pyfunc, input_columns, rules
        self.metadata = pyfunc.metadata
        self.sent = sent  # a CSV or Parquet body's table as sent (:func:`table_as_sent`)
        self.refusal: ApiError | None = None

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Check the table, then let the model score it."""
        if isinstance(data, dict):
            data = self.table_of(data)
        if not isinstance(data, pd.DataFrame) and self.sent is not None:
            data = self.sent  # records MLflow left as a list (``inputs`` with ``params``)
        if not isinstance(data, pd.DataFrame):
            self.refusal = ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                "send a table with named columns (dataframe_split, dataframe_records, inputs as"
                " columns, instances as records, or CSV with a header); expected columns: "
                + ", ".join(self.input_columns),
            )
            raise ValueError(self.refusal.message)
        checked = self.sent if self.sent is not None else data
        problems = table_problems(
            signature_rules(self.rules, self.metadata), self.input_columns, checked
        )
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
        return self.pyfunc.predict(as_signature_says(data, self.metadata), params=params)

    def table_of(self, columns: dict[str, Any]) -> pd.DataFrame:
        """The table of MLflow's columns. ``instances`` records that leave out an optional
        column (as ``dataframe_records`` may) come out of MLflow's parse as columns of unequal
        lengths, which MLflow then fails to score; the records as sent, a left-out value
        missing, are that table."""
        lengths = {len(v) for v in columns.values() if isinstance(v, list | np.ndarray)}
        if len(lengths) > 1 and self.sent is not None:
            return self.sent
        return pd.DataFrame(columns)
