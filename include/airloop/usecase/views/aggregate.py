"""The ``aggregate`` kind: statistics of a source's columns over past windows, per entity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field
from typing_extensions import override

from airloop.usecase.base import Spec, window_suffix
from airloop.usecase.views.base import (
    Bounds,
    FeatureDtype,
    UseCaseContext,
    ViewInputs,
    snapshot_rows,
)
from airloop.usecase.views.history import Windowed

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


AggregateFunction = Literal["mean", "sum", "min", "max", "std", "count", "last"]


class AggregateSpec(Spec):
    """A numeric column of the source and the statistics taken of it over each window."""

    column: str
    functions: list[AggregateFunction] = Field(min_length=1)


class AggregateView(Windowed):
    """Per entity, statistics of a source's columns over past windows: ``<column>_<function>_<w>``.

    A window ``w`` holds the known rows whose time is in [as_of - w, as_of). ``count``: rows
    with a value; ``std``: the sample standard deviation (missing for one row); ``last``: the
    latest value present; ``sum`` of no values is missing, not 0.

    ``every``: snapshots at the interval start and then every ``every`` within the interval
    (hourly state of an airport in a daily pipeline), each from the rows known at its own
    moment; without it, one snapshot at the interval start.
    """

    kind: Literal["aggregate"]
    aggregates: list[AggregateSpec] = Field(min_length=1)

    @override
    def _value_columns(self, usecase: UseCaseContext) -> list[str]:
        return list(dict.fromkeys(a.column for a in self.aggregates))

    @override
    def feature_dtypes(self, usecase: UseCaseContext) -> dict[str, FeatureDtype]:
        dtypes: dict[str, FeatureDtype] = {}
        for window in self.windows:
            for agg in self.aggregates:
                for function in agg.functions:
                    name = f"{agg.column}_{function}_{window_suffix(window)}"
                    dtypes[name] = "int" if function == "count" else "float"
        return dtypes

    @override
    def check(self, usecase: UseCaseContext) -> None:
        super().check(usecase)
        source = self._source(usecase)
        for column in self._value_columns(usecase):
            if source.column_type(column) not in ("number", "integer", "bool"):
                raise ValueError(
                    f"feature view {self.name!r}: {self.source}.{column} is"
                    f" {source.column_type(column)}, and only numbers can be aggregated"
                )

    @override
    def bounds(self, usecase: UseCaseContext) -> dict[str, Bounds]:
        out: dict[str, Bounds] = {}
        for window in self.windows:
            suffix = window_suffix(window)
            for agg in self.aggregates:
                limits = self._column_bounds(usecase, agg.column)
                for function in agg.functions:
                    name = f"{agg.column}_{function}_{suffix}"
                    if function in ("count", "std"):
                        out[name] = (0.0, None)
                    elif function != "sum" and limits is not None:
                        out[name] = limits
        return out

    @override
    def compute(self, usecase: UseCaseContext, inputs: ViewInputs) -> pd.DataFrame | None:
        """Every snapshot of the interval in one pass.

        The known rows are read and sorted by time once. A snapshot's rows are a contiguous
        run of them: from its window's start to what is known at its moment (knowing only
        grows with time). The runs of all snapshots, stacked with the snapshot's number, are
        grouped once per window: 24 hourly snapshots cost a group-by, not 24.
        """
        import numpy as np
        import pandas as pd

        times = self.snapshot_times(inputs.start, inputs.end)
        known = self.known_rows(usecase, inputs, times[0] - self._reach(), times[-1])
        if known is None:
            return None
        key, stamp = usecase.entity(self.entity).join_key, self._timestamp(usecase)
        available_after = self._source(usecase).available_after
        order = pd.DatetimeIndex(known[stamp])

        def first_at_or_after(moments: list[pd.Timestamp]) -> np.ndarray:
            return np.asarray(order.searchsorted(pd.DatetimeIndex(moments), side="left"))

        # Known at t: time <= t - available_after, and before t (the rule of known_at).
        ends = np.minimum(
            np.asarray(
                order.searchsorted(pd.DatetimeIndex([t - available_after for t in times]), "right")
            ),
            first_at_or_after(times),
        )

        def stacked(starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """The row positions of every snapshot's run, and the snapshot each belongs to."""
            lengths = np.maximum(ends - starts, 0)
            rows = [np.arange(lo, lo + n) for lo, n in zip(starts, lengths, strict=True)]
            positions = np.concatenate(rows) if rows else np.array([], dtype=int)
            return positions, np.repeat(np.arange(len(times)), lengths)

        positions, snapshot = stacked(first_at_or_after([t - self._reach() for t in times]))
        if not len(positions):
            return None
        pairs = (
            pd.DataFrame({"_snapshot": snapshot, key: known[key].to_numpy()[positions]})
            .drop_duplicates()
            .sort_values(["_snapshot", key], kind="stable")
        )
        entities = pd.MultiIndex.from_frame(pairs)
        values = {
            column: pd.to_numeric(known[column], errors="coerce").to_numpy()
            for column in self._value_columns(usecase)
        }
        out = pd.DataFrame(index=entities)
        for window in self.windows:
            positions, snapshot = stacked(first_at_or_after([t - window for t in times]))
            groups = [snapshot, known[key].to_numpy()[positions]]
            for agg in self.aggregates:
                grouped = pd.Series(values[agg.column][positions]).groupby(groups, sort=False)
                for function in agg.functions:
                    name = f"{agg.column}_{function}_{window_suffix(window)}"
                    if function == "count":
                        counted = grouped.count().reindex(entities)
                        out[name] = counted.fillna(0).astype("Int64").array
                    else:
                        result = (
                            grouped.sum(min_count=1) if function == "sum" else grouped.agg(function)
                        )
                        out[name] = result.reindex(entities).astype("float64").to_numpy()
        moments = pd.DatetimeIndex(times).as_unit(times[0].unit)
        stamps = moments[out.index.get_level_values("_snapshot").to_numpy()]
        out = out.droplevel("_snapshot")
        return snapshot_rows(usecase, self.entity, out, stamps, self.feature_names(usecase))
