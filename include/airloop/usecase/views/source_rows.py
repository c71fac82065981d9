"""The ``source_rows`` kind: a partitioned source's rows, on their own timestamps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from typing_extensions import override

from airloop.core.columns import EVENT_TS
from airloop.usecase.views.base import UseCaseContext, ViewInputs
from airloop.usecase.views.columns import FromSource

if TYPE_CHECKING:
    import pandas as pd


class SourceRowsView(FromSource):
    """Rows of a partitioned source, as-of joined on their own timestamp (hourly weather)."""

    kind: Literal["source_rows"]
    timestamp: str

    def _source_columns(self) -> list[str]:
        return [*super()._source_columns(), self.timestamp]

    @override
    def compute(self, usecase: UseCaseContext, inputs: ViewInputs) -> pd.DataFrame | None:
        import pandas as pd

        rows = inputs.sources[self.source]
        key = usecase.entity(self.entity).join_key
        out = pd.DataFrame({key: rows[key].astype(object), EVENT_TS: rows[self.timestamp]})
        for name, values in self._typed(rows).items():
            out[name] = values
        return out.dropna(subset=[key]).sort_values([EVENT_TS, key]).reset_index(drop=True)
