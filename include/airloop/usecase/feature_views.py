"""The kinds of feature view a use case can declare: one class per kind, in this one place.

A kind knows the fields its YAML takes and how they must refer to the rest of the use case,
the features it produces and their types (Feast's schema is built from them), the bounds the
training-set gate checks, and how one interval's rows are computed, point-in-time correct:
every row carries ``event_timestamp``, the moment from which its values were known, and Feast's
as-of join hands an event only rows stamped at or before it. The feature pipeline, the Feast
definitions and the training checks ask the class; none of them branches on the kind.

To add a kind: subclass :class:`FeatureViewKind` with a ``kind`` literal, and add the class to
:data:`FeatureView` below. pandas is imported inside ``compute`` so that loading a use case
(which every DAG file does) stays light.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field
from typing_extensions import override

from airloop.core.columns import AVAILABLE_AT, EVENT_ID, EVENT_TS, EVENTS_TABLE, LABEL, LABELS_TABLE
from airloop.usecase.base import Duration, Spec, window_suffix

if TYPE_CHECKING:
    import pandas as pd

    from airloop.usecase.model import UseCase

FeatureDtype = Literal["float", "int", "string"]
PANDAS_DTYPES: dict[str, str] = {"float": "float64", "int": "Int64", "string": "object"}
Bounds = tuple[float | None, float | None]


@dataclass(frozen=True)
class ViewInputs:
    """What a view's rows for one interval [start, end) are computed from.

    ``sources``: the interval's cleaned partitions and the current reference tables, by source
    name. ``history(table)``: rows of one of airloop's own offline tables (events, labels)
    published by the intervals before ``start``, as far back as the longest ``lookback`` of
    the use case's views asks; None when there are none.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    sources: Mapping[str, pd.DataFrame]
    history: Callable[[str], pd.DataFrame | None]


class FeatureSpec(Spec):
    """A feature taken from a source column (``column``, default: the feature's own name)."""

    name: str
    column: str | None = None
    dtype: FeatureDtype = "float"

    @property
    def source_column(self) -> str:
        """The raw column the feature is read from."""
        return self.column or self.name


class FeatureViewKind(Spec):
    """What every feature view declares: its name, entity, time to live and description."""

    kind: str
    name: str
    entity: str
    ttl: Duration
    description: str = ""

    @abstractmethod
    def feature_dtypes(self) -> dict[str, FeatureDtype]:
        """The view's features and their types, in order."""

    @abstractmethod
    def compute(self, usecase: UseCase, inputs: ViewInputs) -> pd.DataFrame | None:
        """The interval's rows: the entity key, ``event_timestamp`` and the features.

        None, or no rows, when the interval gives nothing (the pipeline then writes an empty
        table with the view's schema).
        """

    def feature_names(self) -> list[str]:
        """The view's features, in order."""
        return list(self.feature_dtypes())

    def check(self, usecase: UseCase) -> None:
        """Refuse references to what the use case does not declare (raise ValueError)."""

    def bounds(self, usecase: UseCase) -> dict[str, Bounds]:
        """Declared ranges of the view's features, which the training-set gate checks."""
        return {}

    def lookback(self, usecase: UseCase) -> timedelta | None:
        """How much history before an interval ``compute`` reads (None: none)."""
        return None

    def empty(self, usecase: UseCase) -> pd.DataFrame:
        """A zero-row table with the view's schema, so readers see the columns they expect."""
        import pandas as pd

        key = usecase.entity(self.entity).join_key
        cols: dict[str, pd.Series] = {
            key: pd.Series([], dtype=object),
            EVENT_TS: pd.Series([], dtype="datetime64[ns, UTC]"),
        }
        for name, dtype in self.feature_dtypes().items():
            cols[name] = pd.Series([], dtype=PANDAS_DTYPES[dtype])
        return pd.DataFrame(cols)


class _FromSource(FeatureViewKind):
    """A view whose features are columns of one declared source."""

    source: str
    features: list[FeatureSpec] = Field(min_length=1)

    @override
    def feature_dtypes(self) -> dict[str, FeatureDtype]:
        return {f.name: f.dtype for f in self.features}

    @override
    def check(self, usecase: UseCase) -> None:
        source = usecase.source(self.source, f"feature view {self.name!r} source")
        cols = set(source.output_columns())
        wanted = [usecase.entity(self.entity).join_key, *self._source_columns()]
        missing = [c for c in wanted if c not in cols]
        if missing:
            raise ValueError(f"feature view {self.name!r}: {self.source!r} lacks {missing}")

    def _source_columns(self) -> list[str]:
        return [f.source_column for f in self.features]

    @override
    def bounds(self, usecase: UseCase) -> dict[str, Bounds]:
        source = usecase.sources[self.source]
        out: dict[str, Bounds] = {}
        for feature in self.features:
            spec = source.column(feature.source_column)
            if spec is not None and spec.bounds is not None:
                out[feature.name] = spec.bounds
        return out

    def _typed(self, rows: pd.DataFrame) -> dict[str, pd.Series]:
        return {f.name: rows[f.source_column].astype(PANDAS_DTYPES[f.dtype]) for f in self.features}


class SourceRowsView(_FromSource):
    """Rows of a partitioned source, as-of joined on their own timestamp (hourly weather)."""

    kind: Literal["source_rows"]
    timestamp: str

    def _source_columns(self) -> list[str]:
        return [*super()._source_columns(), self.timestamp]

    @override
    def compute(self, usecase: UseCase, inputs: ViewInputs) -> pd.DataFrame | None:
        import pandas as pd

        rows = inputs.sources[self.source]
        key = usecase.entity(self.entity).join_key
        out = pd.DataFrame({key: rows[key].astype(object), EVENT_TS: rows[self.timestamp]})
        for name, values in self._typed(rows).items():
            out[name] = values
        return out.dropna(subset=[key]).sort_values([EVENT_TS, key]).reset_index(drop=True)


class ReferenceSnapshotView(_FromSource):
    """Attributes from a reference table, as known at the start of each interval."""

    kind: Literal["reference_snapshot"]

    @override
    def compute(self, usecase: UseCase, inputs: ViewInputs) -> pd.DataFrame | None:
        import pandas as pd

        key = usecase.entity(self.entity).join_key
        table = inputs.sources[self.source]
        rows = table.dropna(subset=[key]).drop_duplicates(subset=[key], keep="last")
        out = pd.DataFrame({key: rows[key].astype(object)})
        out[EVENT_TS] = inputs.start
        for name, values in self._typed(rows).items():
            out[name] = values
        return out.sort_values(key).reset_index(drop=True)


class LabelRateView(FeatureViewKind):
    """Per entity, over each window, the mean and count of labels known at the interval start.

    For classification the mean is the share of positives. A label counts only if its event
    happened within the window before the snapshot and the label itself had arrived strictly
    before it: no feature sees its own future.
    """

    kind: Literal["label_rate"]
    windows: list[Duration] = Field(min_length=1)

    @override
    def feature_dtypes(self) -> dict[str, FeatureDtype]:
        dtypes: dict[str, FeatureDtype] = {}
        for window in self.windows:
            suffix = window_suffix(window)
            dtypes[f"rate_{suffix}"] = "float"
            dtypes[f"count_{suffix}"] = "int"
        return dtypes

    @override
    def bounds(self, usecase: UseCase) -> dict[str, Bounds]:
        out: dict[str, Bounds] = {}
        for window in self.windows:
            suffix = window_suffix(window)
            out[f"count_{suffix}"] = (0.0, None)
            if usecase.task == "classification":  # a share of positives; a mean for regression
                out[f"rate_{suffix}"] = (0.0, 1.0)
        return out

    @override
    def lookback(self, usecase: UseCase) -> timedelta | None:
        # Events as old as the longest window, whose labels arrive up to the label delay later.
        return max(self.windows) + usecase.label.delay

    @override
    def compute(self, usecase: UseCase, inputs: ViewInputs) -> pd.DataFrame | None:
        labels, events = inputs.history(LABELS_TABLE), inputs.history(EVENTS_TABLE)
        if labels is None or events is None:
            return None
        return self.rates(usecase, labels, events, inputs.start)

    def rates(
        self, usecase: UseCase, labels: pd.DataFrame, events: pd.DataFrame, as_of: pd.Timestamp
    ) -> pd.DataFrame | None:
        """The rates as known at ``as_of`` from these labels and the events they belong to."""
        import pandas as pd

        key = usecase.entity(self.entity).join_key
        longest = max(self.windows)
        known = labels[
            (labels[AVAILABLE_AT] < as_of)
            & (labels[EVENT_TS] < as_of)
            & (labels[EVENT_TS] >= as_of - longest)
        ]
        joined = known[[EVENT_ID, EVENT_TS, LABEL]].merge(
            events[[EVENT_ID, key]].drop_duplicates(EVENT_ID), on=EVENT_ID, how="inner"
        )
        joined = joined.dropna(subset=[key])
        if joined.empty:
            return None
        entities = pd.Index(sorted(joined[key].unique()), name=key)
        out = pd.DataFrame(index=entities)
        for window in sorted(self.windows):
            suffix = window_suffix(window)
            grouped = joined[joined[EVENT_TS] >= as_of - window].groupby(key)[LABEL]
            out[f"rate_{suffix}"] = grouped.mean().reindex(entities).astype("float64")
            out[f"count_{suffix}"] = grouped.size().reindex(entities).fillna(0).astype("Int64")
        out = out.reset_index()
        out[key] = out[key].astype(object)
        out.insert(1, EVENT_TS, as_of)
        return out[[key, EVENT_TS, *self.feature_names()]]


FeatureView = Annotated[
    SourceRowsView | LabelRateView | ReferenceSnapshotView, Field(discriminator="kind")
]
"""Any kind of feature view; the ``kind`` field of the YAML picks the class."""
