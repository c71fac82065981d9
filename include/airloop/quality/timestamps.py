"""A Great Expectations expectation of our own: the values are ISO 8601 timestamps.

The gate checks a timestamp column by the rule the feature pipeline reads it with
(``pd.to_datetime(..., format="ISO8601")`` in ``features.transforms``), so what passes the
gate can be read, and what cannot is quarantined instead of failing the build after it.
Great Expectations' own ``expect_column_values_to_be_dateutil_parseable`` accepts more than
the pipeline reads ("01/02/2013 5pm") and parses value by value with dateutil: a quarter of a
day's validation went there. This one is vectorised.

Importing the module registers the metric and the expectation with Great Expectations (their
classes register themselves), so import it before building a suite that uses them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

ISO8601_METRIC = "column_values.airloop_iso8601_timestamp"


def parses_as_iso8601(values: pd.Series) -> pd.Series:
    """True where a value is an ISO 8601 timestamp (text, or already a timestamp)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.notna()
    text = values.astype("string")
    return pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce").notna()


class ColumnValuesIso8601Timestamp(ColumnMapMetricProvider):
    """Per value: does it parse as an ISO 8601 timestamp (nulls are left to other checks)."""

    condition_metric_name = ISO8601_METRIC

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> pd.Series:
        return parses_as_iso8601(column)


class ExpectColumnValuesToBeIso8601Timestamps(ColumnMapExpectation):
    """Expect the column's values to be ISO 8601 timestamps, as the feature pipeline reads
    them (for example ``2013-01-01T05:00:00Z`` or ``2013-01-01 05:00:00+00:00``)."""

    map_metric: ClassVar[str] = ISO8601_METRIC
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)
    args_keys: ClassVar[tuple[str, ...]] = ("column",)


__all__ = ["ExpectColumnValuesToBeIso8601Timestamps", "parses_as_iso8601"]
