"""Glue between Airflow tasks and airloop's domain functions.

Task bodies call :func:`run_stage`: it imports the stage lazily (DAG files stay light), and
turns errors that a retry cannot fix (bad data, a bad use case) into AirflowFailException so
the run fails at once with the reason, instead of retrying.
"""

from __future__ import annotations

import importlib
import json
from datetime import timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

PERMANENT_ERRORS = (
    "airloop.quality.gate:ValidationFailed",
    "airloop.data.landing:RawDataError",
    "airloop.usecase:UseCaseError",
    "airloop.features.pipeline:IntervalError",
    "airloop.training.dataset:TrainingDataError",
    "airloop.training.models:ModelConfigError",
    "airloop.training.experiment:ExperimentError",
    "airloop.serving.deploy:DeployError",
)

DEFAULT_ARGS: dict[str, Any] = {
    "retries": 1,
    "retry_delay": timedelta(seconds=15),
}

TAGS = ("airloop", "features", "experimentation", "training", "serving", "monitoring")


def dag_header(usecase: Any, stage: str) -> dict[str, Any]:
    """The arguments every airloop DAG shares: owner, retries, tags, no catch-up."""
    if stage not in TAGS:
        raise ValueError(f"unknown stage tag {stage!r}; use one of {TAGS}")
    return {
        "catchup": False,
        "default_args": {**DEFAULT_ARGS, "owner": usecase.owner},
        "tags": ["airloop", stage, f"usecase:{usecase.name}"],
    }


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def run_lineage() -> dict[str, Any]:
    """Who and what started this run: recorded on every MLflow run and model version.

    A run opened by a retrain request also carries the request's id and its reason.
    """
    from airflow.sdk import get_current_context

    context = get_current_context()
    run = context["dag_run"]
    triggered_by = getattr(run, "triggered_by", None)
    run_type = getattr(run, "run_type", "unknown")
    trigger = str(getattr(run_type, "value", run_type))
    if triggered_by is not None:
        trigger = f"{trigger}/{getattr(triggered_by, 'value', triggered_by)}"
    lineage: dict[str, Any] = {"dag_id": run.dag_id, "run_id": run.run_id, "trigger": trigger}
    request = triggering_request()
    if request:
        lineage["retrain_request"] = request.get("request_id")
        lineage["retrain_reason"] = json.dumps(request.get("reasons", []), sort_keys=True)[:4000]
    return lineage


def triggering_request() -> dict[str, Any] | None:
    """The extra of the newest Asset event that triggered this run (a retrain request), if any."""
    from airflow.sdk import get_current_context

    events = get_current_context().get("triggering_asset_events") or {}
    found = [event for key in events for event in events[key]]
    if not found:
        return None
    newest = max(found, key=lambda event: event.timestamp)
    return dict(newest.extra or {}) or None


def run_stage(stage: str, **kwargs: Any) -> Any:
    """Call ``module:function`` with kwargs; permanent errors fail the task without retries.

    The result goes to XCom as strict JSON: a NaN metric or an infinite score becomes null
    instead of failing the push.
    """
    from airloop.records import json_safe

    function = _load(stage)
    permanent = tuple(_load(p) for p in PERMANENT_ERRORS)
    try:
        return json_safe(function(**kwargs))
    except permanent as exc:
        raise AirflowFailException(str(exc)) from exc
