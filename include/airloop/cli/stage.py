"""``airloop stage <name>``: one stage of a DAG, as a task runs it in a container (C5).

Each command calls its stage function with the arguments the local task passes, as JSON, and
prints the stage's record on a line of its own (``AIRLOOP_RESULT {...}``), which the task reads
back into XCom.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from airloop.cli.common import app
from airloop.core.records import RESULT_LINE, to_json

stage_app = typer.Typer(
    help="One stage, as a task runs it in a container; prints its record as AIRLOOP_RESULT <json>.",
    no_args_is_help=True,
)
app.add_typer(stage_app, name="stage")
UseCaseOpt = Annotated[str | None, typer.Option(help="Use case name or path (default: active)")]


def emit(record: Any) -> None:
    """The record, on the line the calling task looks for."""
    typer.echo(RESULT_LINE + json.dumps(to_json(record)))


@stage_app.command("train-model")
def train_model(
    training_set: Annotated[str, typer.Option(help="The TrainingSet record, JSON")],
    lineage: Annotated[str, typer.Option(help="Who and what started the run, JSON")],
    config: Annotated[str, typer.Option(help='{"family": ..., "params": {...}}, JSON')] = "{}",
    usecase: UseCaseOpt = None,
) -> None:
    """The train step of model_training: training.pipeline.train_model."""
    from airloop.training.dataset import TrainingSet
    from airloop.training.pipeline import train_model as stage

    chosen = json.loads(config) or None
    emit(stage(TrainingSet.from_dict(training_set), json.loads(lineage), chosen, usecase))


@stage_app.command("score-interval")
def score_interval(
    start: Annotated[str, typer.Option(help="The data interval's start, ISO 8601")],
    end: Annotated[str, typer.Option(help="The data interval's end, ISO 8601")],
    usecase: UseCaseOpt = None,
) -> None:
    """Batch scoring of one interval: serving.batch.score_interval."""
    from airloop.serving.batch import score_interval as stage

    emit(stage(datetime.fromisoformat(start), datetime.fromisoformat(end), usecase))
