"""The validation gate: Great Expectations suites built from the use case's source schemas."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from airloop.core.records import plain
from airloop.usecase import SourceSpec

_TYPE_LISTS = {
    "string": ["object", "str", "string", "StringDtype"],
    "number": ["int8", "int16", "int32", "int64", "Int64", "float32", "float64", "Float64"],
    "integer": ["int8", "int16", "int32", "int64", "Int64", "float64"],
    "bool": ["bool", "boolean"],
}


@dataclass
class Failure:
    """One failed check, worded for the person who must fix the data."""

    source: str
    check: str
    column: str | None
    reason: str
    examples: list[Any] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The failure as JSON, for reports."""
        return {
            "source": self.source,
            "check": self.check,
            "column": self.column,
            "reason": self.reason,
            "examples": self.examples,
        }


def _quiet_gx() -> None:
    """Great Expectations at WARNING; one of its modules sets its own logger to INFO when it
    is imported (a line per context about a temporary docs folder), so this runs again after."""
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)


def build_expectations(spec: SourceSpec, start: datetime | None = None) -> list[Any]:
    """The suite for one source: schema, types, nulls, ranges, value sets, keys, row count
    (for the interval starting at ``start``: before ``allow_empty_before``, any count)."""
    _quiet_gx()
    import great_expectations.expectations as gxe

    from airloop.quality.timestamps import ExpectColumnValuesToBeIso8601Timestamps

    exps: list[Any] = [columns_present([col.name for col in spec.columns])]
    for col in spec.columns:
        if col.type == "timestamp":
            exps.append(ExpectColumnValuesToBeIso8601Timestamps(column=col.name))
        else:
            exps.append(
                gxe.ExpectColumnValuesToBeInTypeList(
                    column=col.name, type_list=_TYPE_LISTS[col.type]
                )
            )
        if not col.nullable:
            exps.append(gxe.ExpectColumnValuesToNotBeNull(column=col.name))
        if col.min is not None or col.max is not None:
            exps.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=col.name, min_value=col.min, max_value=col.max, mostly=col.mostly
                )
            )
        if col.values is not None:
            exps.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=col.name, value_set=col.values, mostly=col.mostly
                )
            )
    if spec.unique:
        keys: list[str] = []
        for key in spec.unique:  # a derived key is unique when the columns it is built from are
            keys += [c for c in spec.raw_inputs(key) if c not in keys]
        if len(keys) == 1:
            exps.append(gxe.ExpectColumnValuesToBeUnique(column=keys[0]))
        else:
            exps.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=keys))
    exps.append(
        gxe.ExpectTableRowCountToBeBetween(
            min_value=spec.min_rows if start is None else spec.min_rows_at(start),
            max_value=spec.max_rows,
        )
    )
    return exps


def columns_present(columns: list[str]) -> Any:
    """One check that every one of these columns exists (others may too), rather than one per
    column: Great Expectations spends about a millisecond of bookkeeping on each expectation,
    whatever it checks (a day's validation took 0.62 s instead of 0.65 s)."""
    import great_expectations.expectations as gxe

    return gxe.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=False)


def frame_for_validation(df: pd.DataFrame, spec: SourceSpec) -> pd.DataFrame:
    """A true/false column with no value in this partition (read as floats) as empty objects.
    (Timestamps already typed by the file format pass the timestamp check as they are.)"""
    out = df.copy()
    for col in spec.columns:
        if col.name not in out:
            continue
        values = out[col.name]
        if col.type == "bool" and values.isna().all():
            out[col.name] = values.astype(object)
    return out


def ephemeral_context() -> Any:
    """A Great Expectations context that keeps nothing, for the frames of one validation.

    One per partition rather than one per source: creating a context and its first data
    source serialises the context's whole configuration (about 0.1 s a source here).
    """
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    _quiet_gx()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def suite_fingerprint(expectations: list[Any], spec: SourceSpec) -> str:
    """What a source's validation checks, as a digest: its expectations and the checks made
    beside them from its spec (``extra_columns``); equal digests, equal validations."""
    import great_expectations as gx

    configs = [e.configuration.to_json_dict() for e in expectations]
    text = json.dumps([gx.__version__, configs, spec.extra_columns], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def run_expectations(
    df: pd.DataFrame,
    expectations: list[Any],
    name: str,
    missing: set[str] | None = None,
    context: Any = None,
) -> tuple[list[Failure], dict[str, Any]]:
    """Run a list of expectations on a frame in an ephemeral context; failures worded for people.

    The suite is validated against the batch directly, not stored in the context first: the
    context's stores serialise every expectation they are given: a day of flights took 1.1 s
    that way, 0.3 s this way. ``context``: one from :func:`ephemeral_context` shared by the
    frames of one validation (each ``name`` once in it).
    """
    import great_expectations as gx

    context = context if context is not None else ephemeral_context()
    batch = (
        context.data_sources.add_pandas(f"{name}_source")
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe(f"{name}_batch")
        .get_batch(batch_parameters={"dataframe": df})
    )
    # BASIC: the count and the first unexpected values, all a failure's wording uses; the
    # default (SUMMARY) also counts each unexpected value and lists its index, which made a
    # day's validation about a third slower.
    result = batch.validate(
        gx.ExpectationSuite(name=f"{name}_suite", expectations=expectations),
        result_format="BASIC",
    )
    failures = [
        f for r in result.results if not r.success for f in _describe(name, r, missing or set())
    ]
    return failures, result.to_json_dict()


def validate_frame(
    df: pd.DataFrame,
    spec: SourceSpec,
    source: str,
    start: datetime | None = None,
    context: Any = None,
    expectations: list[Any] | None = None,
) -> tuple[list[Failure], dict[str, Any]]:
    """Run the source's suite (``expectations``: already built); returns the failures and
    GX's own result as JSON."""
    missing = {c.name for c in spec.columns} - set(df.columns)
    suite = expectations if expectations is not None else build_expectations(spec, start)
    failures, raw = run_expectations(
        frame_for_validation(df, spec), suite, source, missing, context
    )
    extra = sorted(set(df.columns) - {c.name for c in spec.columns})
    raw["ignored_columns"] = extra
    return failures + schema_changes(failures, spec, source, extra), raw


def schema_changes(
    failures: list[Failure], spec: SourceSpec, source: str, extra: list[str]
) -> list[Failure]:
    """A file's columns against the use case's: a column the file adds is refused when the
    source says ``extra_columns: refuse`` (else read and listed as ignored); a missing column's
    failure names the columns the file has instead, as a renamed column leaves one of each.
    """
    if not extra:
        return []
    for failure in failures:
        if failure.check == "column_to_exist":
            failure.reason += (
                f"; the file has columns the use case does not declare: {extra} (renamed?):"
                " rename it back in the data, or declare the new name in usecase.yaml"
            )
    if spec.extra_columns != "refuse":
        return []
    return [
        Failure(
            source,
            "no_extra_columns",
            column,
            f"column {column!r} is not declared in the use case and the source refuses extra"
            " columns (extra_columns: refuse): declare it in usecase.yaml, set extra_columns:"
            " ignore, or remove it from the data",
        )
        for column in extra
    ]


def _describe(source: str, r: Any, missing: set[str]) -> list[Failure]:
    """A failed expectation as failures worded for people: one per missing column, else one."""
    cfg = r.expectation_config
    column = cfg.kwargs.get("column")
    kind = cfg.type.removeprefix("expect_")
    res = r.result or {}
    if kind == "table_columns_to_match_set":
        absent = (res.get("details") or {}).get("mismatched", {}).get("missing") or []
        return [Failure(source, "column_to_exist", c, f"column {c!r} is missing") for c in absent]
    if column in missing:
        return []  # reported once, by the check that the columns exist
    examples = list(res.get("partial_unexpected_list") or [])[:5]
    count = res.get("unexpected_count")
    if r.exception_info and r.exception_info.get("raised_exception"):
        reason = f"could not be checked: {r.exception_info.get('exception_message', '')[:200]}"
    elif kind == "table_row_count_to_be_between":
        reason = (
            f"row count {res.get('observed_value')} outside "
            f"[{cfg.kwargs.get('min_value')}, {cfg.kwargs.get('max_value') or 'any'}]"
        )
    elif kind == "column_values_to_be_in_type_list":
        reason = f"column {column!r} has the wrong type (found {res.get('observed_value') or 'mixed values'})"
    elif kind == "column_values_to_not_be_null":
        reason = f"column {column!r} has {count} null values"
    elif kind == "column_values_to_be_between":
        reason = (
            f"column {column!r} has {count} values outside "
            f"[{cfg.kwargs.get('min_value')}, {cfg.kwargs.get('max_value')}]"
        )
    elif kind == "column_values_to_be_in_set":
        reason = f"column {column!r} has {count} values outside the allowed set"
    elif kind == "column_values_to_be_iso8601_timestamps":
        reason = f"column {column!r} has {count} values that are not ISO 8601 timestamps"
    elif kind == "column_mean_to_be_between":
        reason = (
            f"column {column!r} has mean {res.get('observed_value')} outside "
            f"[{cfg.kwargs.get('min_value')}, {cfg.kwargs.get('max_value')}]"
        )
    elif kind in ("column_values_to_be_unique", "compound_columns_to_be_unique"):
        keys = column or cfg.kwargs.get("column_list")
        reason = f"key {keys} has {count} duplicate rows"
    else:
        reason = f"{kind} failed"
    return [Failure(source, kind, column, reason, [plain(x) for x in examples])]
