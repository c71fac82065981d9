"""The user's use case: one validated YAML file, the only place the engine learns about data.

``base`` holds what every part shares, ``sources`` the raw data and its rules, ``events`` the
prediction events, their label and the entities, ``views`` the kinds of feature view (one
module each), ``policies`` training, gates, monitoring, serving and replay, ``model`` the whole
use case and how it is found and loaded; ``active`` the use cases one Airflow runs, and
``run_params`` the checks of a manual run's parameters.
"""

from airloop.usecase.active import (
    active_usecases,
    dag_id,
    resolve,
    scoped,
    usecase_of_dag,
)
from airloop.usecase.base import Duration, UseCaseError, window_suffix
from airloop.usecase.events import EntitySpec, EventsSpec, LabelSpec
from airloop.usecase.model import (
    FeatureServiceSpec,
    UseCase,
    load_usecase,
    resolve_usecase_path,
)
from airloop.usecase.policies import (
    Candidate,
    GateSpec,
    MonitoringSpec,
    ReplaySourceSpec,
    ReplaySpec,
    RetrainingSpec,
    TrainingSpec,
)
from airloop.usecase.sources import (
    ColumnSpec,
    ConcatColumn,
    DateFromColumn,
    DerivedColumn,
    ExprColumn,
    SourceSpec,
)
from airloop.usecase.views import (
    AggregateSpec,
    AggregateView,
    FeatureSpec,
    FeatureView,
    FeatureViewKind,
    LabelRateView,
    LagView,
    ReferenceSnapshotView,
    SourceRowsView,
    TransformError,
    TransformFeature,
    TransformView,
    ViewInputs,
    known_at,
    source_table,
)

__all__ = [
    "AggregateSpec",
    "AggregateView",
    "Candidate",
    "ColumnSpec",
    "ConcatColumn",
    "DateFromColumn",
    "DerivedColumn",
    "Duration",
    "EntitySpec",
    "EventsSpec",
    "ExprColumn",
    "FeatureServiceSpec",
    "FeatureSpec",
    "FeatureView",
    "FeatureViewKind",
    "GateSpec",
    "LabelRateView",
    "LabelSpec",
    "LagView",
    "MonitoringSpec",
    "ReferenceSnapshotView",
    "ReplaySourceSpec",
    "ReplaySpec",
    "RetrainingSpec",
    "SourceRowsView",
    "SourceSpec",
    "TrainingSpec",
    "TransformError",
    "TransformFeature",
    "TransformView",
    "UseCase",
    "UseCaseError",
    "ViewInputs",
    "active_usecases",
    "dag_id",
    "known_at",
    "load_usecase",
    "resolve",
    "resolve_usecase_path",
    "scoped",
    "source_table",
    "usecase_of_dag",
    "window_suffix",
]
