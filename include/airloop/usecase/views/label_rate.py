"""The ``label_rate`` kind: what the labels known at each interval start say, per entity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field
from typing_extensions import override

from airloop.core.columns import AVAILABLE_AT, EVENT_ID, EVENT_TS, EVENTS_TABLE, LABEL, LABELS_TABLE
from airloop.usecase.base import Duration, window_suffix
from airloop.usecase.views.base import (
    Bounds,
    FeatureDtype,
    FeatureViewKind,
    UseCaseContext,
    ViewInputs,
    snapshot_rows,
)

if TYPE_CHECKING:
    import pandas as pd


class LabelRateView(FeatureViewKind):
    """Per entity, over each window, what the labels known at the interval start say.

    Classification: ``share_<w>`` (the share of positives) and ``count_<w>``; regression:
    ``mean_<w>``, ``std_<w>``, ``last_<w>`` (the latest event's label) and ``count_<w>``. A
    label counts if its event happened within the window before the snapshot, and the label
    had arrived at or before it (the boundary rule): no feature sees its own future.
    """

    kind: Literal["label_rate"]
    windows: list[Duration] = Field(min_length=1)

    @override
    def moves_within_interval(self) -> bool:
        return False

    def _statistics(self, usecase: UseCaseContext) -> list[str]:
        if usecase.task == "classification":
            return ["share", "count"]
        return ["mean", "std", "last", "count"]

    @override
    def feature_dtypes(self, usecase: UseCaseContext) -> dict[str, FeatureDtype]:
        dtypes: dict[str, FeatureDtype] = {}
        for window in self.windows:
            suffix = window_suffix(window)
            for stat in self._statistics(usecase):
                dtypes[f"{stat}_{suffix}"] = "int" if stat == "count" else "float"
        return dtypes

    @override
    def bounds(self, usecase: UseCaseContext) -> dict[str, Bounds]:
        out: dict[str, Bounds] = {}
        for window in self.windows:
            suffix = window_suffix(window)
            out[f"count_{suffix}"] = (0.0, None)
            if usecase.task == "classification":
                out[f"share_{suffix}"] = (0.0, 1.0)
            else:
                out[f"std_{suffix}"] = (0.0, None)
        return out

    @override
    def history_since(
        self, usecase: UseCaseContext, as_of: pd.Timestamp
    ) -> dict[str, pd.Timestamp]:
        # Events as old as the longest window, whose labels arrive up to the label delay later.
        since = as_of - max(self.windows) - usecase.label.delay
        return {LABELS_TABLE: since, EVENTS_TABLE: since}

    @override
    def compute(self, usecase: UseCaseContext, inputs: ViewInputs) -> pd.DataFrame | None:
        labels, events = inputs.history(LABELS_TABLE), inputs.history(EVENTS_TABLE)
        if labels is None or events is None:
            return None
        return self.rates(usecase, labels, events, inputs.start)

    def rates(
        self,
        usecase: UseCaseContext,
        labels: pd.DataFrame,
        events: pd.DataFrame,
        as_of: pd.Timestamp,
    ) -> pd.DataFrame | None:
        """The statistics as known at ``as_of`` from these labels and their events."""
        import pandas as pd

        key = usecase.entity(self.entity).join_key
        known = labels[
            (labels[AVAILABLE_AT] <= as_of)
            & (labels[EVENT_TS] < as_of)
            & (labels[EVENT_TS] >= as_of - max(self.windows))
        ]
        joined = known[[EVENT_ID, EVENT_TS, LABEL]].merge(
            events[[EVENT_ID, key]].drop_duplicates(EVENT_ID), on=EVENT_ID, how="inner"
        )
        joined = joined.dropna(subset=[key]).sort_values([EVENT_TS, EVENT_ID], kind="stable")
        if joined.empty:
            return None
        entities = pd.Index(sorted(joined[key].unique()), name=key)
        out = pd.DataFrame(index=entities)
        for window in self.windows:
            suffix = window_suffix(window)
            grouped = joined[joined[EVENT_TS] >= as_of - window].groupby(key)[LABEL]
            for stat in self._statistics(usecase):
                if stat == "count":
                    counts = grouped.size().reindex(entities).fillna(0)
                    out[f"count_{suffix}"] = counts.astype("Int64")
                else:
                    values = grouped.mean() if stat == "share" else grouped.agg(stat)
                    out[f"{stat}_{suffix}"] = values.reindex(entities).astype("float64")
        return snapshot_rows(usecase, self.entity, out, as_of, self.feature_names(usecase))
