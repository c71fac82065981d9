"""The experimentation DAG (C): a form in the UI, trials in parallel, the best one proposed."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, dag, task

from airloop.catalog import family, family_names, metric_names
from airloop.orchestration.tasks import (
    dag_header,
    run_lineage,
    run_stage,
    schedule_bounds,
)
from airloop.settings import get_settings
from airloop.usecase import UseCase, dag_id
from airloop.usecase.run_params import N_TRIALS_MAX, SEED_MAX


@task
def plan_trials(usecase: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The points of the search space to try; a bad form fails here, at once, naming the field."""
    from airloop.training.experiment import plan_trials as stage

    run_stage(check_form, dict(params or {}), usecase)
    return run_stage(stage, dict(params or {}), usecase)


def check_form(params: dict[str, Any], usecase: str) -> None:
    """The run's parameters against the use case (what the Params' schemas cannot say)."""
    from airloop.usecase import resolve
    from airloop.usecase.run_params import check_experiment_params

    check_experiment_params(params, resolve(usecase, None)[0])


@task
def prepare_experiment(usecase: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A point-in-time correct training set, and the parent MLflow run."""
    from airloop.training.experiment import prepare_experiment as stage

    return run_stage(stage, dict(params or {}), run_lineage(), usecase)


@task
def run_trial(prepared: dict[str, Any], trial: dict[str, Any], usecase: str) -> dict[str, Any]:
    """One nested MLflow run for one point of the search space."""
    from airloop.training.experiment import PreparedExperiment, Trial
    from airloop.training.experiment import run_trial as stage

    return run_stage(
        stage,
        PreparedExperiment.from_dict(prepared),
        Trial.from_dict(trial),
        run_lineage(),
        usecase,
    )


@task
def select_best(
    prepared: dict[str, Any], results: list[dict[str, Any]], usecase: str
) -> dict[str, Any]:
    """A comparison on the parent run, and the best trial proposed to model_training."""
    from airloop.training.experiment import PreparedExperiment, TrialResult
    from airloop.training.experiment import select_best as stage

    return run_stage(
        stage,
        PreparedExperiment.from_dict(prepared),
        [TrialResult.from_dict(r) for r in results],
        usecase,
    )


def experiment_form(usecase: UseCase) -> dict[str, Param]:
    """The Trigger form: a window (the replay's first training window), family, space, trials."""
    replay, chosen = usecase.replay, usecase.training.family
    window_start = replay.start.isoformat() if replay else None
    window_end = (replay.start + usecase.first_window).isoformat() if replay else None
    return {
        "window_start": Param(
            window_start, type="string", format="date", title="Training window start"
        ),
        "window_end": Param(
            window_end, type="string", format="date", title="Training window end (exclusive)"
        ),
        "model_family": Param(
            chosen, type="string", enum=family_names(usecase.task), title="Model family"
        ),
        "search_space": Param(
            family(chosen, usecase.task).search_space,
            type="object",
            additionalProperties={"type": "array", "minItems": 1},
            title="Search space",
            description="parameter name → list of values",
        ),
        "n_trials": Param(
            3, type="integer", minimum=1, maximum=N_TRIALS_MAX, title="Number of trials"
        ),
        "metric": Param(
            usecase.metrics[0],
            type="string",
            enum=metric_names(usecase.task),
            title="Metric to optimise",
        ),
        "seed": Param(
            usecase.training.seed, type="integer", minimum=0, maximum=SEED_MAX, title="Seed"
        ),
    }


def build_experimentation(usecase: UseCase, ref: str, doc_md: str | None = None) -> DAG:
    """The DAG ``experimentation``: triggered by hand from its form."""
    start, _ = schedule_bounds(usecase)

    @dag(
        dag_id=dag_id("experimentation", usecase, get_settings()),
        description=f"Hyper-parameter search for the {usecase.name} model, tracked in MLflow",
        doc_md=doc_md,
        schedule=None,
        start_date=start,
        **dag_header(usecase, "experimentation"),
        params=experiment_form(usecase),
    )
    def experimentation() -> None:
        trials = plan_trials(usecase=ref)
        prepared: Any = prepare_experiment(usecase=ref)
        trials >> prepared
        results: Any = run_trial.partial(prepared=prepared, usecase=ref).expand(trial=trials)
        select_best(prepared, results, usecase=ref)

    return experimentation()
