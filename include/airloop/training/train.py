"""Training and evaluation, logged to MLflow: the code behind `airloop train` and the DAGs.

A task in Airflow, a container running ``airloop train`` and a notebook all call these
functions, so they train identical models from identical inputs.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.features.compute import EVENT_ID, EVENT_TS, LABEL
from airloop.lineage.provenance import git_commit, lock_hash
from airloop.settings import Settings
from airloop.tracking import configure, experiment_id, experiment_name
from airloop.training.dataset import load_training_set, split_by_time
from airloop.training.metrics import calibration, compute_metrics, slice_metrics
from airloop.training.models import build_model, model_inputs, score, split_columns
from airloop.usecase import UseCase

log = logging.getLogger(__name__)
MODEL_ARTIFACT = "model"
REFERENCE_ARTIFACT = "reference/reference.parquet"
REFERENCE_ROWS = 50_000
SCORE_COLUMN = "__score__"


@dataclass(frozen=True)
class TrainConfig:
    """What to train: a model family, its parameters and the seed."""

    family: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 42

    @classmethod
    def from_usecase(cls, usecase: UseCase, override: dict[str, Any] | None = None) -> TrainConfig:
        override = override or {}
        family = override.get("family") or usecase.training.family
        params = override.get("params")
        if params is None:
            params = usecase.training.params if family == usecase.training.family else {}
        return cls(
            family=family,
            params=dict(params),
            seed=int(override.get("seed", usecase.training.seed)),
        )


@dataclass
class Fitted:
    model: Any
    columns: list[str]
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    validation_metrics: dict[str, float]


def fit(usecase: UseCase, frame: pd.DataFrame, columns: list[str], config: TrainConfig) -> Fitted:
    """Fit on the earliest part of the window and score the next part (validation)."""
    spec = usecase.training
    train, valid, test = split_by_time(frame, spec.validation_fraction, spec.test_fraction)
    categorical, numeric = split_columns(frame, columns, spec.categorical)
    model = build_model(
        usecase.task, config.family, config.params, categorical, numeric, config.seed
    )
    model.fit(train[columns], train[LABEL])
    metrics = compute_metrics(
        usecase.metrics, usecase.task, valid[LABEL], score(model, usecase.task, valid[columns])
    )
    return Fitted(model, columns, train, valid, test, metrics)


def lineage_tags(lineage: dict[str, Any]) -> dict[str, str]:
    """Lineage as MLflow tags under the ``airloop.`` prefix, with code and environment added."""
    tags = {f"airloop.{k}": str(v) for k, v in lineage.items() if v is not None}
    tags.setdefault("airloop.git_commit", git_commit())
    tags.setdefault("airloop.lock_hash", lock_hash())
    return tags


def _pip_requirements() -> list[str]:
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
        pip_requirements=_pip_requirements(),
        serialization_format="skops",
        skops_trusted_types=trusted,
    )


def log_reference(fitted: Fitted, usecase: UseCase, frame: pd.DataFrame) -> None:
    """The inputs and scores monitoring compares served traffic with (the training window)."""
    import mlflow

    sample = frame.sample(REFERENCE_ROWS, random_state=0) if len(frame) > REFERENCE_ROWS else frame
    reference = model_inputs(sample, fitted.columns)
    reference[SCORE_COLUMN] = score(fitted.model, usecase.task, reference)
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


def train_and_log(
    settings: Settings,
    usecase: UseCase,
    training_set: dict[str, Any],
    config: dict[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
    experiment: str | None = None,
    parent_run_id: str | None = None,
    run_name: str | None = None,
    log_the_model: bool = True,
) -> dict[str, Any]:
    """Train one model on a training set and record everything about it in an MLflow run."""
    import mlflow

    configure(settings)
    cfg = TrainConfig.from_usecase(usecase, config)
    experiment = experiment or experiment_name(usecase.name, "training")
    tags = lineage_tags(lineage or {})
    identity = {
        k: v for k, v in tags.items() if k in ("airloop.dag_id", "airloop.run_id", "airloop.trial")
    }
    if identity.get("airloop.run_id"):
        previous = find_run(settings, experiment, {**identity, "airloop.stage": "train"})
        if previous is not None:
            log.info(
                "reusing MLflow run %s trained by an earlier try of this task", previous.info.run_id
            )
            return _run_summary(previous.info.run_id, cfg, previous.data.metrics)
    frame = load_training_set(training_set["uri"])
    columns = training_set["feature_columns"]
    fitted = fit(usecase, frame, columns, cfg)
    exp_id = experiment_id(settings, experiment)
    with mlflow.start_run(
        experiment_id=exp_id,
        run_name=run_name,
        parent_run_id=parent_run_id,
        nested=parent_run_id is not None,
    ) as run:
        mlflow.set_tags({**tags, "airloop.stage": "train", "airloop.usecase": usecase.name})
        mlflow.log_params(
            {
                "family": cfg.family,
                "seed": cfg.seed,
                **{f"param.{k}": v for k, v in cfg.params.items()},
            }
        )
        mlflow.log_params(
            {
                "window_start": training_set["start"],
                "window_end": training_set["end"],
                "labels_as_of": training_set["as_of"],
                "feature_service": training_set["feature_service"],
                "training_set_digest": training_set["digest"],
                "rows_train": len(fitted.train),
                "rows_validation": len(fitted.validation),
                "rows_test": len(fitted.test),
            }
        )
        dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
            frame,
            source=training_set["uri"],
            targets=LABEL,
            name=f"{usecase.name}_training_set",
            digest=training_set["digest"][:36],
        )
        mlflow.log_input(dataset, context="training")
        mlflow.log_metrics(
            {f"val_{k}": v for k, v in fitted.validation_metrics.items() if pd.notna(v)}
        )
        if log_the_model:
            log_model(fitted)
            log_reference(fitted, usecase, frame)
        run_id = run.info.run_id
    return _run_summary(run_id, cfg, {f"val_{k}": v for k, v in fitted.validation_metrics.items()})


def _run_summary(run_id: str, cfg: TrainConfig, metrics: dict[str, float]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "model_uri": f"runs:/{run_id}/{MODEL_ARTIFACT}",
        "config": asdict(cfg),
        "metrics": dict(metrics),
    }


def load_model(settings: Settings, uri: str) -> Any:
    import mlflow

    configure(settings)
    return mlflow.sklearn.load_model(uri)


def evaluate_model(
    settings: Settings,
    usecase: UseCase,
    training_set: dict[str, Any],
    run_id: str,
    champion_uri: str | None = None,
) -> dict[str, Any]:
    """Score the challenger, and the champion if there is one, on the same held-out test slice."""
    import mlflow

    frame = load_training_set(training_set["uri"])
    spec = usecase.training
    _, _, test = split_by_time(frame, spec.validation_fraction, spec.test_fraction)
    columns = training_set["feature_columns"]
    challenger = load_model(settings, f"runs:/{run_id}/{MODEL_ARTIFACT}")
    inputs = model_inputs(test, columns)
    scores = score(challenger, usecase.task, inputs)
    result: dict[str, Any] = {
        "test_rows": len(test),
        "test_window": [str(test[EVENT_TS].min()), str(test[EVENT_TS].max())],
        "challenger": compute_metrics(usecase.metrics, usecase.task, test[LABEL], scores),
        "slices": slice_metrics(usecase.metrics, usecase.task, test, scores, LABEL, spec.slices),
        "champion": None,
    }
    if usecase.task == "classification":
        result["calibration"] = calibration(test[LABEL], scores)
    if champion_uri:
        try:
            champion = load_model(settings, champion_uri)
            champ_scores = score(champion, usecase.task, inputs)
            result["champion"] = compute_metrics(
                usecase.metrics, usecase.task, test[LABEL], champ_scores
            )
        except Exception as exc:  # a champion that cannot score these inputs is not comparable
            result["champion_error"] = f"{type(exc).__name__}: {exc}"
    configure(settings)
    client = mlflow.MlflowClient()
    for name, value in result["challenger"].items():
        if pd.notna(value):
            client.log_metric(run_id, f"test_{name}", value)
    if result.get("calibration"):
        client.log_metric(run_id, "test_calibration_ece", result["calibration"]["ece"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "evaluation.json"
        path.write_text(json.dumps(result, indent=2, default=str))
        client.log_artifact(run_id, str(path), artifact_path="evaluation")
        if result["slices"]:
            slices = Path(tmp) / "slices.csv"
            pd.DataFrame(result["slices"]).to_csv(slices, index=False)
            client.log_artifact(run_id, str(slices), artifact_path="evaluation")
        if result.get("calibration"):
            plot = Path(tmp) / "calibration.png"
            _calibration_plot(result["calibration"], plot)
            client.log_artifact(run_id, str(plot), artifact_path="evaluation")
    return result


def _calibration_plot(cal: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = pd.DataFrame(cal["table"])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.plot(
        table["mean_score"],
        table["observed_rate"],
        marker="o",
        label=f"model (ECE {cal['ece']:.3f})",
    )
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed rate")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
