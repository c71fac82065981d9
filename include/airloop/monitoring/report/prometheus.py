"""The interval's figures in Prometheus' text format, which the serving API's ``/metrics``
appends (node_exporter's textfile style)."""

from __future__ import annotations

from typing import Any

from airloop.monitoring.records import Decision, PerformanceCheck
from airloop.usecase import UseCase


def _label(value: Any) -> str:
    """A Prometheus label value, escaped as the text format requires."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(
    usecase: UseCase, full: dict[str, Any], performance: PerformanceCheck, decision: Decision
) -> str:
    """The interval's figures in Prometheus' text format (node_exporter's textfile style)."""
    uc = usecase.name
    lines = [
        "# HELP airloop_drift_score Drift of a served feature against the training reference",
        "# TYPE airloop_drift_score gauge",
    ]
    for f in (full.get("data") or {}).get("features", []):
        lines.append(
            f'airloop_drift_score{{usecase="{uc}",feature="{_label(f["feature"])}",'
            f'measure="{_label(f["measure"])}"}} {f["score"]}'
        )
    share = (full.get("data") or {}).get("share_drifted")
    prediction = full.get("prediction") or {}
    gauges = {
        "airloop_drift_share": ("Share of features drifting", share),
        "airloop_prediction_drift": (
            "PSI of served scores against the reference",
            prediction.get("score"),
        ),
        "airloop_labelled_predictions": (
            "Predictions with labels in the window",
            performance.labelled,
        ),
        "airloop_retrain_requested": (
            "1 when the last interval opened a retrain request",
            float(decision.action == "requested"),
        ),
    }
    for name, (text, value) in gauges.items():
        if value is not None:
            lines += [
                f"# HELP {name} {text}",
                f"# TYPE {name} gauge",
                f'{name}{{usecase="{uc}"}} {value}',
            ]
    live = performance.live or {}
    if live:
        lines += [
            "# HELP airloop_live_metric Live metric on labelled predictions",
            "# TYPE airloop_live_metric gauge",
        ]
        lines += [
            f'airloop_live_metric{{usecase="{uc}",metric="{_label(k)}"}} {v}'
            for k, v in live.items()
            if v is not None
        ]
    return "\n".join(lines) + "\n"
