"""The ``lag`` kind: each column's value some time ago, per entity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from typing_extensions import override

from airloop.usecase.base import Duration, window_suffix
from airloop.usecase.views.base import (
    Bounds,
    FeatureDtype,
    UseCaseContext,
    ViewInputs,
    snapshot_rows,
)
from airloop.usecase.views.history import FromSourceHistory

if TYPE_CHECKING:
    import pandas as pd


class LagView(FromSourceHistory):
    """Per entity, each column's value ``lag`` ago: ``<column>_lag_<lag>``.

    The value of the entity's latest row with a time at or before ``as_of - lag`` that is known
    at ``as_of``; rows older than the longest lag plus ``available_after`` are not searched.
    """

    kind: Literal["lag"]
    columns: list[str] = Field(min_length=1)
    lags: list[Duration] = Field(min_length=1)

    @override
    def _reach(self) -> Any:
        return max(self.lags)

    @override
    def _spans(self) -> dict[str, list[Any]]:
        return {"lag": list(self.lags)}

    @override
    def _value_columns(self, usecase: UseCaseContext) -> list[str]:
        return list(dict.fromkeys(self.columns))

    def _dtype(self, usecase: UseCaseContext, column: str) -> FeatureDtype:
        return "string" if self._source(usecase).column_type(column) == "string" else "float"

    @override
    def feature_dtypes(self, usecase: UseCaseContext) -> dict[str, FeatureDtype]:
        return {
            f"{column}_lag_{window_suffix(lag)}": self._dtype(usecase, column)
            for lag in self.lags
            for column in self.columns
        }

    @override
    def check(self, usecase: UseCaseContext) -> None:
        super().check(usecase)
        for column in self.columns:
            if self._source(usecase).column_type(column) == "timestamp":
                raise ValueError(
                    f"feature view {self.name!r}: {self.source}.{column} is a timestamp;"
                    " lag numbers or text"
                )

    @override
    def bounds(self, usecase: UseCaseContext) -> dict[str, Bounds]:
        out: dict[str, Bounds] = {}
        for lag in self.lags:
            for column in self.columns:
                limits = self._column_bounds(usecase, column)
                if limits is not None and self._dtype(usecase, column) == "float":
                    out[f"{column}_lag_{window_suffix(lag)}"] = limits
        return out

    @override
    def compute(self, usecase: UseCaseContext, inputs: ViewInputs) -> pd.DataFrame | None:
        import pandas as pd

        as_of = inputs.start
        since = as_of - self._reach() - self._source(usecase).available_after
        rows = self.known_rows(usecase, inputs, since)
        if rows is None:
            return None
        key, stamp = usecase.entity(self.entity).join_key, self._timestamp(usecase)
        entities = pd.Index(sorted(rows[key].unique()), name=key)
        out = pd.DataFrame(index=entities)
        for lag in self.lags:
            latest = rows[rows[stamp] <= as_of - lag].drop_duplicates(key, keep="last")
            latest = latest.set_index(key)
            for column in self.columns:
                name = f"{column}_lag_{window_suffix(lag)}"
                values = latest[column].reindex(entities)
                if self._dtype(usecase, column) == "float":
                    out[name] = pd.to_numeric(values, errors="coerce").astype("float64")
                else:
                    out[name] = values.astype(object).where(values.notna(), None)
        return snapshot_rows(usecase, self.entity, out, as_of, self.feature_names(usecase))
