"""The user's use case, declared in YAML and validated: the only place the engine learns about data.

A use case names its raw sources and their schemas, the prediction events and their label,
the Feast entities, feature views and feature service, and the policies (metrics, gates, monitoring,
schedule, replay) the pipelines follow. The engine reads nothing else about the data set.

The parts live below this module (``sources``, ``events``, ``views``, ``policies``); here is the
whole, validated across its parts, and how it is found and loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, model_validator

from airloop.catalog import family_names, metric_names
from airloop.core.paths import PACKAGE_DIR
from airloop.core.periods import Cadence
from airloop.usecase.base import Duration, Spec, UseCaseError
from airloop.usecase.events import EntitySpec, EventsSpec, LabelSpec
from airloop.usecase.policies import (
    GateSpec,
    MonitoringSpec,
    ReplaySpec,
    ServingSpec,
    TrainingSpec,
)
from airloop.usecase.sources import SourceSpec
from airloop.usecase.views import SOURCE_TABLE_PREFIX, FeatureView

BUILTIN_DIR = PACKAGE_DIR / "usecases"


class FeatureServiceSpec(Spec):
    """The Feast feature service the model is trained and served from (default: every view)."""

    name: str
    feature_views: list[str] | None = None
    description: str = ""


class UseCase(Spec):
    """A whole use case: data, features, model, policies; validated across its parts on load."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    owner: str = "airloop"
    task: Literal["classification", "regression"]
    schedule: str = "@daily"
    sources: dict[str, SourceSpec]
    events: EventsSpec
    label: LabelSpec
    entities: list[EntitySpec] = Field(min_length=1)
    feature_views: list[FeatureView] = Field(min_length=1)
    feature_service: FeatureServiceSpec
    metrics: list[str] = Field(min_length=1)
    gates: GateSpec = GateSpec()
    training: TrainingSpec
    monitoring: MonitoringSpec = MonitoringSpec()
    replay: ReplaySpec | None = None
    serving: ServingSpec = ServingSpec()
    _folder: Path | None = PrivateAttr(default=None)

    @property
    def folder(self) -> Path | None:
        """The folder of the use case's file (relative paths and ``transforms.py`` live there)."""
        return self._folder

    @property
    def cadence(self) -> Cadence:
        """The rhythm of the data intervals, from ``schedule`` (``@monthly``, a cron...)."""
        return Cadence.of(self.schedule)

    @property
    def training_cadence(self) -> Cadence:
        """The rhythm of the scheduled retraining, from ``training.schedule``."""
        return Cadence.of(self.training.schedule)

    @model_validator(mode="after")
    def _check_schedule(self) -> UseCase:
        Cadence.of(self.schedule)  # a ValueError names what is accepted
        Cadence.of(self.training.schedule)
        return self

    @model_validator(mode="after")
    def _check_events_and_label(self) -> UseCase:
        events = self.source(self.events.source, "events.source")
        if events.kind != "partitioned":
            raise ValueError("events.source must be a partitioned source")
        event_cols = set(events.output_columns())
        for field in [self.events.id, self.events.timestamp, *self.events.request_fields]:
            if field not in event_cols:
                raise ValueError(
                    f"events field {field!r} is not a column of {self.events.source!r}"
                )
        if events.column_type(self.events.timestamp) != "timestamp":
            raise ValueError(
                f"events.timestamp {self.events.timestamp!r} must be a timestamp column of"
                f" {self.events.source!r}"
            )
        calendar = set(self.events.calendar_features) & event_cols
        if calendar:
            raise ValueError(
                f"events.calendar: {sorted(calendar)} are already columns of"
                f" {self.events.source!r}; rename those columns"
            )
        self._check_label()
        if self.task == "classification" and self.label.threshold is None:
            raise ValueError("label.threshold is required for classification")
        return self

    def _check_label(self) -> None:
        label = self.label
        labels = self.source(label.source, "label.source")
        if label.source != self.events.source:
            for name in ("event_id", "event_timestamp"):
                if getattr(label, name) is None:
                    raise ValueError(
                        f"label.{name} is required when label.source ({label.source!r}) is not"
                        f" the events' source ({self.events.source!r})"
                    )
        event_id, event_ts = label.keys(self.events)
        label_cols = set(labels.output_columns())
        for field in (event_id, event_ts, label.column, label.available_at):
            if field is not None and field not in label_cols:
                raise ValueError(f"label field {field!r} is not a column of {label.source!r}")
        for name, column in (("event_timestamp", event_ts), ("available_at", label.available_at)):
            if column is not None and labels.column_type(column) != "timestamp":
                raise ValueError(f"label.{name} {column!r} must be a timestamp column")
        inputs = {
            "events.request_fields": self.events.request_fields,
            "training.categorical": self.training.categorical,
            "training.numeric": self.training.numeric,
            "training.slices": self.training.slices,
        }
        for where, fields in inputs.items():
            if label.column in fields:
                raise ValueError(
                    f"{where} names {label.column!r}, the label's column: the model would be given"
                    " the answer it must predict (it leaks); remove it"
                )

    @model_validator(mode="after")
    def _check_feature_views(self, info: ValidationInfo) -> UseCase:
        folder = (info.context or {}).get("folder")
        if folder is not None:  # a transform view checks its functions in the use case's folder
            self._folder = Path(folder)
        event_cols = set(self.sources[self.events.source].output_columns())
        entities = {e.name: e for e in self.entities}
        views: set[str] = set()
        for view in self.feature_views:
            if view.name in views:
                raise ValueError(f"feature view {view.name!r} is declared twice")
            if view.name.startswith(("_", SOURCE_TABLE_PREFIX)):
                raise ValueError(
                    f"feature view {view.name!r}: names starting with '_' or"
                    f" {SOURCE_TABLE_PREFIX!r} are airloop's own tables"
                )
            views.add(view.name)
            if view.entity not in entities:
                raise ValueError(f"feature view {view.name!r}: unknown entity {view.entity!r}")
            key = entities[view.entity].join_key
            if key not in event_cols:
                raise ValueError(f"entity {view.entity!r}: events have no column {key!r}")
            view.check(self)
        for name in self.feature_service.feature_views or []:
            if name not in views:
                raise ValueError(
                    f"feature service {self.feature_service.name!r}: unknown view {name!r}"
                )
        return self

    @model_validator(mode="after")
    def _check_model_and_metrics(self) -> UseCase:
        known = metric_names(self.task)
        for where, names in (
            ("metrics", self.metrics),
            ("gates.minimum", list(self.gates.minimum)),
            ("gates.maximum", list(self.gates.maximum)),
            ("gates.compare", self.gates.compare or []),
        ):
            for name in names:
                if name not in known:
                    raise ValueError(f"{where}: {name!r} is not a {self.task} metric ({known})")
                if where != "metrics" and name not in self.metrics:
                    raise ValueError(
                        f"{where}: {name!r} is not one of the use case's metrics {self.metrics},"
                        " so it is never computed; add it to metrics"
                    )
        for where, family in [
            ("training.family", self.training.family),
            *(("training.candidates", c.family) for c in self.training.candidates),
        ]:
            if family not in family_names(self.task):
                raise ValueError(
                    f"{where}: {family!r} is not a {self.task} model family"
                    f" ({family_names(self.task)})"
                )
        if self.training.calibration != "none" and self.task != "classification":
            raise ValueError(
                f"training.calibration: {self.training.calibration!r} maps scores to"
                " probabilities, which only a classification has; remove it"
            )
        request = set(self.events.request_fields) | set(self.events.calendar_features)
        for field in [*self.training.categorical, *self.training.numeric, *self.training.slices]:
            if field not in request:
                raise ValueError(
                    f"training field {field!r} is not one of events.request_fields nor a"
                    f" calendar feature ({self.events.calendar_features})"
                )
        example = self.events.example
        if example is not None and set(example) != set(self.request_keys):
            missing = [k for k in self.request_keys if k not in example]
            unknown = sorted(set(example) - set(self.request_keys))
            raise ValueError(
                f"events.example must hold the request's fields, {self.request_keys}:"
                + (f" missing {missing}" if missing else "")
                + (f" unknown {unknown}" if unknown else "")
            )
        served = [v.name for v in self.service_views]
        for candidate in self.training.candidates:
            unknown = [v for v in candidate.views if v not in served]
            if unknown:
                raise ValueError(
                    f"training.candidates: {candidate.family} on {unknown}: not feature views"
                    f" of the feature service ({', '.join(served)})"
                )
        inputs = self.model_inputs
        relative = self.training.relative_to
        if relative is not None and (self.task != "regression" or relative not in inputs):
            raise ValueError(
                f"training.relative_to: {relative!r} must be a model input of a regression"
                f" (inputs: {', '.join(inputs)})"
            )
        for name in self.training.max_null_shares:
            if name not in inputs:
                raise ValueError(
                    f"training.max_null_shares: {name!r} is not a model input; inputs are"
                    f" named <view>__<feature> or by their request field ({', '.join(inputs)})"
                )
        return self

    @model_validator(mode="after")
    def _check_replay(self) -> UseCase:
        if self.replay:
            for name in self.replay.sources:
                self.source(name, "replay.sources")
            if self.replay.end <= self.replay.start:
                raise ValueError("replay.end must be after replay.start")
        return self

    def source(self, name: str, where: str) -> SourceSpec:
        """The source called ``name``; the error says where it was referred to from."""
        if name not in self.sources:
            raise ValueError(f"{where}: unknown source {name!r} (declared: {sorted(self.sources)})")
        return self.sources[name]

    def entity(self, name: str) -> EntitySpec:
        """The declared entity called ``name``."""
        return next(e for e in self.entities if e.name == name)

    def feature_view(self, name: str) -> FeatureView:
        """The declared feature view called ``name``."""
        return next(v for v in self.feature_views if v.name == name)

    @property
    def first_window(self) -> Duration:
        """The window the first champion of a replay is trained on: ``replay.first_window``,
        else ``training.window``."""
        if self.replay is not None and self.replay.first_window is not None:
            return self.replay.first_window
        return self.training.window

    @property
    def service_views(self) -> list[FeatureView]:
        """The feature views the model's feature service serves."""
        names = self.feature_service.feature_views
        return [v for v in self.feature_views if names is None or v.name in names]

    @property
    def model_inputs(self) -> list[str]:
        """The model's inputs: the feature service's features (``<view>__<feature>``), then
        the request-time fields training declares."""
        served = [f"{v.name}__{n}" for v in self.service_views for n in v.feature_names(self)]
        return served + self.training.categorical + self.training.numeric

    @property
    def entity_keys(self) -> list[str]:
        """The join keys of the served views' entities, each once, in order."""
        return list(dict.fromkeys(self.entity(v.entity).join_key for v in self.service_views))

    @property
    def request_keys(self) -> list[str]:
        """What a caller sends per prediction: the entity keys and the request-time model
        inputs (calendar features are not sent: the service computes them from the event's
        time)."""
        fields = [*self.entity_keys, *self.training.categorical, *self.training.numeric]
        calendar = set(self.events.calendar_features)
        return list(dict.fromkeys(f for f in fields if f not in calendar))

    def source_history(self) -> dict[str, list[str]]:
        """Sources whose past rows feature views read back, with the columns they need."""
        out: dict[str, list[str]] = {}
        for view in self.feature_views:
            for source, columns in view.source_history(self).items():
                out[source] = list(dict.fromkeys([*out.get(source, []), *columns]))
        return out

    @property
    def partitioned_sources(self) -> list[str]:
        """Sources that land one partition per interval."""
        return [n for n, s in self.sources.items() if s.kind == "partitioned"]

    @property
    def reference_sources(self) -> list[str]:
        """Sources replaced whole (reference tables)."""
        return [n for n, s in self.sources.items() if s.kind == "reference"]


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
        # libyaml's safe loader where PyYAML has it: the same documents, 10x faster, and a use
        # case is read by every DAG file parse and every task. (Named as the safe loaders are
        # named, so bandit's check of yaml.load sees which one.)
        SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        raw = yaml.load(path.read_text(), Loader=SafeLoader)
    except yaml.YAMLError as exc:
        raise UseCaseError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise UseCaseError(f"{path}: expected a mapping at the top level")
    try:
        usecase = UseCase.model_validate(raw, context={"folder": path.parent})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"  {loc}: {err['msg']}")
        raise UseCaseError(f"{path}: invalid use case\n" + "\n".join(problems)) from None
    usecase._folder = path.parent
    return usecase
