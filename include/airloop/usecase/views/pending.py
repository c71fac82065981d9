"""The ``pending`` kind: a queue per entity, the items planned and not yet done."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from typing_extensions import override

from airloop.usecase.base import Spec, window_suffix
from airloop.usecase.views.base import (
    Bounds,
    FeatureDtype,
    UseCaseContext,
    ViewInputs,
    snapshot_rows,
    source_table,
)
from airloop.usecase.views.history import Windowed, known_from, partition_by

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class CompletionSpec(Spec):
    """Where a planned item's completion is recorded: a partitioned source whose rows say
    that an item was done, timed by its ``partition_by``."""

    source: str


class PendingView(Windowed):
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
    def _value_columns(self, usecase: UseCaseContext) -> list[str]:
        return [self.planned_at, self.item]

    @override
    def feature_dtypes(self, usecase: UseCaseContext) -> dict[str, FeatureDtype]:
        return {
            f"{stat}_{window_suffix(window)}": dtype
            for window in self.windows
            for stat, (dtype, _) in self._STATISTICS.items()
        }

    @override
    def bounds(self, usecase: UseCaseContext) -> dict[str, Bounds]:
        return {
            f"{stat}_{window_suffix(window)}": limits
            for window in self.windows
            for stat, (_, limits) in self._STATISTICS.items()
        }

    @override
    def check(self, usecase: UseCaseContext) -> None:
        super().check(usecase)
        self._check_partitioned(usecase, "done.source", self.done.source, [self.item])
        if self._source(usecase).column_type(self.planned_at) != "timestamp":
            raise ValueError(
                f"feature view {self.name!r}: {self.source}.{self.planned_at} must be a timestamp"
            )

    @override
    def source_history(self, usecase: UseCaseContext) -> dict[str, list[str]]:
        key = usecase.entity(self.entity).join_key
        planned = [key, self._timestamp(usecase), self.planned_at, self.item]
        done = [self.item, partition_by(usecase, self.done.source)]
        if self.done.source == self.source:
            return {self.source: list(dict.fromkeys([*planned, *done]))}
        return {self.source: list(dict.fromkeys(planned)), self.done.source: done}

    @override
    def history_since(
        self, usecase: UseCaseContext, as_of: pd.Timestamp
    ) -> dict[str, pd.Timestamp]:
        # A planned item's row is stamped at or before its planned moment; its completion may
        # come before it too (a flight that leaves early), within another reach.
        since = as_of - self._reach() * 2
        return {source_table(self.source): since, source_table(self.done.source): since}

    @override
    def compute(self, usecase: UseCaseContext, inputs: ViewInputs) -> pd.DataFrame | None:
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
            done_stamp = partition_by(usecase, self.done.source)
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
        return snapshot_rows(usecase, self.entity, out, stamps, self.feature_names(usecase))
