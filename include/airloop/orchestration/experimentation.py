"""The experimentation DAG (C): a form in the UI, trials in parallel, the best one proposed."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, dag, task

from airloop.orchestration.feature_pipeline import schedule_bounds
from airloop.orchestration.tasks import dag_header, run_lineage, run_stage
from airloop.settings import get_settings
from airloop.training.families import DEFAULT_SEARCH_SPACES, FAMILY_NAMES, METRIC_NAMES
from airloop.usecase import load_usecase

STAGES = "airloop.training.experiment"


def build_experimentation(doc_md: str | None = None) -> DAG:
    usecase = load_usecase(get_settings().usecase)
    name = usecase.name
    start, _ = schedule_bounds(usecase)
    window_start = usecase.replay.start.isoformat() if usecase.replay else None
    # The form's default: the first training window of the replay (what the demo trains on).
    window_end = (
        (usecase.replay.start + usecase.training.window).isoformat() if usecase.replay else None
    )
    family = usecase.training.family

    @dag(
        dag_id="experimentation",
        description=f"Hyper-parameter search for the {name} model, tracked in MLflow",
        doc_md=doc_md,
        schedule=None,
        start_date=start,
        **dag_header(usecase, "experimentation"),
        params={
            "window_start": Param(
                window_start, type="string", format="date", title="Training window start"
            ),
            "window_end": Param(
                window_end, type="string", format="date", title="Training window end (exclusive)"
            ),
            "model_family": Param(
                family, type="string", enum=FAMILY_NAMES[usecase.task], title="Model family"
            ),
            "search_space": Param(
                DEFAULT_SEARCH_SPACES.get(family, {}),
                type="object",
                title="Search space",
                description="parameter name → list of values",
            ),
            "n_trials": Param(3, type="integer", minimum=1, maximum=50, title="Number of trials"),
            "metric": Param(
                usecase.metrics[0],
                type="string",
                enum=METRIC_NAMES[usecase.task],
                title="Metric to optimise",
            ),
            "seed": Param(usecase.training.seed, type="integer", title="Seed"),
        },
    )
    def experimentation() -> None:
        @task
        def plan_trials(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
            return run_stage(f"{STAGES}:plan_from_params", params=dict(params or {}), usecase=name)

        @task
        def prepare_experiment(params: dict[str, Any] | None = None) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:prepare_experiment",
                params=dict(params or {}),
                lineage=run_lineage(),
                usecase=name,
            )

        @task
        def run_trial(prepared: dict[str, Any], trial: dict[str, Any]) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:run_trial",
                prepared=prepared,
                trial=trial,
                lineage=run_lineage(),
                usecase=name,
            )

        @task
        def select_best(prepared: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
            return run_stage(
                f"{STAGES}:select_best", prepared=prepared, results=list(results), usecase=name
            )

        trials = plan_trials()
        prepared: Any = prepare_experiment()
        trials >> prepared
        results: Any = run_trial.partial(prepared=prepared).expand(trial=trials)
        select_best(prepared, results)

    return experimentation()
