"""Views whose features are columns of one declared source, as they are: the shared base of
``source_rows`` and ``reference_snapshot``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field
from typing_extensions import override

from airloop.usecase.base import Spec
from airloop.usecase.views.base import (
    PANDAS_DTYPES,
    Bounds,
    FeatureDtype,
    FeatureViewKind,
    UseCaseContext,
)

if TYPE_CHECKING:
    import pandas as pd


class FeatureSpec(Spec):
    """A feature taken from a source column (``column``, default: the feature's own name)."""

    name: str
    column: str | None = None
    dtype: FeatureDtype = "float"

    @property
    def source_column(self) -> str:
        """The raw column the feature is read from."""
        return self.column or self.name


class FromSource(FeatureViewKind):
    """A view whose features are columns of one declared source."""

    source: str
    features: list[FeatureSpec] = Field(min_length=1)

    @override
    def feature_dtypes(self, usecase: UseCaseContext) -> dict[str, FeatureDtype]:
        return {f.name: f.dtype for f in self.features}

    @override
    def check(self, usecase: UseCaseContext) -> None:
        source = usecase.source(self.source, f"feature view {self.name!r} source")
        cols = set(source.output_columns())
        wanted = [usecase.entity(self.entity).join_key, *self._source_columns()]
        missing = [c for c in wanted if c not in cols]
        if missing:
            raise ValueError(f"feature view {self.name!r}: {self.source!r} lacks {missing}")

    def _source_columns(self) -> list[str]:
        return [f.source_column for f in self.features]

    @override
    def bounds(self, usecase: UseCaseContext) -> dict[str, Bounds]:
        source = usecase.sources[self.source]
        out: dict[str, Bounds] = {}
        for feature in self.features:
            spec = source.column(feature.source_column)
            if spec is not None and spec.bounds is not None:
                out[feature.name] = spec.bounds
        return out

    def _typed(self, rows: pd.DataFrame) -> dict[str, pd.Series]:
        return {f.name: rows[f.source_column].astype(PANDAS_DTYPES[f.dtype]) for f in self.features}
