"""The user's use case: one validated YAML file, the only place the engine learns about data.

``base`` holds what every part shares, ``sources`` the raw data and its rules,
``feature_views`` the kinds of feature view (one class each), ``model`` the whole use case and
how it is found and loaded.
"""

from airloop.usecase.base import Duration, UseCaseError, window_suffix
from airloop.usecase.feature_views import (
    FeatureSpec,
    FeatureView,
    FeatureViewKind,
    LabelRateView,
    ReferenceSnapshotView,
    SourceRowsView,
    ViewInputs,
)
from airloop.usecase.model import (
    EntitySpec,
    EventsSpec,
    FeatureServiceSpec,
    GateSpec,
    LabelSpec,
    MonitoringSpec,
    ReplaySourceSpec,
    ReplaySpec,
    RetrainingSpec,
    TrainingSpec,
    UseCase,
    load_usecase,
    resolve,
    resolve_usecase_path,
)
from airloop.usecase.sources import ColumnSpec, DerivedColumn, SourceSpec

__all__ = [
    "ColumnSpec",
    "DerivedColumn",
    "Duration",
    "EntitySpec",
    "EventsSpec",
    "FeatureServiceSpec",
    "FeatureSpec",
    "FeatureView",
    "FeatureViewKind",
    "GateSpec",
    "LabelRateView",
    "LabelSpec",
    "MonitoringSpec",
    "ReferenceSnapshotView",
    "ReplaySourceSpec",
    "ReplaySpec",
    "RetrainingSpec",
    "SourceRowsView",
    "SourceSpec",
    "TrainingSpec",
    "UseCase",
    "UseCaseError",
    "ViewInputs",
    "load_usecase",
    "resolve",
    "resolve_usecase_path",
    "window_suffix",
]
