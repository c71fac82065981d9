"""What the loop does with the model: how it is trained, the gates of its promotion, how it is
monitored and retrained, how the service answers about time, and the replay of a static data
set."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from airloop.core.periods import Span
from airloop.usecase.base import Duration, Spec, Tolerance, ToleranceSpec


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
    # The rows training, evaluation and the gate read at most: beyond it, the same even sample
    # of the window every time (its time split as ever), so their memory stays bounded however
    # large the window grows (about 3 GB at a million rows of 55 columns: docs/scaling.md).
    max_rows: int | None = Field(default=1_000_000, ge=1)
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
    def _max_rows_holds_min_rows(self) -> TrainingSpec:
        if self.max_rows is not None and self.max_rows < self.min_rows:
            raise ValueError(
                f"training.max_rows ({self.max_rows}) is below training.min_rows"
                f" ({self.min_rows}): no training set could pass the gate"
            )
        return self

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
