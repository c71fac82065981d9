"""The user's use case, declared in YAML and validated: the only place the engine learns about data.

A use case names its raw sources and their schemas, the prediction events and their label,
the Feast entities, feature views and feature service, and the policies (metrics, gates, monitoring,
schedule, replay) the pipelines follow. The engine reads nothing else about the data set.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from airloop.settings import PACKAGE_DIR, Settings

BUILTIN_DIR = PACKAGE_DIR / "usecases"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class UseCaseError(ValueError):
    """A use case file that cannot be used; the message names the file and the field."""


def _parse_duration(value: Any) -> Any:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected a duration like '6h', '7d' or '30m', got {value!r}")
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Model):
    """A raw column and the rules the validation gate checks it against."""

    name: str
    type: Literal["string", "number", "integer", "timestamp", "bool"]
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    values: list[str] | None = None
    mostly: float = Field(default=1.0, gt=0.0, le=1.0)


class DerivedColumn(_Model):
    """A column built from others by joining their text, e.g. a route from origin and dest."""

    name: str
    concat: list[str] = Field(min_length=1)
    sep: str = "-"


class SourceSpec(_Model):
    """A raw source: partitioned by data interval, or a reference table replaced whole."""

    kind: Literal["partitioned", "reference"] = "partitioned"
    format: Literal["csv", "parquet"] = "csv"
    partition_by: str | None = None
    columns: list[ColumnSpec] = Field(min_length=1)
    unique: list[str] | None = None
    min_rows: int = 1
    max_rows: int | None = None
    derive: list[DerivedColumn] = []

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)

    @model_validator(mode="after")
    def _check(self) -> SourceSpec:
        names = set(self.column_names)
        if self.kind == "partitioned":
            if not self.partition_by:
                raise ValueError("a partitioned source needs 'partition_by' (a timestamp column)")
            spec = self.column(self.partition_by)
            if spec is None or spec.type != "timestamp":
                raise ValueError(f"partition_by {self.partition_by!r} must be a timestamp column")
        for key in self.unique or []:
            if key not in names | {d.name for d in self.derive}:
                raise ValueError(f"unique key {key!r} is not a declared column")
        for derived in self.derive:
            missing = [c for c in derived.concat if c not in names]
            if missing:
                raise ValueError(f"derived column {derived.name!r} uses undeclared {missing}")
        return self

    def output_columns(self) -> list[str]:
        return self.column_names + [d.name for d in self.derive]


class EventsSpec(_Model):
    """The prediction events: one row per thing the model scores."""

    source: str
    id: str
    timestamp: str
    request_fields: list[str] = []


class LabelSpec(_Model):
    """The outcome, which lands separately from its event after ``delay``."""

    source: str
    event_id: str
    event_timestamp: str
    column: str
    name: str
    available_at: str
    delay: Duration
    threshold: float | None = None


class EntitySpec(_Model):
    name: str
    join_key: str
    description: str = ""


class FeatureSpec(_Model):
    name: str
    column: str | None = None
    dtype: Literal["float", "int", "string"] = "float"

    @property
    def source_column(self) -> str:
        return self.column or self.name


class FeatureViewSpec(_Model):
    """A Feast feature view and how its rows are computed from raw data.

    ``source_rows``: rows of a partitioned source, as-of joined on their timestamp.
    ``label_rate``: share and count of positive labels per entity over past windows,
    from labels that had arrived before the snapshot (point-in-time correct).
    ``reference_snapshot``: attributes from a reference table, snapshotted per interval.
    """

    name: str
    entity: str
    kind: Literal["source_rows", "label_rate", "reference_snapshot"]
    source: str | None = None
    timestamp: str | None = None
    features: list[FeatureSpec] = []
    windows: list[Duration] = []
    ttl: Duration
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> FeatureViewSpec:
        if self.kind in ("source_rows", "reference_snapshot") and not self.source:
            raise ValueError(f"a {self.kind} feature view needs 'source'")
        if self.kind == "source_rows" and not self.timestamp:
            raise ValueError("a source_rows feature view needs 'timestamp'")
        if self.kind in ("source_rows", "reference_snapshot") and not self.features:
            raise ValueError(f"a {self.kind} feature view needs 'features'")
        if self.kind == "label_rate" and not self.windows:
            raise ValueError("a label_rate feature view needs 'windows'")
        return self

    def feature_names(self) -> list[str]:
        if self.kind == "label_rate":
            names = []
            for window in self.windows:
                suffix = window_suffix(window)
                names += [f"rate_{suffix}", f"count_{suffix}"]
            return names
        return [f.name for f in self.features]


class FeatureServiceSpec(_Model):
    name: str
    feature_views: list[str] | None = None
    description: str = ""


class GateSpec(_Model):
    """Promotion rules: absolute floors (or ceilings, for error metrics) and the champion margin."""

    minimum: dict[str, float] = {}
    maximum: dict[str, float] = {}
    max_regression: float = 0.0


class TrainingSpec(_Model):
    """How models are trained from the feature service plus request-time fields."""

    model_name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    categorical: list[str] = []
    numeric: list[str] = []
    slices: list[str] = []
    window: Duration = timedelta(days=28)
    schedule: str = "@weekly"
    validation_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    seed: int = 42
    family: str = "hist_gradient_boosting"
    params: dict[str, Any] = {}
    min_rows: int = 200
    positive_rate: tuple[float, float] = (0.01, 0.99)
    max_null_share: float = Field(default=0.6, ge=0, le=1)


class RetrainingSpec(_Model):
    """When a breach becomes a retrain request: the controls peers leave to glue code."""

    hysteresis: int = Field(default=2, ge=1)  # consecutive breaching intervals before a request
    cooldown: int = Field(default=7, ge=0)  # intervals after a request in which breaches wait
    budget: int = Field(default=4, ge=0)  # requests at most per budget_window
    budget_window: Duration = timedelta(days=30)


class MonitoringSpec(_Model):
    """What the monitoring DAG checks each interval, and its thresholds (effect sizes, not p-values)."""

    numeric_measure: Literal["psi", "wasserstein", "jensen_shannon"] = "psi"
    categorical_measure: Literal["psi", "jensen_shannon"] = "psi"
    feature_threshold: float = Field(default=0.2, gt=0)
    categorical_threshold: float | None = Field(default=None, gt=0)  # default: feature_threshold
    thresholds: dict[str, float] = {}  # per-feature overrides of both
    exclude: list[str] = []  # model inputs not checked for drift (e.g. a calendar month)
    share_of_drifting_features: float = Field(default=0.3, gt=0, le=1)
    prediction_threshold: float = Field(default=0.2, gt=0)
    window: Duration = timedelta(days=1)  # served predictions compared, ending at the interval end
    min_rows: int = Field(default=200, ge=1)
    performance_drop: float = Field(
        default=0.05, ge=0
    )  # live metric worse than the champion's test
    min_labelled: int = Field(default=200, ge=1)
    retraining: RetrainingSpec = RetrainingSpec()


class ReplaySourceSpec(_Model):
    """Where the replay takes a source's rows from: a file, or ``package:NAME/relative/path``."""

    path: str
    columns: list[str] | None = None
    shift: Duration | None = None
    shift_from: str | None = None
    shifted_column: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ReplaySourceSpec:
        if self.shift is not None and not (self.shift_from and self.shifted_column):
            raise ValueError("a shifted replay source needs 'shift_from' and 'shifted_column'")
        return self


class ReplaySpec(_Model):
    start: date
    end: date
    sources: dict[str, ReplaySourceSpec]


class UseCase(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    owner: str = "airloop"
    task: Literal["classification", "regression"]
    schedule: str = "@daily"
    sources: dict[str, SourceSpec]
    events: EventsSpec
    label: LabelSpec
    entities: list[EntitySpec] = Field(min_length=1)
    feature_views: list[FeatureViewSpec] = Field(min_length=1)
    feature_service: FeatureServiceSpec
    metrics: list[str] = Field(min_length=1)
    gates: GateSpec = GateSpec()
    training: TrainingSpec
    monitoring: MonitoringSpec = MonitoringSpec()
    replay: ReplaySpec | None = None

    @model_validator(mode="after")
    def _check_references(self) -> UseCase:
        events = self._source(self.events.source, "events.source")
        if events.kind != "partitioned":
            raise ValueError("events.source must be a partitioned source")
        event_cols = set(events.output_columns())
        for field in [self.events.id, self.events.timestamp, *self.events.request_fields]:
            if field not in event_cols:
                raise ValueError(
                    f"events field {field!r} is not a column of {self.events.source!r}"
                )
        labels = self._source(self.label.source, "label.source")
        label_cols = set(labels.output_columns())
        label_fields = (
            self.label.event_id,
            self.label.event_timestamp,
            self.label.column,
            self.label.available_at,
        )
        for field in label_fields:
            if field not in label_cols:
                raise ValueError(f"label field {field!r} is not a column of {self.label.source!r}")
        if self.task == "classification" and self.label.threshold is None:
            raise ValueError("label.threshold is required for classification")
        entities = {e.name: e for e in self.entities}
        views = set()
        for view in self.feature_views:
            if view.name in views:
                raise ValueError(f"feature view {view.name!r} is declared twice")
            views.add(view.name)
            if view.entity not in entities:
                raise ValueError(f"feature view {view.name!r}: unknown entity {view.entity!r}")
            key = entities[view.entity].join_key
            if key not in event_cols:
                raise ValueError(f"entity {view.entity!r}: events have no column {key!r}")
            if view.source:
                source = self._source(view.source, f"feature view {view.name!r} source")
                cols = set(source.output_columns())
                wanted = [key] + [f.source_column for f in view.features]
                if view.timestamp:
                    wanted.append(view.timestamp)
                missing = [c for c in wanted if c not in cols]
                if missing:
                    raise ValueError(f"feature view {view.name!r}: {view.source!r} lacks {missing}")
        for name in self.feature_service.feature_views or []:
            if name not in views:
                raise ValueError(
                    f"feature service {self.feature_service.name!r}: unknown view {name!r}"
                )
        request = set(self.events.request_fields)
        for field in [*self.training.categorical, *self.training.numeric, *self.training.slices]:
            if field not in request:
                raise ValueError(f"training field {field!r} is not one of events.request_fields")
        if self.replay:
            for name in self.replay.sources:
                self._source(name, "replay.sources")
            if self.replay.end <= self.replay.start:
                raise ValueError("replay.end must be after replay.start")
        return self

    def _source(self, name: str, where: str) -> SourceSpec:
        if name not in self.sources:
            raise ValueError(f"{where}: unknown source {name!r} (declared: {sorted(self.sources)})")
        return self.sources[name]

    def entity(self, name: str) -> EntitySpec:
        return next(e for e in self.entities if e.name == name)

    def feature_view(self, name: str) -> FeatureViewSpec:
        return next(v for v in self.feature_views if v.name == name)

    @property
    def service_views(self) -> list[FeatureViewSpec]:
        names = self.feature_service.feature_views
        return [v for v in self.feature_views if names is None or v.name in names]

    @property
    def partitioned_sources(self) -> list[str]:
        return [n for n, s in self.sources.items() if s.kind == "partitioned"]

    @property
    def reference_sources(self) -> list[str]:
        return [n for n, s in self.sources.items() if s.kind == "reference"]


def window_suffix(window: timedelta) -> str:
    """A feature-name suffix for a window: 7d, 6h, 30m."""
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def resolve_usecase_path(name_or_path: str) -> Path:
    """A built-in use case by name (``flights``) or a path to a YAML file."""
    builtin = BUILTIN_DIR / name_or_path / "usecase.yaml"
    if builtin.is_file():
        return builtin
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        path = path / "usecase.yaml"
    if not path.is_file():
        known = sorted(p.parent.name for p in BUILTIN_DIR.glob("*/usecase.yaml"))
        raise UseCaseError(
            f"use case {name_or_path!r} not found: give a built-in name ({', '.join(known)}) "
            "or the path to a usecase.yaml"
        )
    return path.resolve()


def load_usecase(name_or_path: str) -> UseCase:
    """Read and validate a use case; errors name the file and the offending field."""
    path = resolve_usecase_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UseCaseError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise UseCaseError(f"{path}: expected a mapping at the top level")
    try:
        return UseCase.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"  {loc}: {err['msg']}")
        raise UseCaseError(f"{path}: invalid use case\n" + "\n".join(problems)) from None


def resolve(usecase: UseCase | str | None, settings: Settings | None) -> tuple[UseCase, Settings]:
    """The use case and settings a stage works with: given ones, else the active ones."""
    from airloop.settings import get_settings

    settings = settings or get_settings()
    if isinstance(usecase, UseCase):
        return usecase, settings
    return load_usecase(usecase or settings.usecase), settings
