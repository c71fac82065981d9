"""The ``reference_snapshot`` kind: a reference table's attributes at each interval start."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from typing_extensions import override

from airloop.core.columns import EVENT_TS
from airloop.usecase.views.base import UseCaseContext, ViewInputs
from airloop.usecase.views.columns import FromSource

if TYPE_CHECKING:
    import pandas as pd


class ReferenceSnapshotView(FromSource):
    """Attributes from a reference table, as known at the start of each interval."""

    kind: Literal["reference_snapshot"]

    @override
    def moves_within_interval(self) -> bool:
        return False

    @override
    def compute(self, usecase: UseCaseContext, inputs: ViewInputs) -> pd.DataFrame | None:
        import pandas as pd

        key = usecase.entity(self.entity).join_key
        table = inputs.sources[self.source]
        rows = table.dropna(subset=[key]).drop_duplicates(subset=[key], keep="last")
        out = pd.DataFrame({key: rows[key].astype(object)})
        out[EVENT_TS] = inputs.start
        for name, values in self._typed(rows).items():
            out[name] = values
        return out.sort_values(key).reset_index(drop=True)
