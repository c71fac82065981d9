"""The kinds of feature view a use case can declare: one class per kind, in this one place.

A kind knows the fields its YAML takes and how they must refer to the rest of the use case,
the features it produces and their types (Feast's schema is built from them), the bounds the
training-set gate checks, the history it reads from earlier intervals, and how one interval's
rows are computed, point-in-time correct: every row carries ``event_timestamp``, the moment
from which its values were known, and Feast's as-of join hands an event only rows stamped at or
before it. The feature pipeline, the Feast definitions and the training checks ask the class;
none of them branches on the kind.

Snapshots (``label_rate``, ``aggregate``, ``lag``, ``transform``, ``pending``) are computed as
of each interval's start ``as_of`` (and, for ``aggregate`` and ``pending`` with ``every``, at
moments within it) and stamped with it, from what was known then. The boundary rule:
a source row is known at ``as_of`` when its time plus the source's ``available_after`` is at or
before ``as_of`` and its time is before ``as_of`` (:func:`known_from` states it, as the first
moment a row is known; :func:`known_at` applies it as a filter at one moment); a label when its
``available_at`` is at or before ``as_of`` and its event happened before ``as_of``. Arriving
exactly at the start counts as known (monthly figures published a month later are then one
month old, not two); the event itself never is, and its label cannot be since ``label.delay``
must exceed 0.

To add a kind: subclass :class:`FeatureViewKind` with a ``kind`` literal, and add the class to
:data:`FeatureView` below. pandas is imported inside methods so that loading a use case
(which every DAG file does) stays light.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field
from typing_extensions import override

from airloop.core.columns import AVAILABLE_AT, EVENT_ID, EVENT_TS, EVENTS_TABLE, LABEL, LABELS_TABLE
from airloop.core.errors import PermanentError
from airloop.usecase.base import Duration, Spec, window_suffix

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from airloop.usecase.model import UseCase
    from airloop.usecase.sources import SourceSpec

FeatureDtype = Literal["float", "int", "string"]
PANDAS_DTYPES: dict[str, str] = {"float": "float64", "int": "Int64", "string": "object"}
Bounds = tuple[float | None, float | None]
TRANSFORMS_FILE = "transforms.py"
SOURCE_TABLE_PREFIX = "source__"


def source_table(source: str) -> str:
    """The offline table that keeps a source's past rows for the views that read them."""
    return f"{SOURCE_TABLE_PREFIX}{source}"


class TransformError(PermanentError, ValueError):
    """A use case's own transform function broke its contract; the message names the file."""


@dataclass(frozen=True)
class ViewInputs:
    """What a view's rows for one interval [start, end) are computed from.

    ``sources``: the interval's cleaned partitions and the current reference tables, by source
    name. ``history(table)``: rows of an offline table published by the intervals before
    ``start`` (airloop's events and labels, or ``source__<name>``: a source's past rows), as
    far back as the views' :meth:`~FeatureViewKind.history_since` ask; None when there are none.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    sources: Mapping[str, pd.DataFrame]
    history: Callable[[str], pd.DataFrame | None]


def known_from(stamps: pd.Series, available_after: Any) -> np.ndarray:
    """The boundary rule: the first moment each row is known, given its time ``s``, as int64
    nanoseconds since the epoch. A row is known at ``t`` if and only if this is at or before
    ``t``.

    That moment is ``s + available_after``, arriving exactly then counting as known, and never
    before just after ``s`` (``s + 1ns``): an event at ``s`` never sees its own row. Months are
    added the calendar's way (``available_after.after``).

    :func:`known_at` is the same rule as a filter at one moment ``t``: ``s <= t -
    available_after`` and ``s < t``. For durations in s, m, h, d or w the two agree exactly.
    In calendar months they count from opposite ends (``s + 1mo`` here, ``t - 1mo`` there),
    which at month ends can make a row known here up to a day before :func:`known_at` does
    (31 January + 1mo is 28 February, while 28 February - 1mo is 28 January).
    """
    import numpy as np
    import pandas as pd

    times = pd.to_datetime(stamps, utc=True)
    after = available_after.after(times)
    raw = pd.DatetimeIndex(times).as_unit("ns").asi8
    return np.maximum(pd.DatetimeIndex(after).as_unit("ns").asi8, raw + 1)


def known_at(
    rows: pd.DataFrame, timestamp: str, available_after: Any, as_of: pd.Timestamp
) -> pd.DataFrame:
    """The source rows known at ``as_of``: the boundary rule of :func:`known_from`, as a filter.

    A row is known when ``timestamp + available_after <= as_of``, arriving exactly at ``as_of``
    included, and its ``timestamp`` is before ``as_of``: an event at ``as_of`` never sees its
    own row. The arithmetic is done on ``as_of`` (``timestamp <= as_of - available_after``),
    so durations in months work; for those, see :func:`known_from` on month ends.
    """
    stamps = rows[timestamp]
    return rows[(stamps <= as_of - available_after) & (stamps < as_of)]


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
    def feature_dtypes(self, usecase: UseCase) -> dict[str, FeatureDtype]:
        """The view's features and their types, in order."""

    @abstractmethod
    def compute(self, usecase: UseCase, inputs: ViewInputs) -> pd.DataFrame | None:
        """The interval's rows: the entity key, ``event_timestamp`` and the features.

        None, or no rows, when the interval gives nothing (the pipeline then writes an empty
        table with the view's schema).
        """

    def feature_names(self, usecase: UseCase) -> list[str]:
        """The view's features, in order."""
        return list(self.feature_dtypes(usecase))

    def check(self, usecase: UseCase) -> None:
        """Refuse references to what the use case does not declare (raise ValueError)."""

    def moves_within_interval(self) -> bool:
        """Whether the view has rows stamped after its interval's start. A replay's clock
        refreshes such a view at each step; a snapshot kind stamps every row at the start."""
        return True

    def moves_every(self) -> Duration | None:
        """How often the view's rows move within an interval, where the view declares it (an
        aggregate's ``every``): a replay's clock steps at least this often to serve each
        snapshot in its own hour. None: the view does not say."""
        return None

    def bounds(self, usecase: UseCase) -> dict[str, Bounds]:
        """Declared ranges of the view's features, which the training-set gate checks."""
        return {}

    def history_since(self, usecase: UseCase, as_of: pd.Timestamp) -> dict[str, pd.Timestamp]:
        """The offline tables ``compute`` reads from intervals before ``as_of``, each with the
        earliest time it needs (none: the view needs no history)."""
        return {}

    def source_history(self, usecase: UseCase) -> dict[str, list[str]]:
        """Sources whose past rows ``compute`` reads back, with the columns it needs: the
        pipeline publishes them each interval as the table ``source__<name>``."""
        return {}

    def empty(self, usecase: UseCase) -> pd.DataFrame:
        """A zero-row table with the view's schema, so readers see the columns they expect."""
        import pandas as pd

        key = usecase.entity(self.entity).join_key
        cols: dict[str, pd.Series] = {
            key: pd.Series([], dtype=object),
            EVENT_TS: pd.Series([], dtype="datetime64[ns, UTC]"),
        }
        for name, dtype in self.feature_dtypes(usecase).items():
            cols[name] = pd.Series([], dtype=PANDAS_DTYPES[dtype])
        return pd.DataFrame(cols)


class _FromSource(FeatureViewKind):
    """A view whose features are columns of one declared source."""

    source: str
    features: list[FeatureSpec] = Field(min_length=1)

    @override
    def feature_dtypes(self, usecase: UseCase) -> dict[str, FeatureDtype]:
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
    def moves_within_interval(self) -> bool:
        return False

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


def _snapshot(
    usecase: UseCase,
    entity: str,
    out: pd.DataFrame,
    as_of: pd.Timestamp | pd.DatetimeIndex,
    names: list[str],
) -> pd.DataFrame:
    """Features indexed by entity key, as rows stamped ``as_of`` (one moment, or one per row)
    in the view's column order."""
    key = usecase.entity(entity).join_key
    out = out.reset_index()
    out[key] = out[key].astype(object)
    out.insert(1, EVENT_TS, as_of)
    return out[[key, EVENT_TS, *names]]


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

    def _statistics(self, usecase: UseCase) -> list[str]:
        if usecase.task == "classification":
            return ["share", "count"]
        return ["mean", "std", "last", "count"]

    @override
    def feature_dtypes(self, usecase: UseCase) -> dict[str, FeatureDtype]:
        dtypes: dict[str, FeatureDtype] = {}
        for window in self.windows:
            suffix = window_suffix(window)
            for stat in self._statistics(usecase):
                dtypes[f"{stat}_{suffix}"] = "int" if stat == "count" else "float"
        return dtypes

    @override
    def bounds(self, usecase: UseCase) -> dict[str, Bounds]:
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
    def history_since(self, usecase: UseCase, as_of: pd.Timestamp) -> dict[str, pd.Timestamp]:
        # Events as old as the longest window, whose labels arrive up to the label delay later.
        since = as_of - max(self.windows) - usecase.label.delay
        return {LABELS_TABLE: since, EVENTS_TABLE: since}

    @override
    def compute(self, usecase: UseCase, inputs: ViewInputs) -> pd.DataFrame | None:
        labels, events = inputs.history(LABELS_TABLE), inputs.history(EVENTS_TABLE)
        if labels is None or events is None:
            return None
        return self.rates(usecase, labels, events, inputs.start)

    def rates(
        self, usecase: UseCase, labels: pd.DataFrame, events: pd.DataFrame, as_of: pd.Timestamp
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
        return _snapshot(usecase, self.entity, out, as_of, self.feature_names(usecase))


class _FromSourceHistory(FeatureViewKind):
    """A snapshot of what a partitioned source's past rows say, as known at each interval start.

    Rows are timed by the source's ``partition_by`` and known ``available_after`` later (the
    boundary rule in the module docstring); the pipeline keeps them as the offline table
    ``source__<name>`` and hands them back through ``ViewInputs.history``.
    """

    source: str

    @abstractmethod
    def _reach(self) -> Any:
        """How far before the snapshot the view looks (its longest window, lag or lookback)."""

    @abstractmethod
    def _value_columns(self, usecase: UseCase) -> list[str]:
        """The source columns the view reads besides the entity key and the timestamp."""

    def _spans(self) -> dict[str, list[Any]]:
        """The view's durations by field name, each of which must be longer than zero."""
        return {}

    def _source(self, usecase: UseCase) -> SourceSpec:
        return usecase.sources[self.source]

    def _timestamp(self, usecase: UseCase) -> str:
        return _partition_by(usecase, self.source)

    def _check_partitioned(
        self, usecase: UseCase, role: str, name: str, columns: list[str]
    ) -> SourceSpec:
        """The source ``name`` the view's field ``role`` names; refused (ValueError) unless it
        is declared, partitioned and has ``columns``."""
        where = f"feature view {self.name!r}"
        source = usecase.source(name, f"{where} {role}")
        if source.kind != "partitioned":
            raise ValueError(
                f"{where}: {role} {name!r} is a reference table; a {self.kind} view reads"
                " the past rows of a partitioned source"
            )
        cols = source.output_columns()
        missing = [c for c in columns if c not in cols]
        if missing:
            raise ValueError(f"{where}: {role} {name!r} has no columns {missing}")
        return source

    @override
    def check(self, usecase: UseCase) -> None:
        where = f"feature view {self.name!r}"
        key = usecase.entity(self.entity).join_key
        wanted = [key, *self._value_columns(usecase)]
        source = self._check_partitioned(usecase, "source", self.source, wanted)
        for field, spans in self._spans().items():
            if not all(spans):
                raise ValueError(f"{where}: every {field} must be longer than 0")
        label = usecase.label
        if (
            self.source == label.source
            and label.column in self._value_columns(usecase)
            and source.available_after < label.delay
        ):
            raise ValueError(
                f"{where} reads {label.column!r}, the label, from {self.source!r}, whose rows are"
                f" known {window_suffix(source.available_after)} after their time while the label"
                f" is known only {window_suffix(label.delay)} after its event: it leaks. Set"
                f" sources.{self.source}.available_after to at least label.delay"
            )
        names = self.feature_names(usecase)
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{where} names features {twice} more than once")

    @override
    def history_since(self, usecase: UseCase, as_of: pd.Timestamp) -> dict[str, pd.Timestamp]:
        return {
            source_table(self.source): as_of - self._reach() - self._source(usecase).available_after
        }

    @override
    def source_history(self, usecase: UseCase) -> dict[str, list[str]]:
        key = usecase.entity(self.entity).join_key
        columns = [key, self._timestamp(usecase), *self._value_columns(usecase)]
        return {self.source: list(dict.fromkeys(columns))}

    def known_rows(
        self,
        usecase: UseCase,
        inputs: ViewInputs,
        since: pd.Timestamp,
        as_of: pd.Timestamp | None = None,
    ) -> pd.DataFrame | None:
        """The source's rows known at ``as_of`` (default: the interval start) with a time at
        or after ``since``, oldest first, with an entity key; None when there are none.

        A snapshot inside the interval also reads the interval's own rows known by then."""
        as_of = inputs.start if as_of is None else as_of
        history = self._source_rows(usecase, inputs, self.source, current=as_of > inputs.start)
        if history is None:
            return None
        key, stamp = usecase.entity(self.entity).join_key, self._timestamp(usecase)
        rows = known_at(history, stamp, self._source(usecase).available_after, as_of)
        rows = rows[(rows[stamp] >= since) & rows[key].notna()]
        if rows.empty:
            return None
        return rows.sort_values([stamp, key], kind="stable").reset_index(drop=True)

    def _source_rows(
        self, usecase: UseCase, inputs: ViewInputs, source: str, *, current: bool
    ) -> pd.DataFrame | None:
        """``source``'s rows published before the interval (its table ``source__<name>``)
        and, with ``current``, the interval's own rows after them, both then in the columns
        the view reads back (:meth:`source_history`); None when there are none."""
        import pandas as pd

        history = inputs.history(source_table(source))
        if not current:
            return history if history is not None and not history.empty else None
        columns = self.source_history(usecase)[source]
        frames = [history, inputs.sources[source]]
        present = [f[columns] for f in frames if f is not None and not f.empty]
        return pd.concat(present, ignore_index=True) if present else None

    def _column_bounds(self, usecase: UseCase, column: str) -> Bounds | None:
        spec = self._source(usecase).column(column)
        return spec.bounds if spec is not None else None


def _partition_by(usecase: UseCase, source: str) -> str:
    """The column that times a partitioned source's rows."""
    stamp = usecase.sources[source].partition_by
    assert stamp is not None  # nosec B101 # for mypy: the views' check() admits partitioned sources only
    return stamp


AggregateFunction = Literal["mean", "sum", "min", "max", "std", "count", "last"]


class AggregateSpec(Spec):
    """A numeric column of the source and the statistics taken of it over each window."""

    column: str
    functions: list[AggregateFunction] = Field(min_length=1)


class _Windowed(_FromSourceHistory):
    """A view of a source's past rows over ``windows`` before each snapshot, snapshotted at the
    interval start and, with ``every``, every ``every`` within the interval, each from what was
    known at its own moment."""

    windows: list[Duration] = Field(min_length=1)
    every: Duration | None = None

    @override
    def moves_within_interval(self) -> bool:
        return self.every is not None

    @override
    def moves_every(self) -> Duration | None:
        return self.every

    @override
    def _reach(self) -> Any:
        # With ``every``, one step further back: an entity with rows in the previous snapshot's
        # windows gets a row at this one too, saying the windows emptied (count 0), instead of
        # no row, which an online store would answer with the previous snapshot's figures.
        longest = max(self.windows)
        return longest if self.every is None else longest + self.every

    @override
    def _spans(self) -> dict[str, list[Any]]:
        spans = {"window": list(self.windows)}
        return spans if self.every is None else {**spans, "every": [self.every]}

    def snapshot_times(self, start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
        """When the interval [start, end) is snapshotted: its start, then every ``every``."""
        times = [start]
        while self.every is not None and times[-1] + self.every < end:
            times.append(times[-1] + self.every)
        return times


class AggregateView(_Windowed):
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
    def _value_columns(self, usecase: UseCase) -> list[str]:
        return list(dict.fromkeys(a.column for a in self.aggregates))

    @override
    def feature_dtypes(self, usecase: UseCase) -> dict[str, FeatureDtype]:
        dtypes: dict[str, FeatureDtype] = {}
        for window in self.windows:
            for agg in self.aggregates:
                for function in agg.functions:
                    name = f"{agg.column}_{function}_{window_suffix(window)}"
                    dtypes[name] = "int" if function == "count" else "float"
        return dtypes

    @override
    def check(self, usecase: UseCase) -> None:
        super().check(usecase)
        source = self._source(usecase)
        for column in self._value_columns(usecase):
            if source.column_type(column) not in ("number", "integer", "bool"):
                raise ValueError(
                    f"feature view {self.name!r}: {self.source}.{column} is"
                    f" {source.column_type(column)}, and only numbers can be aggregated"
                )

    @override
    def bounds(self, usecase: UseCase) -> dict[str, Bounds]:
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
    def compute(self, usecase: UseCase, inputs: ViewInputs) -> pd.DataFrame | None:
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
        return _snapshot(usecase, self.entity, out, stamps, self.feature_names(usecase))


class CompletionSpec(Spec):
    """Where a planned item's completion is recorded: a partitioned source whose rows say
    that an item was done, timed by its ``partition_by``."""

    source: str


class PendingView(_Windowed):
    """Per entity, a queue: the items planned within each window before the snapshot that had
    not been done by it (``pending_<w>``), how many were planned (``planned_<w>``), and the
    pending share of them (``pending_share_<w>``, missing when none were).

    ``source``'s rows are the planned items (the flights on the timetable), each planned at
    its column ``planned_at`` and known from its ``partition_by`` on (the boundary rule);
    ``done.source``'s rows say an item was done (it left the gate), at that source's
    ``partition_by``, and both sources name the item by the column ``item``. An item counts as
    pending at the snapshot ``t`` when it was planned in [t - w, t), was known by ``t``, and no
    completion of it was known by ``t``: one never done (a cancelled flight) stays pending
    until its planned moment leaves the window. A completion recorded more than ``max(windows)
    + every`` before its planned moment is not looked for.

    ``every``: as for ``aggregate``, snapshots at the interval start and then every
    ``every`` within it, each from what was known at its own moment.
    """

    kind: Literal["pending"]
    planned_at: str
    done: CompletionSpec
    item: str

    _STATISTICS: ClassVar[dict[str, tuple[FeatureDtype, Bounds]]] = {
        "pending": ("int", (0.0, None)),
        "planned": ("int", (0.0, None)),
        "pending_share": ("float", (0.0, 1.0)),
    }

    @override
    def _value_columns(self, usecase: UseCase) -> list[str]:
        return [self.planned_at, self.item]

    @override
    def feature_dtypes(self, usecase: UseCase) -> dict[str, FeatureDtype]:
        return {
            f"{stat}_{window_suffix(window)}": dtype
            for window in self.windows
            for stat, (dtype, _) in self._STATISTICS.items()
        }

    @override
    def bounds(self, usecase: UseCase) -> dict[str, Bounds]:
        return {
            f"{stat}_{window_suffix(window)}": limits
            for window in self.windows
            for stat, (_, limits) in self._STATISTICS.items()
        }

    @override
    def check(self, usecase: UseCase) -> None:
        super().check(usecase)
        self._check_partitioned(usecase, "done.source", self.done.source, [self.item])
        if self._source(usecase).column_type(self.planned_at) != "timestamp":
            raise ValueError(
                f"feature view {self.name!r}: {self.source}.{self.planned_at} must be a timestamp"
            )

    @override
    def source_history(self, usecase: UseCase) -> dict[str, list[str]]:
        key = usecase.entity(self.entity).join_key
        planned = [key, self._timestamp(usecase), self.planned_at, self.item]
        done = [self.item, _partition_by(usecase, self.done.source)]
        if self.done.source == self.source:
            return {self.source: list(dict.fromkeys([*planned, *done]))}
        return {self.source: list(dict.fromkeys(planned)), self.done.source: done}

    @override
    def history_since(self, usecase: UseCase, as_of: pd.Timestamp) -> dict[str, pd.Timestamp]:
        # A planned item's row is stamped at or before its planned moment; its completion may
        # come before it too (a flight that leaves early), within another reach.
        since = as_of - self._reach() * 2
        return {source_table(self.source): since, source_table(self.done.source): since}

    @override
    def compute(self, usecase: UseCase, inputs: ViewInputs) -> pd.DataFrame | None:
        """Every snapshot of the interval at once: the items planned within reach of the
        interval against the snapshot moments, as boolean matrices (snapshots by items)."""
        import numpy as np
        import pandas as pd

        times = self.snapshot_times(inputs.start, inputs.end)
        planned = self._source_rows(usecase, inputs, self.source, current=True)
        if planned is None:
            return None
        key, stamp = usecase.entity(self.entity).join_key, self._timestamp(usecase)
        at = pd.to_datetime(planned[self.planned_at], utc=True)
        keep = planned[key].notna() & (at >= times[0] - self._reach()) & (at < times[-1])
        planned, at = planned[keep], at[keep]
        planned = planned.drop_duplicates(self.item, keep="last")
        at = at.loc[planned.index]
        if planned.empty:
            return None

        def moments(values: pd.Series) -> np.ndarray:
            return pd.DatetimeIndex(values).as_unit("ns").asi8

        moment = np.asarray(moments(pd.Series(times)))[:, None]  # (snapshots, 1)
        planned_at = moments(at)[None, :]
        planned_from = known_from(planned[stamp], self._source(usecase).available_after)
        done_rows = self._source_rows(usecase, inputs, self.done.source, current=True)
        done_from = np.full(len(planned), np.iinfo(np.int64).max)
        if done_rows is not None:
            done_stamp = _partition_by(usecase, self.done.source)
            done_after = usecase.sources[self.done.source].available_after
            done_rows = done_rows[done_rows[done_stamp].notna()]
            first = (
                pd.Series(known_from(done_rows[done_stamp], done_after))
                .groupby(done_rows[self.item].to_numpy())
                .min()
            )
            where = first.index.get_indexer(planned[self.item].to_numpy())
            done_from[where >= 0] = first.to_numpy()[where[where >= 0]]
        known = planned_from[None, :] <= moment
        not_done = done_from[None, :] > moment
        codes, names = pd.factorize(planned[key].astype(object), sort=True)

        def per_entity(mask: np.ndarray) -> np.ndarray:
            """How many items of each entity a (snapshots by items) mask holds."""
            counts = np.zeros((len(times), len(names)), dtype=np.int64)
            snapshot, item = np.nonzero(mask)
            np.add.at(counts, (snapshot, codes[item]), 1)
            return counts

        def within(span: Any) -> np.ndarray:
            reach = moments(pd.Series([t - span for t in times]))[:, None]
            return (planned_at >= reach) & (planned_at < moment) & known

        # A row per snapshot and entity with items in reach: an emptied queue says so.
        snapshot, entity = np.nonzero(per_entity(within(self._reach())))
        out = pd.DataFrame(index=pd.Index(np.asarray(names, dtype=object)[entity], name=key))
        for window in self.windows:
            suffix, inside = window_suffix(window), within(window)
            planned_n = per_entity(inside)[snapshot, entity]
            pending_n = per_entity(inside & not_done)[snapshot, entity]
            out[f"pending_{suffix}"] = pd.array(pending_n, dtype="Int64")
            out[f"planned_{suffix}"] = pd.array(planned_n, dtype="Int64")
            share = pending_n / np.where(planned_n > 0, planned_n, 1)
            out[f"pending_share_{suffix}"] = np.where(planned_n > 0, share, np.nan)
        stamps = pd.DatetimeIndex(times).as_unit(times[0].unit)[snapshot]
        return _snapshot(usecase, self.entity, out, stamps, self.feature_names(usecase))


class LagView(_FromSourceHistory):
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
    def _value_columns(self, usecase: UseCase) -> list[str]:
        return list(dict.fromkeys(self.columns))

    def _dtype(self, usecase: UseCase, column: str) -> FeatureDtype:
        return "string" if self._source(usecase).column_type(column) == "string" else "float"

    @override
    def feature_dtypes(self, usecase: UseCase) -> dict[str, FeatureDtype]:
        return {
            f"{column}_lag_{window_suffix(lag)}": self._dtype(usecase, column)
            for lag in self.lags
            for column in self.columns
        }

    @override
    def check(self, usecase: UseCase) -> None:
        super().check(usecase)
        for column in self.columns:
            if self._source(usecase).column_type(column) == "timestamp":
                raise ValueError(
                    f"feature view {self.name!r}: {self.source}.{column} is a timestamp;"
                    " lag numbers or text"
                )

    @override
    def bounds(self, usecase: UseCase) -> dict[str, Bounds]:
        out: dict[str, Bounds] = {}
        for lag in self.lags:
            for column in self.columns:
                limits = self._column_bounds(usecase, column)
                if limits is not None and self._dtype(usecase, column) == "float":
                    out[f"{column}_lag_{window_suffix(lag)}"] = limits
        return out

    @override
    def compute(self, usecase: UseCase, inputs: ViewInputs) -> pd.DataFrame | None:
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
        return _snapshot(usecase, self.entity, out, as_of, self.feature_names(usecase))


class TransformFeature(Spec):
    """A feature a transform function returns, and its type."""

    name: str
    dtype: FeatureDtype = "float"


def _transforms_path(usecase: UseCase) -> Path:
    if usecase.folder is None:
        raise ValueError(
            f"a transform view needs its use case loaded from a file (load_usecase), to find"
            f" {TRANSFORMS_FILE} beside it"
        )
    return usecase.folder / TRANSFORMS_FILE


def check_transform_function(path: Path, function: str) -> None:
    """Refuse a function that ``path`` does not define at its top level, taking
    ``(history, as_of)``; read with ``ast``, so loading a use case runs none of its code."""
    if not path.is_file():
        raise ValueError(f"{path} not found: it must define {function}(history, as_of)")
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        raise ValueError(f"{path}: not valid Python: {exc}") from None
    defined = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    if function not in defined:
        raise ValueError(
            f"{path} defines no top-level function {function!r} (it defines:"
            f" {sorted(defined) or 'none'})"
        )
    args = defined[function].args
    if len(args.posonlyargs) + len(args.args) < 2 and args.vararg is None:
        raise ValueError(f"{path}: {function} must take two arguments: (history, as_of)")


@cache
def _load_module(path: Path) -> ModuleType:
    """The use case's transforms module, imported from its file once per process."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"airloop_usecase_transforms_{digest}", path)
    if spec is None or spec.loader is None:
        raise TransformError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_transform(path: Path, function: str) -> Callable[..., Any]:
    """A function of the use case's ``transforms.py``."""
    fn = getattr(_load_module(path.resolve()), function, None)
    if not callable(fn):
        raise TransformError(f"{path} has no function {function!r}")
    return fn


class TransformView(_FromSourceHistory):
    """Features computed by a function of the use case's own ``transforms.py``.

    ``function(history, as_of)`` receives the source's rows known at ``as_of`` (all its
    columns; time within ``lookback`` before it) and returns one row per entity: the entity key
    and the declared features. The engine stamps ``event_timestamp`` and refuses extra,
    missing or mistyped columns. The function never sees a row it could not have known.
    """

    kind: Literal["transform"]
    function: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    lookback: Duration
    features: list[TransformFeature] = Field(min_length=1)

    @override
    def _reach(self) -> Any:
        return self.lookback

    @override
    def _spans(self) -> dict[str, list[Any]]:
        return {"lookback": [self.lookback]}

    @override
    def _value_columns(self, usecase: UseCase) -> list[str]:
        return self._source(usecase).output_columns()  # the function may read any of them

    @override
    def feature_dtypes(self, usecase: UseCase) -> dict[str, FeatureDtype]:
        return {f.name: f.dtype for f in self.features}

    @override
    def check(self, usecase: UseCase) -> None:
        super().check(usecase)
        key = usecase.entity(self.entity).join_key
        if key in self.feature_dtypes(usecase):
            raise ValueError(f"feature view {self.name!r}: a feature is named {key!r}, the key")
        try:
            check_transform_function(_transforms_path(usecase), self.function)
        except ValueError as exc:
            raise ValueError(f"feature view {self.name!r}: {exc}") from None

    @override
    def compute(self, usecase: UseCase, inputs: ViewInputs) -> pd.DataFrame | None:
        as_of = inputs.start
        history = self.known_rows(usecase, inputs, as_of - self.lookback)
        if history is None:
            return None
        path = _transforms_path(usecase)
        result = load_transform(path, self.function)(history, as_of)
        return self._checked(usecase, path, result, as_of)

    def _checked(
        self, usecase: UseCase, path: Path, result: Any, as_of: pd.Timestamp
    ) -> pd.DataFrame | None:
        """The function's rows, typed and stamped; a broken contract is refused, named."""
        import pandas as pd

        where = f"{path}: {self.function}() for feature view {self.name!r}"
        if not isinstance(result, pd.DataFrame):
            raise TransformError(f"{where} returned {type(result).__name__}, not a DataFrame")
        key = usecase.entity(self.entity).join_key
        dtypes = self.feature_dtypes(usecase)
        wanted = [key, *dtypes]
        extra = [str(c) for c in result.columns if c not in wanted]
        missing = [c for c in wanted if c not in result.columns]
        if extra or missing:
            raise TransformError(
                f"{where} must return exactly the columns {wanted}:"
                + (
                    f" it returned undeclared {extra} (declare them under features, or drop"
                    " them; the engine adds event_timestamp itself)"
                    if extra
                    else ""
                )
                + (f" it lacks {missing}" if missing else "")
            )
        rows = result[result[key].notna()]
        if rows[key].duplicated().any():
            twice = sorted(map(str, rows.loc[rows[key].duplicated(), key].unique()))[:5]
            raise TransformError(f"{where} returned more than one row for {key} {twice}")
        if rows.empty:
            return None
        out = pd.DataFrame({key: rows[key].astype(object)})
        for name, dtype in dtypes.items():
            out[name] = _typed_feature(rows[name], dtype, f"{where}: feature {name!r}")
        out = out.set_index(key).sort_index()
        return _snapshot(usecase, self.entity, out, as_of, list(dtypes))


def _typed_feature(values: pd.Series, dtype: FeatureDtype, where: str) -> pd.Series:
    """A transform's column as its declared type, or an error saying what came back instead."""
    import pandas as pd

    api = pd.api.types
    present = values.dropna()
    numeric = api.is_numeric_dtype(values) and not api.is_bool_dtype(values)
    if dtype == "float" and numeric:
        return values.astype("float64")
    if dtype == "int" and numeric and (present == present.round()).all():
        return values.astype("Int64")
    if dtype == "string" and (
        api.is_string_dtype(values) or present.map(lambda v: isinstance(v, str)).all()
    ):
        return values.astype(object).where(values.notna(), None)
    raise TransformError(f"{where} is declared {dtype} but came back as {values.dtype}")


FeatureView = Annotated[
    SourceRowsView
    | LabelRateView
    | ReferenceSnapshotView
    | AggregateView
    | LagView
    | TransformView
    | PendingView,
    Field(discriminator="kind"),
]
"""Any kind of feature view; the ``kind`` field of the YAML picks the class."""
