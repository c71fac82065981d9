"""Experimentation (C): trials of a search space in parallel, nested under one MLflow run.

The best trial becomes the proposed training configuration: the parent run carries it as a
tag, and the training pipeline (D) picks the latest proposal up.
"""

from __future__ import annotations

import itertools
import json
import random
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.catalog import family_names, metric
from airloop.core.errors import PermanentError
from airloop.core.records import Number, Record
from airloop.registry.tracking import configure, experiment_id, experiment_name, note_run
from airloop.settings import Settings
from airloop.training.dataset import TrainingSet, resolve_window, retrieve_training_set
from airloop.training.train import IDENTITY_TAGS, TrainConfig, find_run, lineage_tags, train_and_log
from airloop.usecase import UseCase, resolve


class ExperimentError(PermanentError, ValueError):
    """A search that cannot run as asked; the message names the parameter."""


class Trial(Record):
    """One point of the search space: a family, its parameters and the seed."""

    trial: int
    family: str
    params: dict[str, Any]
    seed: int


class PreparedExperiment(Record):
    """The experiment's training set and the parent MLflow run its trials nest under."""

    parent_run_id: str
    training_set: TrainingSet
    metric: str


class TrialResult(Record):
    """A finished trial: its nested MLflow run, configuration and validation metrics."""

    trial: int
    run_id: str
    config: TrainConfig
    metrics: dict[str, Number]


class Proposal(Record):
    """The best trial, proposed as the training configuration of ``model_training``."""

    parent_run_id: str
    best_trial: int
    best_run_id: str
    metric: str
    value: float
    config: TrainConfig


def grid_trials(
    task: str, family: str, search_space: dict[str, list[Any]], n_trials: int, seed: int
) -> list[Trial]:
    """Up to ``n_trials`` distinct points of the grid, drawn reproducibly with ``seed``."""
    if family not in family_names(task):
        raise ExperimentError(
            f"model_family {family!r} is not a {task} family: {family_names(task)}"
        )
    for key, values in search_space.items():
        if not isinstance(values, list) or not values:
            raise ExperimentError(f"search_space[{key!r}] must be a non-empty list of values")
    keys = sorted(search_space)
    grid = [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*(search_space[k] for k in keys))
    ]
    random.Random(seed).shuffle(grid)  # nosec B311 # a seeded, reproducible order, no secret
    return [
        Trial(trial=i, family=family, params=params, seed=seed)
        for i, params in enumerate(grid[: max(1, n_trials)])
    ]


def plan_trials(params: dict[str, Any], usecase: UseCase | str | None = None) -> list[Trial]:
    """The trials a form asks for; refuses an unknown family, metric or an empty search space."""
    uc, _ = resolve(usecase, None)
    try:
        metric(params.get("metric") or uc.metrics[0], uc.task)
    except ValueError as exc:
        raise ExperimentError(f"metric: {exc}") from None
    return grid_trials(
        uc.task,
        params.get("model_family") or uc.training.family,
        params.get("search_space") or {},
        int(params.get("n_trials") or 3),
        int(params.get("seed") or uc.training.seed),
    )


def prepare_experiment(
    params: dict[str, Any],
    lineage: dict[str, Any],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> PreparedExperiment:
    """Build the training set and open the parent MLflow run the trials nest under.

    A retried task finds the parent run its earlier try opened.
    """
    import mlflow

    uc, st = resolve(usecase, settings)
    opt = params.get("metric") or uc.metrics[0]
    trials = plan_trials(params, uc)
    lo, hi = resolve_window(uc, None, None, params)
    training_set = retrieve_training_set(st, uc, lo, hi)
    experiment = experiment_name(uc.name, "experimentation")
    tags = lineage_tags(lineage)
    existing = None
    if "airloop.run_id" in tags:
        identity = {k: tags[k] for k in IDENTITY_TAGS if k in tags}
        existing = find_run(st, experiment, {**identity, "airloop.stage": "experiment"})
    if existing is not None:
        parent = note_run(existing.info.run_id)
    else:
        configure(st)
        with mlflow.start_run(
            experiment_id=experiment_id(st, experiment),
            run_name=f"experiment {lo:%Y-%m-%d}..{hi:%Y-%m-%d}",
        ) as run:
            note_run(run.info.run_id)
            mlflow.set_tags({**tags, "airloop.stage": "experiment", "airloop.usecase": uc.name})
            mlflow.log_params(
                {
                    "window_start": training_set.start,
                    "window_end": training_set.end,
                    "metric": opt,
                    "model_family": trials[0].family,
                    "n_trials": len(trials),
                    "search_space": json.dumps(params.get("search_space") or {}, sort_keys=True),
                    "training_set_digest": training_set.digest,
                    "feature_service": training_set.feature_service,
                }
            )
            parent = run.info.run_id
    return PreparedExperiment(parent_run_id=parent, training_set=training_set, metric=opt)


def run_trial(
    prepared: PreparedExperiment,
    trial: Trial,
    lineage: dict[str, Any],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> TrialResult:
    """One trial: a nested MLflow run with its params, validation metrics and the dataset."""
    uc, st = resolve(usecase, settings)
    result = train_and_log(
        st,
        uc,
        prepared.training_set,
        {"family": trial.family, "params": trial.params, "seed": trial.seed},
        {**lineage, "trial": trial.trial},
        experiment=experiment_name(uc.name, "experimentation"),
        parent_run_id=prepared.parent_run_id,
        run_name=f"trial {trial.trial}",
        log_the_model=False,
    )
    return TrialResult(
        trial=trial.trial, run_id=result.run_id, config=result.config, metrics=result.metrics
    )


def select_best(
    prepared: PreparedExperiment,
    results: list[TrialResult],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> Proposal:
    """Pick the best trial on the chosen metric; log a comparison table and plot; propose it."""
    uc, st = resolve(usecase, settings)
    higher = metric(prepared.metric, uc.task).higher_is_better
    key = f"val_{prepared.metric}"
    scored = [r for r in results if r.metrics.get(key) is not None]
    if not scored:
        raise ExperimentError(f"no trial produced {key}")
    best = (max if higher else min)(scored, key=lambda r: r.metrics[key] or 0.0)
    value = best.metrics[key]
    assert value is not None  # nosec B101 # for mypy: scored trials have it
    table = pd.DataFrame(
        [{"trial": r.trial, "run_id": r.run_id, **r.config.params, **r.metrics} for r in results]
    ).sort_values(key, ascending=not higher)
    client = configure(st)
    parent = prepared.parent_run_id
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "trials.csv"
        table.to_csv(csv, index=False)
        client.log_artifact(parent, str(csv), artifact_path="comparison")
        png = Path(tmp) / "trials.png"
        _plot(table, key, png)
        client.log_artifact(parent, str(png), artifact_path="comparison")
    client.log_metric(parent, f"best_{key}", value)
    client.set_tag(parent, "airloop.proposal", "true")
    client.set_tag(
        parent, "airloop.proposed_config", json.dumps(best.config.to_dict(), sort_keys=True)
    )
    client.set_tag(parent, "airloop.best_trial_run", best.run_id)
    return Proposal(
        parent_run_id=parent,
        best_trial=best.trial,
        best_run_id=best.run_id,
        metric=key,
        value=value,
        config=best.config,
    )


def run_experiment(
    params: dict[str, Any],
    lineage: dict[str, Any] | None = None,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> Proposal:
    """Every stage of (C) in one process, trial after trial: ``airloop experiment`` and notebooks."""
    uc, st = resolve(usecase, settings)
    lineage = lineage or {"trigger": "cli"}
    prepared = prepare_experiment(params, lineage, uc, st)
    results = [run_trial(prepared, t, lineage, uc, st) for t in plan_trials(params, uc)]
    return select_best(prepared, results, uc, st)


def _plot(table: pd.DataFrame, key: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = table.sort_values("trial")
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(ordered["trial"].astype(str), ordered[key], color="#4c72b0")
    ax.set_xlabel("trial")
    ax.set_ylabel(key)
    ax.set_title("validation score per trial")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
