"""The interval's report in MLflow: one run per interval in the use case's ``monitoring``
experiment, its figures logged against the model version that served."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airloop.monitoring.checks import interval_dir
from airloop.monitoring.records import Decision, PerformanceCheck
from airloop.registry.tracking import configure, experiment_id, experiment_name, note_run
from airloop.settings import Settings
from airloop.usecase import UseCase


def report_metrics(full: dict[str, Any], performance: PerformanceCheck) -> dict[str, float]:
    """The interval's figures as MLflow metrics: drift per feature, shares, live metrics."""
    data = full.get("data") or {}
    metrics: dict[str, float] = {}
    for f in data.get("features", []):
        metrics[f"drift.{f['feature']}"] = float(f["score"])
    if data.get("share_drifted") is not None:
        metrics["drift_share"] = float(data["share_drifted"])
    if full.get("prediction"):
        metrics["prediction_psi"] = float(full["prediction"]["score"])
    for k, v in (performance.live or {}).items():
        if v is not None:
            metrics[f"live_{k}"] = float(v)
    return metrics


def log_report(
    settings: Settings,
    usecase: UseCase,
    start: datetime,
    end: datetime,
    full: dict[str, Any],
    performance: PerformanceCheck,
    decision: Decision,
    version: str | None,
    lineage: dict[str, Any] | None,
) -> tuple[str, str]:
    """One MLflow run per interval (a re-run reuses it), against the serving version's model.

    Returns the experiment id and the run id.
    """
    import mlflow

    client = configure(settings)
    exp = experiment_id(settings, experiment_name(usecase.name, "monitoring"))
    key = start.isoformat()
    found = client.search_runs(
        [exp], filter_string=f"tags.`airloop.interval_start` = '{key}'", max_results=1
    )
    tags = {
        "airloop.stage": "monitoring",
        "airloop.usecase": usecase.name,
        "airloop.interval_start": key,
        "airloop.interval_end": end.isoformat(),
        "airloop.model_version": str(version),
        "airloop.decision": decision.action,
        **{f"airloop.{k}": str(v) for k, v in (lineage or {}).items() if v is not None},
    }
    if decision.request_id:
        tags["airloop.retrain_request"] = decision.request_id
    folder = interval_dir(settings, usecase, start)
    with mlflow.start_run(
        run_id=found[0].info.run_id if found else None,
        experiment_id=exp,
        run_name=f"monitoring {start:%Y-%m-%d}",
    ) as run:
        note_run(run.info.run_id)
        mlflow.set_tags(tags)
        model_id = _model_id(client, usecase, version)
        step, timestamp = int(start.timestamp() // 86400), int(end.timestamp() * 1000)
        # One batch: a call per metric cost 8 ms each, 41 of them a day.
        mlflow.log_metrics(
            report_metrics(full, performance), step=step, timestamp=timestamp, model_id=model_id
        )
        for name in ("report.html", "drift.json", "performance.json"):
            if (folder / name).exists():
                mlflow.log_artifact(str(folder / name), artifact_path="report")
    return exp, run.info.run_id


def _model_id(client: Any, usecase: UseCase, version: Any) -> str | None:
    """The logged model behind a registered version, so its page shows the live figures."""
    if version is None:
        return None
    try:
        return client.get_model_version(usecase.training.model_name, str(version)).model_id
    except Exception:
        return None
