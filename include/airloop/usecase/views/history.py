"""What a view knew when: the boundary rule, and the machinery of the views that read a
source's past rows (``aggregate``, ``pending``, ``lag``, ``transform``).

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
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from pydantic import Field
from typing_extensions import override

from airloop.usecase.base import Duration, window_suffix
from airloop.usecase.views.base import (
    Bounds,
    FeatureViewKind,
    UseCaseContext,
    ViewInputs,
    source_table,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from airloop.usecase.sources import SourceSpec


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


class FromSourceHistory(FeatureViewKind):
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
    def _value_columns(self, usecase: UseCaseContext) -> list[str]:
        """The source columns the view reads besides the entity key and the timestamp."""

    def _spans(self) -> dict[str, list[Any]]:
        """The view's durations by field name, each of which must be longer than zero."""
        return {}

    def _source(self, usecase: UseCaseContext) -> SourceSpec:
        return usecase.sources[self.source]

    def _timestamp(self, usecase: UseCaseContext) -> str:
        return partition_by(usecase, self.source)

    def _check_partitioned(
        self, usecase: UseCaseContext, role: str, name: str, columns: list[str]
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
    def check(self, usecase: UseCaseContext) -> None:
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
    def history_since(
        self, usecase: UseCaseContext, as_of: pd.Timestamp
    ) -> dict[str, pd.Timestamp]:
        return {
            source_table(self.source): as_of - self._reach() - self._source(usecase).available_after
        }

    @override
    def source_history(self, usecase: UseCaseContext) -> dict[str, list[str]]:
        key = usecase.entity(self.entity).join_key
        columns = [key, self._timestamp(usecase), *self._value_columns(usecase)]
        return {self.source: list(dict.fromkeys(columns))}

    def known_rows(
        self,
        usecase: UseCaseContext,
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
        self, usecase: UseCaseContext, inputs: ViewInputs, source: str, *, current: bool
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

    def _column_bounds(self, usecase: UseCaseContext, column: str) -> Bounds | None:
        spec = self._source(usecase).column(column)
        return spec.bounds if spec is not None else None


def partition_by(usecase: UseCaseContext, source: str) -> str:
    """The column that times a partitioned source's rows."""
    stamp = usecase.sources[source].partition_by
    assert stamp is not None  # nosec B101 # for mypy: the views' check() admits partitioned sources only
    return stamp


class Windowed(FromSourceHistory):
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
