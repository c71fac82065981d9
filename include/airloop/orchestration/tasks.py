"""Glue between Airflow tasks and airloop's domain functions.

Task bodies call :func:`run_stage`: it imports the stage lazily (DAG files stay light), and
turns errors that a retry cannot fix (bad data, a bad use case) into AirflowFailException so
the run fails at once with the reason, instead of retrying.
"""

from __future__ import annotations

import importlib
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
    """Who and what started this run: recorded on every MLflow run and model version."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    run = context["dag_run"]
    triggered_by = getattr(run, "triggered_by", None)
    trigger = str(getattr(run, "run_type", "unknown"))
    if triggered_by is not None:
        trigger = f"{trigger}/{getattr(triggered_by, 'value', triggered_by)}"
    return {"dag_id": run.dag_id, "run_id": run.run_id, "trigger": trigger}


def run_stage(stage: str, **kwargs: Any) -> Any:
    """Call ``module:function`` with kwargs; permanent errors fail the task without retries."""
    function = _load(stage)
    permanent = tuple(_load(p) for p in PERMANENT_ERRORS)
    try:
        return function(**kwargs)
    except permanent as exc:
        raise AirflowFailException(str(exc)) from exc
