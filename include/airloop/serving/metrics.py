"""The service's Prometheus metrics, in a registry of the app's own (no global state between apps)."""

from __future__ import annotations


class Metrics:
    """Requests, latency, the served version, load failures, scores, missing and stale features,
    log drops."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "airloop_requests_total",
            "Requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "airloop_request_seconds",
            "Request latency by endpoint",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.model_version = Gauge(
            "airloop_model_version",
            "Version of the model being served",
            ["model"],
            registry=self.registry,
        )
        self.model_load_failures = Gauge(
            "airloop_model_load_failures", "Failed model loads since start", registry=self.registry
        )
        self.scores = Histogram(
            "airloop_prediction_score",
            "Distribution of predicted scores",
            buckets=[i / 10 for i in range(11)],
            registry=self.registry,
        )
        self.missing = Counter(
            "airloop_missing_features_total",
            "Online features missing at prediction time",
            ["feature"],
            registry=self.registry,
        )
        self.stale = Counter(
            "airloop_stale_features_total",
            "Predictions whose values of a feature view were older than its expected freshness",
            ["view"],
            registry=self.registry,
        )
        self.log_dropped = Gauge(
            "airloop_prediction_log_dropped",
            "Prediction log records that could not be written (a full or unwritable disk)",
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
