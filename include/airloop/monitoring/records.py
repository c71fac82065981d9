"""What the monitoring stages hand on: verdicts, ids and file URIs, never the tables.

Light on purpose (pydantic only): they cross task boundaries as XCom, and a reader of a
:class:`Decision` need not import the monitoring stack.
"""

from __future__ import annotations

from typing import Any

from airloop.core.records import Number, Record


class DriftedFeature(Record):
    """A feature whose drift score reached its threshold.

    ``threshold`` is the one applied: the larger of the use case's (``configured_threshold``)
    and what chance reaches at the counts compared (``noise_threshold``).
    """

    feature: str
    score: Number
    threshold: float
    configured_threshold: float | None = None
    noise_threshold: Number = None
    reference_rows: int | None = None
    current_rows: int | None = None


class PredictionDrift(Record):
    """The served scores against the reference's scores.

    ``threshold`` is the one applied: the larger of ``prediction_threshold``
    (``configured_threshold``) and the PSI that ``reference_rows`` and ``current_rows`` scores
    of one distribution, in ``bins`` bins, exceed with probability ``significance``
    (``noise_threshold``).
    """

    measure: str
    score: Number
    threshold: float
    drifted: bool
    reference_mean: Number
    current_mean: Number
    configured_threshold: float | None = None
    noise_threshold: Number = None
    significance: float | None = None
    bins: int | None = None
    reference_rows: int | None = None
    current_rows: int | None = None


class DriftCheck(Record):
    """The drift verdict of an interval; the per-feature details are in the file at ``uri``."""

    uri: str
    status: str
    rows: int
    breach: bool
    model_version: str | None = None
    dataset_drift: bool = False
    share_drifted: Number = None
    drifted_features: list[DriftedFeature] = []
    features_checked: int | None = None  # with enough values on both sides for a verdict
    features_without_verdict: int = 0
    prediction: PredictionDrift | None = None
    prediction_status: str | None = None  # "checked", or why there is no verdict


class PerformanceCheck(Record):
    """Live metrics on the predictions whose labels had arrived by the interval end."""

    uri: str
    status: str
    interval_start: str
    interval_end: str
    window: list[str]
    predictions: int
    min_labelled: int | None = None  # the fewest labelled predictions for a verdict
    labelled: int = 0
    pending: int = 0
    labelled_uri: str | None = None
    breach: bool = False
    model_version: str | None = None
    metric: str | None = None
    live: dict[str, Number] | None = None
    expected: dict[str, Number] | None = None
    drop: Number = None
    allowed_drop: float | None = None
    positive_rate: Number = None


class RetrainRequest(Record):
    """A request for retraining, with its reasons: the extra of the retrain-request Asset event."""

    request_id: str
    interval_start: str
    interval_end: str
    opened_at: str
    status: str
    streak: int
    reasons: list[dict[str, Any]]
    usecase: str | None = None
    model_version: str | None = None
    live: dict[str, Number] | None = None
    note_uri: str | None = None
    closed_at: str | None = None
    outcome: dict[str, Any] | None = None


class Decision(Record):
    """What the controls made of an interval's breaches; ``request`` when one was opened."""

    interval_start: str
    interval_end: str
    breach: bool
    streak: int
    action: str
    detail: str | None
    reasons: list[dict[str, Any]]
    request_id: str | None
    decided_at: str
    usecase: str | None = None
    model_version: str | None = None
    live: dict[str, Number] | None = None
    request: RetrainRequest | None = None


class IntervalChecked(Record):
    """An interval's two checks and the decision the feedback controls made of them."""

    drift: DriftCheck
    performance: PerformanceCheck
    decision: Decision


class ReportPublished(Record):
    """An interval's report: the page, its MLflow run, the Prometheus file, a note for the UI."""

    report_uri: str
    mlflow_run_id: str
    mlflow_experiment_id: str
    metrics_uri: str
    note: str


class TrainingOutcome(Record):
    """How the training run a request opened ended: promoted, refused by the gate, or failed."""

    result: str
    version: str | None = None
    reasons: list[str] | None = None
    deploy: dict[str, Any] | None = None
    dag_run_id: str | None = None
