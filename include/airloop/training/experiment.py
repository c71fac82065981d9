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

from airloop.settings import Settings
from airloop.tracking import configure, experiment_id, experiment_name
from airloop.training import train as training
from airloop.training.dataset import build_training_set
from airloop.training.metrics import metric
from airloop.training.models import families
from airloop.training.pipeline import resolve_window
from airloop.usecase import UseCase, resolve


class ExperimentError(ValueError):
    """A search that cannot run as asked; the message names the parameter."""


def plan_trials(
    task: str, family: str, search_space: dict[str, list[Any]], n_trials: int, seed: int
) -> list[dict[str, Any]]:
    """Up to ``n_trials`` distinct points of the grid, drawn reproducibly with ``seed``."""
    if family not in families(task):
        raise ExperimentError(f"model_family {family!r} is not a {task} family: {families(task)}")
    for key, values in search_space.items():
        if not isinstance(values, list) or not values:
            raise ExperimentError(f"search_space[{key!r}] must be a non-empty list of values")
    keys = sorted(search_space)
    grid = [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*(search_space[k] for k in keys))
    ]
    random.Random(seed).shuffle(grid)
    return [
        {"trial": i, "family": family, "params": params, "seed": seed}
        for i, params in enumerate(grid[: max(1, n_trials)])
    ]


def plan_from_params(
    params: dict[str, Any], usecase: UseCase | str | None = None
) -> list[dict[str, Any]]:
    """The trials a form asks for; refuses an unknown family, metric or an empty search space."""
    uc, _ = resolve(usecase, None)
    metric(params.get("metric") or uc.metrics[0], uc.task)
    return plan_trials(
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
) -> dict[str, Any]:
    """Build the training set and open the parent MLflow run the trials nest under."""
    import mlflow

    uc, st = resolve(usecase, settings)
    opt = params.get("metric") or uc.metrics[0]
    trials = plan_from_params(params, uc)
    lo, hi = resolve_window(uc, None, None, params)
    training_set = build_training_set(st, uc, lo, hi).as_dict()
    configure(st)
    exp = experiment_id(st, experiment_name(uc.name, "experimentation"))
    tags = training.lineage_tags(lineage)
    existing = (
        training.find_run(
            st,
            experiment_name(uc.name, "experimentation"),
            {
                **{k: tags[k] for k in tags if k in ("airloop.dag_id", "airloop.run_id")},
                "airloop.stage": "experiment",
            },
        )
        if "airloop.run_id" in tags
        else None
    )
    if existing is not None:
        parent = existing.info.run_id
    else:
        with mlflow.start_run(
            experiment_id=exp, run_name=f"experiment {lo:%Y-%m-%d}..{hi:%Y-%m-%d}"
        ) as run:
            mlflow.set_tags({**tags, "airloop.stage": "experiment", "airloop.usecase": uc.name})
            mlflow.log_params(
                {
                    "window_start": training_set["start"],
                    "window_end": training_set["end"],
                    "metric": opt,
                    "model_family": trials[0]["family"],
                    "n_trials": len(trials),
                    "search_space": json.dumps(params.get("search_space") or {}, sort_keys=True),
                    "training_set_digest": training_set["digest"],
                    "feature_service": training_set["feature_service"],
                }
            )
            parent = run.info.run_id
    return {"parent_run_id": parent, "training_set": training_set, "metric": opt}


def run_trial(
    prepared: dict[str, Any],
    trial: dict[str, Any],
    lineage: dict[str, Any],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """One trial: a nested MLflow run with its params, validation metrics and the dataset."""
    uc, st = resolve(usecase, settings)
    result = training.train_and_log(
        st,
        uc,
        prepared["training_set"],
        {"family": trial["family"], "params": trial["params"], "seed": trial["seed"]},
        {**lineage, "trial": trial["trial"]},
        experiment=experiment_name(uc.name, "experimentation"),
        parent_run_id=prepared["parent_run_id"],
        run_name=f"trial {trial['trial']}",
        log_the_model=False,
    )
    return {
        "trial": trial["trial"],
        "run_id": result["run_id"],
        "config": result["config"],
        "metrics": result["metrics"],
    }


def select_best(
    prepared: dict[str, Any],
    results: list[dict[str, Any]],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Pick the best trial on the chosen metric; log a comparison table and plot; propose it."""
    uc, st = resolve(usecase, settings)
    opt = prepared["metric"]
    higher = metric(opt, uc.task).higher_is_better
    key = f"val_{opt}"
    scored = [r for r in results if pd.notna(r["metrics"].get(key))]
    if not scored:
        raise ExperimentError(f"no trial produced {key}")
    best = (max if higher else min)(scored, key=lambda r: r["metrics"][key])
    table = pd.DataFrame(
        [
            {"trial": r["trial"], "run_id": r["run_id"], **r["config"]["params"], **r["metrics"]}
            for r in results
        ]
    ).sort_values(key, ascending=not higher)
    client = configure(st)
    parent = prepared["parent_run_id"]
    proposal = {
        "family": best["config"]["family"],
        "params": best["config"]["params"],
        "seed": best["config"]["seed"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "trials.csv"
        table.to_csv(csv, index=False)
        client.log_artifact(parent, str(csv), artifact_path="comparison")
        png = Path(tmp) / "trials.png"
        _plot(table, key, png)
        client.log_artifact(parent, str(png), artifact_path="comparison")
    client.log_metric(parent, f"best_{key}", best["metrics"][key])
    client.set_tag(parent, "airloop.proposal", "true")
    client.set_tag(parent, "airloop.proposed_config", json.dumps(proposal, sort_keys=True))
    client.set_tag(parent, "airloop.best_trial_run", best["run_id"])
    return {
        "parent_run_id": parent,
        "best_trial": best["trial"],
        "best_run_id": best["run_id"],
        key: best["metrics"][key],
        "proposal": proposal,
    }


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
