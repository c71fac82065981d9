"""The user's use case, declared in YAML and validated: the only place the engine learns about data.

A use case names its raw sources and their schemas, the prediction events and their label,
the Feast entities, feature views and feature service, and the policies (metrics, gates, monitoring,
schedule, replay) the pipelines follow. The engine reads nothing else about the data set.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from airloop.catalog import family_names, metric_names
from airloop.core.paths import PACKAGE_DIR
from airloop.core.periods import Cadence, Span
from airloop.usecase.base import Duration, Spec, Tolerance, ToleranceSpec, UseCaseError
from airloop.usecase.feature_views import SOURCE_TABLE_PREFIX, FeatureView
from airloop.usecase.sources import SourceSpec

if TYPE_CHECKING:
    import pandas as pd

BUILTIN_DIR = PACKAGE_DIR / "usecases"


CalendarPart = Literal[
    "month", "quarter", "day_of_week", "day_of_year", "week_of_year", "hour", "is_weekend"
]


class EventsSpec(Spec):
    """The prediction events: one row per thing the model scores.

    ``calendar``: parts of the event time (UTC) given to the model as ``event_<part>``
    features, computed the same way for training (in the events table) and at serving (from
    the request's ``event_time``); use them in ``training`` like request fields.
    """

    source: str
    id: str
    timestamp: str
    request_fields: list[str] = []
    calendar: list[CalendarPart] = []
    # One request instance, as a caller of /v1/predict sends it: the service's API page shows
    # it, and the tests and benchmarks send it. Its fields are the use case's request keys.
    example: dict[str, Any] | None = None

    @property
    def calendar_features(self) -> list[str]:
        """The calendar features' names: ``event_month``, ``event_is_weekend``..."""
        return [f"event_{part}" for part in self.calendar]

    def calendar_columns(self, stamps: pd.Series) -> pd.DataFrame:
        """The calendar features of these event times, one row each; missing for a missing time.

        Month 1-12, quarter 1-4, day_of_week 0 (Monday) to 6, day_of_year 1-366, week_of_year
        the ISO week 1-53, hour 0-23, is_weekend 0 or 1.
        """
        import pandas as pd

        times = pd.to_datetime(pd.Series(stamps).reset_index(drop=True), utc=True)
        parts = {
            "month": lambda: times.dt.month,
            "quarter": lambda: times.dt.quarter,
            "day_of_week": lambda: times.dt.dayofweek,
            "day_of_year": lambda: times.dt.dayofyear,
            "week_of_year": lambda: times.dt.isocalendar().week,
            "hour": lambda: times.dt.hour,
            "is_weekend": lambda: (times.dt.dayofweek >= 5).where(times.notna()),
        }
        out = pd.DataFrame(index=times.index)
        for part, name in zip(self.calendar, self.calendar_features, strict=True):
            values = pd.to_numeric(parts[part](), errors="coerce").astype("float64")
            out[name] = values if values.isna().any() else values.astype("int64")
        return out


class LabelSpec(Spec):
    """The outcome of an event, known ``delay`` after it: a column of a source of its own
    (outcomes landing later) or of the events' own source.

    ``event_id`` and ``event_timestamp`` default to the events' ``id`` and ``timestamp`` when
    the label comes from the events' source; without ``available_at`` a label is known at
    its event's time plus ``delay``, which must be longer than 0 (a label known at its own
    event's time would be in that event's features).
    """

    source: str
    column: str
    name: str
    event_id: str | None = None
    event_timestamp: str | None = None
    available_at: str | None = None
    delay: Duration
    threshold: float | None = None

    @model_validator(mode="after")
    def _check_delay(self) -> LabelSpec:
        if not self.delay:
            raise ValueError(
                "label.delay must be longer than 0: a label known at its event's own time"
                " would leak into that event's features"
            )
        return self

    def keys(self, events: EventsSpec) -> tuple[str, str]:
        """The label source's columns naming the event and its time."""
        if self.event_id is None or self.event_timestamp is None:
            assert self.source == events.source  # nosec B101 # an invariant: UseCase refuses anything else
        return (self.event_id or events.id, self.event_timestamp or events.timestamp)


class EntitySpec(Spec):
    """A Feast entity: what features are keyed by, and the events' column that names it."""

    name: str
    join_key: str
    description: str = ""


class FeatureServiceSpec(Spec):
    """The Feast feature service the model is trained and served from (default: every view)."""

    name: str
    feature_views: list[str] | None = None
    description: str = ""


class GateSpec(Spec):
    """Promotion rules. The decision is relative: on the same held-out rows, the challenger may
    trail the champion by at most ``max_regression`` on each metric of ``compare`` (default: the
    primary metric). The absolute floors and ceilings are the safety net: always checked, but a
    bound the champion breaks too, on the same rows, is not held against a challenger that is no
    worse (the days scored may be hard ones; promoting it makes nothing worse)."""

    minimum: dict[str, float] = {}
    maximum: dict[str, float] = {}
    # How much worse than the champion a challenger may be: in the metric's units, or "2%".
    max_regression: ToleranceSpec = Tolerance(value=0.0)
    compare: list[str] | None = None  # metrics compared with the champion (default: primary)
    # A person approves (or rejects) each promotion in Airflow's UI before ``champion`` moves.
    require_approval: bool = False
    approval_timeout: Duration | None = None  # then the run fails and nothing is promoted


class Candidate(Spec):
    """A model fitted beside the use case's own: a family with its defaults, on the inputs of
    some feature views only (``views``; the request fields and calendar always), or on all."""

    family: str
    views: list[str] = []


class TrainingSpec(Spec):
    """How models are trained from the feature service plus request-time fields."""

    model_name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    categorical: list[str] = []
    numeric: list[str] = []
    slices: list[str] = []
    slice_min_rows: int = Field(default=30, ge=1)  # smaller slices: "too few rows", no metrics
    window: Duration = Span.of(days=28)
    schedule: str = "@weekly"
    validation_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    seed: int = 42
    family: str = "hist_gradient_boosting"
    params: dict[str, Any] = {}
    # Other families fitted beside it, with their defaults, on the same rows; the one the
    # validation slice scores best becomes the model (``family`` on a tie). A family's name,
    # or ``{family: linear, views: [store_lags]}`` for one fitted on those views' inputs only:
    # the plain model on the last known values, which more inputs must beat to be kept.
    candidates: list[Candidate] = []
    # Regression: learn the target's difference from this model input (its last known value,
    # ``<view>__<column>_lag_<n>``) and add it back; follows a trending series where trees,
    # fitted on the levels seen so far, cannot.
    relative_to: str | None = None
    # Classification: map scores to probabilities on the validation slice after fitting
    # (sigmoid: Platt scaling; isotonic: a monotone step function), or leave them as they are.
    calibration: Literal["none", "sigmoid", "isotonic"] = "none"
    # Once the validation slice has scored the model (the figure experiments compare), fit the
    # model that is logged again on the training and validation slices together: it learns
    # from the freshest weeks the test slice leaves, and the test slice still judges it unseen.
    refit: bool = False
    min_rows: int = 200
    positive_rate: tuple[float, float] = (0.01, 0.99)
    max_null_share: float = Field(default=0.6, ge=0, le=1)
    # Per model input, for a feature missing by nature (an aircraft's earlier departure of the
    # day, on its first flight): the share of training rows that may lack it.
    max_null_shares: dict[str, Annotated[float, Field(ge=0, le=1)]] = {}

    @field_validator("candidates", mode="before")
    @classmethod
    def _family_names_are_candidates(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"family": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _refit_leaves_calibration_its_slice(self) -> TrainingSpec:
        if self.refit and self.calibration != "none":
            raise ValueError(
                f"training.refit fits on the validation slice, which training.calibration"
                f" ({self.calibration}) calibrates on: set one of them, not both"
            )
        return self


class RetrainingSpec(Spec):
    """When a breach becomes a retrain request: the controls peers leave to glue code."""

    hysteresis: int = Field(default=2, ge=1)  # consecutive breaching intervals before a request
    cooldown: int = Field(default=7, ge=0)  # intervals after a request in which breaches wait
    budget: int = Field(default=4, ge=0)  # requests at most per budget_window
    budget_window: Duration = Span.of(days=30)


class MonitoringSpec(Spec):
    """What the monitoring DAG checks each interval, and its thresholds (effect sizes, not p-values).

    A drift threshold is never below what chance reaches at the counts compared: a feature or
    the scores drift at a score of at least the larger of the threshold here and the noise
    threshold at ``significance`` (``airloop.monitoring.drift``). The events' calendar
    features are never drift inputs, whatever ``exclude`` says: they move by design.
    """

    numeric_measure: Literal["psi", "wasserstein", "jensen_shannon"] = "psi"
    categorical_measure: Literal["psi", "jensen_shannon"] = "psi"
    feature_threshold: float = Field(default=0.2, gt=0)
    categorical_threshold: float | None = Field(default=None, gt=0)  # default: feature_threshold
    thresholds: dict[str, float] = {}  # per-feature overrides of both
    exclude: list[str] = []  # model inputs not checked for drift, besides the calendar features
    share_of_drifting_features: float = Field(default=0.3, gt=0, le=1)
    prediction_threshold: float = Field(default=0.2, gt=0)
    # How often samples of one distribution may score above the noise threshold: the false
    # alarm rate of each drift verdict that chance alone would otherwise decide.
    significance: float = Field(default=0.01, gt=0, lt=0.5)
    window: Duration = Span.of(days=1)  # served predictions compared, ending at the interval end
    min_rows: int = Field(default=200, ge=1)
    # How much worse the live metric may be than the serving version's test metric before
    # it is a breach: in the metric's units, or "10%" of the test metric.
    performance_drop: ToleranceSpec = Tolerance(value=0.05)
    min_labelled: int = Field(default=200, ge=1)
    # The live primary metric the use case promises (optional): a line on the timeline, and
    # the monitored intervals that met it counted on the timeline's page.
    live_target: float | None = None
    retraining: RetrainingSpec = RetrainingSpec()


class ReplaySourceSpec(Spec):
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


class ReplaySpec(Spec):
    """A static data set replayed interval by interval over [start, end): the demo's data."""

    start: date
    end: date
    sources: dict[str, ReplaySourceSpec]
    # What the first champion is trained on, from the replay's start (default: the training
    # window). A replay starts with no history: a shorter first window serves sooner.
    first_window: Duration | None = None


class ServingSpec(Spec):
    """How the online service answers about time (docs/usecase.md, "Serving and time").

    ``stale``: a view's values older than its expected freshness at the event's time (its
    interval plus its source's delay: ``serving.freshness``) are served and flagged
    (``flag``), or treated as missing (``missing``). ``past_events``: a request whose
    ``event_time`` is earlier than the online values' as-of time is refused with a 422 that
    points to batch scoring (``refuse``), or served with those views flagged (``flag``).
    """

    stale: Literal["flag", "missing"] = "flag"
    past_events: Literal["refuse", "flag"] = "refuse"


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
