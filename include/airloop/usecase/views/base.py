"""What every kind of feature view shares: the base spec, the inputs of an interval, the
feature types, and the names of the offline tables views read back.

A kind knows the fields its YAML takes and how they must refer to the rest of the use case,
the features it produces and their types (Feast's schema is built from them), the bounds the
training-set gate checks, the history it reads from earlier intervals, and how one interval's
rows are computed, point-in-time correct: every row carries ``event_timestamp``, the moment
from which its values were known, and Feast's as-of join hands an event only rows stamped at or
before it. The feature pipeline, the Feast definitions and the training checks ask the class;
none of them branches on the kind.

A view reads its use case through :class:`UseCaseContext`, which ``UseCase`` provides: the
views sit below the use case that holds them. pandas is imported inside methods so that
loading a use case (which every DAG file does) stays light.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from airloop.core.columns import EVENT_TS
from airloop.usecase.base import Duration, Spec

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from airloop.usecase.events import EntitySpec, LabelSpec
    from airloop.usecase.sources import SourceSpec


FeatureDtype = Literal["float", "int", "string"]
PANDAS_DTYPES: dict[str, str] = {"float": "float64", "int": "Int64", "string": "object"}
Bounds = tuple[float | None, float | None]
SOURCE_TABLE_PREFIX = "source__"


def source_table(source: str) -> str:
    """The offline table that keeps a source's past rows for the views that read them."""
    return f"{SOURCE_TABLE_PREFIX}{source}"


class UseCaseContext(Protocol):
    """What a feature view reads of the use case that declares it: ``UseCase`` is one.

    Named here, not imported, so that the views sit below the use case that holds them.
    """

    @property
    def task(self) -> Literal["classification", "regression"]:
        """What the model predicts: a class or a number."""
        ...

    @property
    def sources(self) -> dict[str, SourceSpec]:
        """The declared sources, by name."""
        ...

    @property
    def label(self) -> LabelSpec:
        """The label: its source, column and delay."""
        ...

    @property
    def folder(self) -> Path | None:
        """The folder of the use case's file (where ``transforms.py`` lives)."""
        ...

    def entity(self, name: str) -> EntitySpec:
        """The declared entity called ``name``."""
        ...

    def source(self, name: str, where: str) -> SourceSpec:
        """The source called ``name``; the error says where it was referred to from."""
        ...


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


class FeatureViewKind(Spec):
    """What every feature view declares: its name, entity, time to live and description."""

    kind: str
    name: str
    entity: str
    ttl: Duration
    description: str = ""

    @abstractmethod
    def feature_dtypes(self, usecase: UseCaseContext) -> dict[str, FeatureDtype]:
        """The view's features and their types, in order."""

    @abstractmethod
    def compute(self, usecase: UseCaseContext, inputs: ViewInputs) -> pd.DataFrame | None:
        """The interval's rows: the entity key, ``event_timestamp`` and the features.

        None, or no rows, when the interval gives nothing (the pipeline then writes an empty
        table with the view's schema).
        """

    def feature_names(self, usecase: UseCaseContext) -> list[str]:
        """The view's features, in order."""
        return list(self.feature_dtypes(usecase))

    def check(self, usecase: UseCaseContext) -> None:
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

    def bounds(self, usecase: UseCaseContext) -> dict[str, Bounds]:
        """Declared ranges of the view's features, which the training-set gate checks."""
        return {}

    def history_since(
        self, usecase: UseCaseContext, as_of: pd.Timestamp
    ) -> dict[str, pd.Timestamp]:
        """The offline tables ``compute`` reads from intervals before ``as_of``, each with the
        earliest time it needs (none: the view needs no history)."""
        return {}

    def source_history(self, usecase: UseCaseContext) -> dict[str, list[str]]:
        """Sources whose past rows ``compute`` reads back, with the columns it needs: the
        pipeline publishes them each interval as the table ``source__<name>``."""
        return {}

    def empty(self, usecase: UseCaseContext) -> pd.DataFrame:
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


def snapshot_rows(
    usecase: UseCaseContext,
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
