"""The kinds of feature view a use case can declare: one module, and one class, per kind.

``base`` holds what every kind shares (:class:`FeatureViewKind`, :class:`ViewInputs`, the
feature types), ``history`` the boundary rule (what was known when) and the machinery of the
kinds that read a source's past rows, ``columns`` the base of the kinds that take a source's
columns as they are; each other module is one kind, named by its ``kind``.

To add a kind: a module here with a subclass of :class:`FeatureViewKind` (or of
``history.FromSourceHistory``, to read a source's past rows) with a ``kind`` literal, and the
class added to :data:`FeatureView` below.
"""

from typing import Annotated

from pydantic import Field

from airloop.usecase.views.aggregate import AggregateSpec, AggregateView
from airloop.usecase.views.base import (
    SOURCE_TABLE_PREFIX,
    Bounds,
    FeatureDtype,
    FeatureViewKind,
    UseCaseContext,
    ViewInputs,
    source_table,
)
from airloop.usecase.views.columns import FeatureSpec
from airloop.usecase.views.history import known_at, known_from
from airloop.usecase.views.label_rate import LabelRateView
from airloop.usecase.views.lag import LagView
from airloop.usecase.views.pending import CompletionSpec, PendingView
from airloop.usecase.views.reference_snapshot import ReferenceSnapshotView
from airloop.usecase.views.source_rows import SourceRowsView
from airloop.usecase.views.transform import TransformError, TransformFeature, TransformView

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

__all__ = [
    "SOURCE_TABLE_PREFIX",
    "AggregateSpec",
    "AggregateView",
    "Bounds",
    "CompletionSpec",
    "FeatureDtype",
    "FeatureSpec",
    "FeatureView",
    "FeatureViewKind",
    "LabelRateView",
    "LagView",
    "PendingView",
    "ReferenceSnapshotView",
    "SourceRowsView",
    "TransformError",
    "TransformFeature",
    "TransformView",
    "UseCaseContext",
    "ViewInputs",
    "known_at",
    "known_from",
    "source_table",
]
