"""Training and evaluation, logged to MLflow: the code behind `airloop train` and the DAGs.

A task in Airflow, a container running ``airloop train`` and a notebook all call these
functions, so they train identical models from identical inputs.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.catalog import is_better
from airloop.core.columns import EVENT_ID, EVENT_TS, LABEL, SCORE
from airloop.core.files import write_json
from airloop.core.provenance import git_commit, lock_hash
from airloop.core.records import Number, Record
from airloop.core.version import airloop_version
from airloop.registry.tracking import (
    artifacts_stored,
    configure,
    end_abandoned_runs,
    experiment_id,
    experiment_name,
    note_run,
)
from airloop.settings import Settings
from airloop.training.dataset import TrainingSet, load_training_set, split_by_time
from airloop.training.metrics import (
    Calibration,
    SliceMetrics,
    calibration,
    calibration_plot,
    compute_metrics,
    slice_metrics,
)
from airloop.training.models import (
    RelativeTo,
    build_model,
    calibrate,
    model_inputs,
    score,
    split_columns,
)
from airloop.usecase import Candidate, UseCase

log = logging.getLogger(__name__)
MODEL_ARTIFACT = "model"
REFERENCE_ARTIFACT = "reference/reference.parquet"
REFERENCE_ROWS = 50_000
IDENTITY_TAGS = ("airloop.dag_id", "airloop.run_id")
CONFIG_TAG = "airloop.train_config"  # the configuration a run kept, as JSON


class TrainConfig(Record):
    """What to train: a model family, its parameters, the seed, and the feature views whose
    inputs it uses (all, when none are named)."""

    family: str
    params: dict[str, Any] = {}
    seed: int = 42
    views: list[str] = []

    @property
    def label(self) -> str:
        """Its name among the candidates compared: the family, and the views it is limited to."""
        return "_on_".join([self.family, *self.views])

    @classmethod
    def from_usecase(cls, usecase: UseCase, override: dict[str, Any] | None = None) -> TrainConfig:
        """The override's choices, the use case's default for the rest.

        For the use case's own family, the override's params are laid over the use case's:
        a trial that varies the learning rate keeps the regularisation the use case sets.
        """
        override = override or {}
        family = override.get("family") or usecase.training.family
        base = usecase.training.params if family == usecase.training.family else {}
        return cls(
            family=family,
            params={**base, **(override.get("params") or {})},
            seed=int(override.get("seed", usecase.training.seed)),
            views=list(override.get("views") or []),
        )


def inputs_of(columns: list[str], views: list[str]) -> list[str]:
    """The inputs (``<view>__<feature>``) of these views and every request field; all, for none."""
    if not views:
        return columns
    return [c for c in columns if "__" not in c or c.split("__", 1)[0] in views]


class TrainedModel(Record):
    """A finished MLflow training run: the model it logged, its configuration, its metrics."""

    run_id: str
    model_uri: str
    config: TrainConfig
    metrics: dict[str, Number]


class Evaluation(Record):
    """The challenger, and the champion if any, on the same held-out test slice."""

    test_rows: int
    test_window: list[str]
    challenger: dict[str, Number]
    slices: list[SliceMetrics]
    calibration: Calibration | None = None
    champion: dict[str, Number] | None = None
    champion_version: str | None = None
    champion_error: str | None = None


@dataclass
class Fitted:
    """A fitted model with the parts of the training set it was fitted and validated on."""

    model: Any
    columns: list[str]
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    validation_metrics: dict[str, Number]
    refit: bool = False  # fitted again on train and validation after validation scored it
    config: TrainConfig | None = None  # what was kept, when candidates were compared
    compared: dict[str, Number] = field(default_factory=dict)  # config label: validation metric


def fit(
    usecase: UseCase,
    frame: pd.DataFrame,
    columns: list[str],
    config: TrainConfig,
    refit: bool = False,
    candidates: list[Candidate] | None = None,
) -> Fitted:
    """Fit on the earliest part of the window and score the next part (validation).

    With ``training.calibration``, the scores are then mapped to probabilities on the
    validation part, so its metrics are those of the calibrated model on the rows that
    calibrated it; the test part, later still, stays unseen. With ``candidates`` (the use
    case's ``training.candidates``, for the model that is logged), each of those families is
    fitted too, with its defaults, and the one the validation part scores best is kept (the
    configured family on a tie): a plain linear model beats boosted trees on a few hundred
    rows. With ``refit`` (``training.refit``), the kept model is then fitted again on the
    training and validation parts together: ``train`` is then both. A config limited to some
    views still takes every input (the model's signature is the use case's) and drops the rest.
    """
    spec = usecase.training
    train, valid, test = split_by_time(frame, spec.validation_fraction, spec.test_fraction)
    primary = usecase.metrics[0]

    def fitted_on(rows: pd.DataFrame, cfg: TrainConfig) -> Any:
        used = inputs_of(columns, cfg.views)
        categorical, numeric = split_columns(frame, used, spec.categorical)
        model = build_model(usecase.task, cfg.family, cfg.params, categorical, numeric, cfg.seed)
        if spec.relative_to:
            model = RelativeTo(model, spec.relative_to)
        return model.fit(rows[columns], rows[LABEL])

    def validated(cfg: TrainConfig) -> tuple[Any, dict[str, Number]]:
        model = calibrate(fitted_on(train, cfg), spec.calibration, valid[columns], valid[LABEL])
        scores = score(model, usecase.task, valid[columns])
        return model, compute_metrics(usecase.metrics, usecase.task, valid[LABEL], scores)

    model, metrics = validated(config)
    compared = {config.label: metrics.get(primary)}
    for candidate in candidates or []:
        other = TrainConfig(family=candidate.family, seed=config.seed, views=candidate.views)
        if other.label in compared:
            continue
        other_model, other_metrics = validated(other)
        compared[other.label] = other_metrics.get(primary)
        mine, theirs = metrics.get(primary), other_metrics.get(primary)
        if theirs is not None and (
            mine is None or not is_better(primary, usecase.task, mine, theirs)
        ):
            model, metrics, config = other_model, other_metrics, other
    if refit:  # the two slices of a training set's time order are one slice of it
        both = len(train) + len(valid)
        contiguous = frame[EVENT_TS].is_monotonic_increasing
        train = frame.iloc[:both] if contiguous else pd.concat([train, valid])
        model = fitted_on(train, config)
    return Fitted(model, columns, train, valid, test, metrics, refit, config, compared)


def lineage_tags(lineage: dict[str, Any]) -> dict[str, str]:
    """Lineage as MLflow tags under the ``airloop.`` prefix, with code and environment added:
    airloop's version, the git commit and the lock file's digest (on the run and, through
    ``register_model``, on the model version)."""
    tags = {f"airloop.{k}": str(v) for k, v in lineage.items() if v is not None}
    tags.setdefault("airloop.version", airloop_version())
    tags.setdefault("airloop.git_commit", git_commit())
    tags.setdefault("airloop.lock_hash", lock_hash())
    return tags


@cache
def pip_requirements() -> list[str]:
    """What a logged model needs installed: these packages at the versions here. Once per
    process (each lookup scans the installed packages' metadata, about 0.1 s); the executor
    asks before it forks, so tasks inherit the answer."""
    import importlib.metadata as md

    return [
        f"{name}=={md.version(name)}"
        for name in ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "skops")
    ]


def log_model(fitted: Fitted) -> None:
    """The fitted pipeline with signature, input example and explicit requirements."""
    import mlflow
    import skops.io
    from mlflow.models import infer_signature

    example = model_inputs(fitted.train.head(5), fitted.columns)
    signature = infer_signature(example, fitted.model.predict(example))
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(fitted.model))
    mlflow.sklearn.log_model(
        fitted.model,
        name=MODEL_ARTIFACT,
        signature=signature,
        input_example=example,
        pip_requirements=pip_requirements(),
        serialization_format="skops",
        skops_trusted_types=trusted,
    )


def log_reference(fitted: Fitted, usecase: UseCase, frame: pd.DataFrame) -> None:
    """The inputs and scores monitoring compares served traffic with (the training window)."""
    import mlflow

    sample = frame.sample(REFERENCE_ROWS, random_state=0) if len(frame) > REFERENCE_ROWS else frame
    reference = model_inputs(sample, fitted.columns)
    reference[SCORE] = score(fitted.model, usecase.task, reference)
    reference[LABEL] = sample[LABEL].to_numpy()
    reference[EVENT_TS] = sample[EVENT_TS].to_numpy()
    reference[EVENT_ID] = sample[EVENT_ID].to_numpy()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
        reference.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))


def find_run(settings: Settings, experiment: str, tags: dict[str, str]) -> Any | None:
    """A finished run carrying all these tags: what a retried task already did."""
    import mlflow

    configure(settings)
    exp = experiment_id(settings, experiment)
    filters = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    runs = mlflow.search_runs(
        [exp],
        filter_string=f"{filters} and attributes.status = 'FINISHED'",
        output_format="list",
        max_results=1,
    )
    return runs[0] if runs else None


def _log_training_inputs(
    usecase: UseCase, training_set: TrainingSet, frame: pd.DataFrame, fitted: Fitted
) -> None:
    """The window, the split sizes and the training set itself, as params and a dataset input."""
    import mlflow

    mlflow.log_params(
        {
            "window_start": training_set.start,
            "window_end": training_set.end,
            "labels_as_of": training_set.as_of,
            "feature_service": training_set.feature_service,
            "training_set_digest": training_set.digest,
            "training_set_rows": training_set.rows,
            "rows_read": len(frame),
            "rows_train": len(fitted.train),
            "rows_validation": len(fitted.validation),
            "rows_test": len(fitted.test),
            "fitted_on": "train and validation" if fitted.refit else "train",
        }
    )
    dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
        frame,
        source=training_set.uri,
        targets=LABEL,
        name=f"{usecase.name}_training_set",
        digest=training_set.digest[:36],
    )
    # The dataset's schema, as MLflow would infer it, without reading every value again.
    dataset.__dict__["schema"] = dataset_schema(frame)
    mlflow.log_input(dataset, context="training")


def dataset_schema(frame: pd.DataFrame) -> Any:
    """The MLflow schema ``mlflow.data.from_pandas`` infers for a frame, from each column's
    distinct values and a vectorised test for missing ones.

    MLflow infers a column of strings from every value, and whether a column is required by
    testing each value in Python: 0.6 s of each training run on a year-end window (50,000 rows,
    55 columns). The distinct values hold the same types, missing ones included, so the schema
    is the same (a unit test compares it with MLflow's). Its private inference of one column
    is used for that; the lock file pins MLflow.
    """
    from mlflow.types.schema import ColSpec, Schema, TensorSpec
    from mlflow.types.utils import _infer_pandas_column

    specs: list[ColSpec | TensorSpec] = []
    for name in frame.columns:
        column = frame[name]
        try:
            distinct = column.drop_duplicates()
        except TypeError:  # values that cannot be hashed (lists, dicts): all of them
            distinct = column
        required = not bool(column.isna().any())
        specs.append(ColSpec(type=_infer_pandas_column(distinct), name=name, required=required))
    return Schema(specs)


def train_and_log(
    settings: Settings,
    usecase: UseCase,
    training_set: TrainingSet,
    config: dict[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
    experiment: str | None = None,
    parent_run_id: str | None = None,
    run_name: str | None = None,
    log_the_model: bool = True,
) -> TrainedModel:
    """Train one model on a training set and record everything about it in an MLflow run.

    A retried task (same Airflow run and trial) finds the run its earlier try finished and
    returns it instead of training again.
    """
    import mlflow

    configure(settings)
    cfg = TrainConfig.from_usecase(usecase, config)
    experiment = experiment or experiment_name(usecase.name, "training")
    tags = lineage_tags(lineage or {})
    if tags.get("airloop.run_id"):
        identity = {k: v for k, v in tags.items() if k in (*IDENTITY_TAGS, "airloop.trial")}
        previous = find_run(settings, experiment, {**identity, "airloop.stage": "train"})
        if previous is not None:
            log.info("reusing MLflow run %s of an earlier try of this task", previous.info.run_id)
            # What this stage returned the first time: its validation metrics, not the test_*
            # ones the evaluate stage has since logged to the same run.
            metrics = {f"val_{m}": previous.data.metrics.get(f"val_{m}") for m in usecase.metrics}
            # And the configuration it kept (candidate selection may have kept another family).
            kept = previous.data.tags.get(CONFIG_TAG)
            cfg = TrainConfig.model_validate_json(kept) if kept else cfg
            return _trained(note_run(previous.info.run_id), cfg, metrics)
        for ended in end_abandoned_runs(
            settings, experiment, {**identity, "airloop.stage": "train"}
        ):
            log.warning("ended MLflow run %s, left running by a try that was killed", ended)
    frame = load_training_set(training_set.uri, usecase.training.max_rows)
    refit = log_the_model and usecase.training.refit
    candidates = usecase.training.candidates if log_the_model else None  # a trial is one config
    fitted = fit(usecase, frame, training_set.feature_columns, cfg, refit, candidates)
    cfg = fitted.config or cfg
    with mlflow.start_run(
        experiment_id=experiment_id(settings, experiment),
        run_name=run_name,
        parent_run_id=parent_run_id,
        nested=parent_run_id is not None,
    ) as run:
        note_run(run.info.run_id)
        stage = {"airloop.stage": "train", "airloop.usecase": usecase.name}
        mlflow.set_tags({**tags, **stage, CONFIG_TAG: cfg.model_dump_json()})
        mlflow.log_params(
            {
                "family": cfg.family,
                "seed": cfg.seed,
                **({"views": ",".join(cfg.views)} if cfg.views else {}),
                **{f"param.{k}": v for k, v in cfg.params.items()},
            }
        )
        if len(fitted.compared) > 1:  # the families compared on the validation slice
            mlflow.log_metrics(
                {
                    f"val_{usecase.metrics[0]}_{f}": v
                    for f, v in fitted.compared.items()
                    if v is not None
                }
            )
        _log_training_inputs(usecase, training_set, frame, fitted)
        validation = {f"val_{k}": v for k, v in fitted.validation_metrics.items()}
        mlflow.log_metrics({k: v for k, v in validation.items() if v is not None})
        if log_the_model:
            with artifacts_stored(settings):  # a failure says why, and the run ends FAILED
                log_model(fitted)
                log_reference(fitted, usecase, frame)
    return _trained(run.info.run_id, cfg, validation)


def _trained(run_id: str, cfg: TrainConfig, metrics: dict[str, Any]) -> TrainedModel:
    return TrainedModel(
        run_id=run_id,
        model_uri=f"runs:/{run_id}/{MODEL_ARTIFACT}",
        config=cfg,
        metrics=dict(metrics),
    )


def load_model(settings: Settings, uri: str) -> Any:
    """A logged scikit-learn model, from a ``runs:/`` or ``models:/`` URI."""
    import mlflow

    configure(settings)
    return mlflow.sklearn.load_model(uri)


def evaluate_run(
    settings: Settings,
    usecase: UseCase,
    training_set: TrainingSet,
    run_id: str,
    champion_version: str | None = None,
) -> Evaluation:
    """Score a run's model, and the champion if there is one, on the same held-out test slice.

    The figures go to the run as ``test_*`` metrics and an ``evaluation/`` artifact folder.
    """
    frame = load_training_set(training_set.uri, usecase.training.max_rows)
    spec = usecase.training
    _, _, test = split_by_time(frame, spec.validation_fraction, spec.test_fraction)
    inputs = model_inputs(test, training_set.feature_columns)
    challenger = load_model(settings, f"runs:/{run_id}/{MODEL_ARTIFACT}")
    scores = score(challenger, usecase.task, inputs)
    champion, champion_error = None, None
    if champion_version is not None:
        try:
            model = load_model(settings, f"models:/{spec.model_name}/{champion_version}")
            champion = compute_metrics(
                usecase.metrics, usecase.task, test[LABEL], score(model, usecase.task, inputs)
            )
        except Exception as exc:  # a champion that cannot score these inputs is not comparable
            champion_error = f"{type(exc).__name__}: {exc}"
    evaluation = Evaluation(
        test_rows=len(test),
        test_window=[str(test[EVENT_TS].min()), str(test[EVENT_TS].max())],
        challenger=compute_metrics(usecase.metrics, usecase.task, test[LABEL], scores),
        slices=slice_metrics(
            usecase.metrics, usecase.task, test, scores, LABEL, spec.slices, spec.slice_min_rows
        ),
        calibration=calibration(test[LABEL], scores) if usecase.task == "classification" else None,
        champion=champion,
        champion_version=champion_version,
        champion_error=champion_error,
    )
    _log_evaluation(settings, run_id, evaluation)
    return evaluation


def _log_evaluation(settings: Settings, run_id: str, evaluation: Evaluation) -> None:
    """The test metrics on the run, and the evaluation's JSON, slices and calibration plot."""
    client = configure(settings)
    for name, value in evaluation.challenger.items():
        if value is not None:
            client.log_metric(run_id, f"test_{name}", value)
    if evaluation.calibration and evaluation.calibration.ece is not None:
        client.log_metric(run_id, "test_calibration_ece", evaluation.calibration.ece)
    with tempfile.TemporaryDirectory() as tmp:
        client.log_artifact(
            run_id,
            str(write_json(Path(tmp) / "evaluation.json", evaluation.to_dict())),
            artifact_path="evaluation",
        )
        if evaluation.slices:
            slices = Path(tmp) / "slices.csv"
            pd.DataFrame(
                [
                    {
                        "slice": s.slice,
                        "value": s.value,
                        "rows": s.rows,
                        **s.metrics,
                        "note": s.note,
                    }
                    for s in evaluation.slices
                ]
            ).to_csv(slices, index=False)
            client.log_artifact(run_id, str(slices), artifact_path="evaluation")
        if evaluation.calibration:
            plot = Path(tmp) / "calibration.png"
            calibration_plot(evaluation.calibration, plot)
            client.log_artifact(run_id, str(plot), artifact_path="evaluation")
