"""Commands for models, in this process: experiment (C), train (D), evaluate."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from airloop.cli.common import EndOpt, IntervalsOpt, StartOpt, app, context, window


@app.command()
def experiment(
    start: StartOpt = None,
    end: EndOpt = None,
    intervals: IntervalsOpt = None,
    family: Annotated[str | None, typer.Option(help="Model family")] = None,
    search_space: Annotated[
        str | None, typer.Option(help='JSON, e.g. {"learning_rate": [0.05, 0.1]}')
    ] = None,
    trials: Annotated[int, typer.Option(help="Number of trials")] = 3,
) -> None:
    """Run an experiment (C) in this process, one trial after another."""
    from airloop.training.experiment import run_experiment

    settings, uc = context()
    span = window(uc, start, end, intervals)
    params: dict[str, Any] = {
        "window_start": span.first.isoformat(),
        "window_end": span.last.isoformat(),
        "n_trials": trials,
    }
    if family:
        params["model_family"] = family
    if search_space:
        params["search_space"] = json.loads(search_space)
    proposal = run_experiment(params, {"trigger": "cli"}, uc, settings)
    typer.echo(json.dumps(proposal.to_dict(), indent=2))


@app.command()
def train(
    start: StartOpt = None,
    end: EndOpt = None,
    intervals: IntervalsOpt = None,
    config: Annotated[
        str | None, typer.Option(help='JSON, e.g. {"family": "logistic", "params": {"C": 1.0}}')
    ] = None,
) -> None:
    """Run the training pipeline (D) in this process: train, evaluate, gate, register, promote."""
    from airloop.training.pipeline import run_training

    settings, uc = context()
    span = window(uc, start, end, intervals)
    result = run_training(
        span.first.isoformat(),
        span.last.isoformat(),
        json.loads(config) if config else None,
        {"trigger": "cli"},
        uc,
        settings,
    )
    shown = result.to_dict()
    typer.echo(
        json.dumps(
            {k: shown[k] for k in ("trained", "evaluation", "registered", "promotion")}, indent=2
        )
    )


@app.command()
def evaluate(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of a trained model")],
    start: StartOpt = None,
    end: EndOpt = None,
    intervals: IntervalsOpt = None,
) -> None:
    """Evaluate a trained model (and the champion) on the window's held-out time slice."""
    from airloop.registry.models import alias_version
    from airloop.training.pipeline import build_training_set
    from airloop.training.train import evaluate_run

    settings, uc = context()
    span = window(uc, start, end, intervals)
    training_set = build_training_set(
        params={"window_start": span.first.isoformat(), "window_end": span.last.isoformat()},
        usecase=uc,
        settings=settings,
    )
    champion = alias_version(settings, uc.training.model_name)
    result = evaluate_run(settings, uc, training_set, run_id, champion)
    typer.echo(json.dumps(result.to_dict(), indent=2))
