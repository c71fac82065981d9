"""Both models on the same held-out rows, judged by the candidate use case's own gate.

The rows are the latest part of the window (the use case's ``training.test_fraction``), cut
from the base's training set, kept where the candidate's training set has the same events:
a change to a feature's definition changes the inputs, never which events are compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from airloop.catalog import metric
from airloop.core.columns import EVENT_ID, EVENT_TS, LABEL
from airloop.core.errors import PermanentError
from airloop.core.records import Number, Record
from airloop.registry.models import GateDecision, gate
from airloop.registry.tracking import configure
from airloop.settings import Settings
from airloop.training.dataset import (
    TrainingSet,
    load_training_rows,
    load_training_set,
    split_by_time,
)
from airloop.training.metrics import compute_metrics, slice_metrics
from airloop.training.models import model_inputs, score
from airloop.usecase import UseCase

MOVED_SLICES = 5  # the slices a report lists: those whose primary metric moved most


class SliceMove(Record):
    """One slice's primary metric for both models on the same rows."""

    slice: str
    value: str
    rows: int
    champion: Number
    candidate: Number
    delta: Number


class Comparison(Record):
    """The candidate and the champion on the same rows, and the gate's decision on them."""

    rows: int
    window: list[str]
    primary_metric: str
    higher_is_better: bool
    champion_version: str | None
    champion: dict[str, Number] | None
    candidate: dict[str, Number]
    decision: GateDecision
    slices: list[SliceMove] = []
    label_differs: int = 0  # rows whose label the candidate's use case defines differently


@dataclass
class Scorer:
    """A logged model loaded for scoring: its raw estimator and its signature's input columns."""

    raw: Any
    columns: list[str]
    signature: dict[str, str]  # input column: MLflow type

    def scores(self, task: str, rows: pd.DataFrame) -> np.ndarray:
        """The model's scores of these rows (its inputs taken by name)."""
        missing = [c for c in self.columns if c not in rows.columns]
        if missing:
            raise PermanentError(
                f"the model needs inputs the rows lack: {', '.join(missing)}"
                " (the training set was built by another use case?)"
            )
        return score(self.raw, task, model_inputs(rows, self.columns))


def load_scorer(settings: Settings, uri: str) -> Scorer:
    """A model from the registry or a run of the home ``settings`` point at."""
    import mlflow

    configure(settings)
    model = mlflow.pyfunc.load_model(uri)
    schema = model.metadata.get_input_schema()
    inputs = list(schema.inputs) if schema is not None else []
    signature = {str(spec.name): str(getattr(spec.type, "name", spec.type)) for spec in inputs}
    return Scorer(model.get_raw_model(), list(signature), signature)


def held_out_rows(
    usecase: UseCase, champion_set: TrainingSet, candidate_set: TrainingSet
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The base's held-out slice and the candidate's rows of the same events, in one order."""
    spec = usecase.training
    base = load_training_set(champion_set.uri, spec.max_rows)
    _, _, test = split_by_time(base, spec.validation_fraction, spec.test_fraction)
    theirs = load_training_rows(candidate_set.uri, test[EVENT_ID])
    theirs = theirs.drop_duplicates(EVENT_ID).set_index(EVENT_ID)
    test = test[test[EVENT_ID].isin(theirs.index)].reset_index(drop=True)
    if test.empty:
        raise PermanentError(
            "the base's and the candidate's training sets share no held-out event: the change"
            " redefines the events themselves (their id or source), so no row can be compared"
        )
    mine = theirs.loc[test[EVENT_ID]].reset_index()
    return test, mine


def slice_moves(
    usecase: UseCase,
    rows: pd.DataFrame,
    champion_scores: np.ndarray,
    candidate_scores: np.ndarray,
) -> list[SliceMove]:
    """The slices (``training.slices``) whose primary metric moved most, largest first."""
    spec, primary = usecase.training, usecase.metrics[0]

    def by_slice(scores: np.ndarray) -> dict[tuple[str, str], Any]:
        found = slice_metrics(
            [primary], usecase.task, rows, scores, LABEL, spec.slices, spec.slice_min_rows
        )
        return {(s.slice, s.value): s for s in found if s.metrics.get(primary) is not None}

    theirs, mine = by_slice(champion_scores), by_slice(candidate_scores)
    moves = [
        SliceMove(
            slice=key[0],
            value=key[1],
            rows=mine[key].rows,
            champion=theirs[key].metrics[primary],
            candidate=mine[key].metrics[primary],
            delta=mine[key].metrics[primary] - theirs[key].metrics[primary],
        )
        for key in mine
        if key in theirs
    ]
    moves.sort(key=lambda m: abs(float(m.delta or 0)), reverse=True)
    return moves[:MOVED_SLICES]


def compare(
    usecase: UseCase,
    candidate: Scorer,
    rows: pd.DataFrame,
    champion: Scorer | None,
    theirs_rows: pd.DataFrame,
    champion_version: str | None,
) -> Comparison:
    """Score both on the same held-out rows (:func:`held_out_rows`: the champion's, and the
    candidate's of the same events) and let the use case's gate decide."""
    names = usecase.metrics
    mine = candidate.scores(usecase.task, rows)
    measured = compute_metrics(names, usecase.task, rows[LABEL], mine)
    theirs_metrics: dict[str, Number] | None = None
    moves: list[SliceMove] = []
    if champion is not None:
        theirs = champion.scores(usecase.task, theirs_rows)
        # Both on the candidate's labels: the rows are the same events, the question is its own.
        theirs_metrics = compute_metrics(names, usecase.task, rows[LABEL], theirs)
        moves = slice_moves(usecase, rows, theirs, mine)
    decision = gate(usecase, measured, theirs_metrics, champion_version)
    differs = int((theirs_rows[LABEL].to_numpy() != rows[LABEL].to_numpy()).sum())
    return Comparison(
        rows=len(rows),
        window=[str(rows[EVENT_TS].min()), str(rows[EVENT_TS].max())],
        primary_metric=names[0],
        higher_is_better=metric(names[0], usecase.task).higher_is_better,
        champion_version=champion_version,
        champion=theirs_metrics,
        candidate=measured,
        decision=decision,
        slices=moves,
        label_differs=differs,
    )
