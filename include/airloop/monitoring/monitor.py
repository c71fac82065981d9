"""The monitoring stages, one function per task of the monitoring DAG.

Each interval compares what was served (the prediction log) with what the serving model was
trained on (the reference logged with it), joins the labels that have arrived by the interval
end, and turns breaches into a decision. Results are files under ``monitoring/<use case>/``,
keyed by the interval, so a re-run overwrites its own results and nothing else.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from airloop.data.intervals import as_utc, partition_key
from airloop.features.compute import AVAILABLE_AT, EVENT_ID, EVENT_TS, LABEL
from airloop.features.store import LABELS_TABLE, read_partitions
from airloop.monitoring.drift import MAX_SCORE, compare, numeric_drift
from airloop.monitoring.feedback import FeedbackLedger, decide
from airloop.records import json_safe
from airloop.serving.prediction_log import read_window
from airloop.settings import Settings
from airloop.training.metrics import compute_metrics, metric
from airloop.training.train import REFERENCE_ARTIFACT, SCORE_COLUMN
from airloop.usecase import UseCase, resolve

log = logging.getLogger(__name__)
NOT_INPUTS = {SCORE_COLUMN, LABEL, EVENT_TS, EVENT_ID}


def monitoring_root(settings: Settings, usecase: UseCase) -> Path:
    return settings.home / "monitoring" / usecase.name


def metrics_file(settings: Settings, usecase: UseCase) -> Path:
    """The latest interval's figures in Prometheus text format; the serving API appends them."""
    return monitoring_root(settings, usecase) / "metrics.prom"


def interval_dir(settings: Settings, usecase: UseCase, start: datetime) -> Path:
    return monitoring_root(settings, usecase) / "intervals" / partition_key(as_utc(start))


def predictions_root(settings: Settings, usecase: UseCase) -> Path:
    return settings.home / "predictions" / usecase.name


def served_frame(settings: Settings, usecase: UseCase, lo: datetime, hi: datetime) -> pd.DataFrame:
    """The prediction log of [lo, hi) as a table: features, score, version, event id and time."""
    records = read_window(predictions_root(settings, usecase), as_utc(lo), as_utc(hi))
    if not records:
        return pd.DataFrame()
    frame = pd.DataFrame.from_records([r["features"] for r in records])
    frame[SCORE_COLUMN] = [r["score"] for r in records]
    frame["model_version"] = [str(r["model_version"]) for r in records]
    frame["served_at"] = pd.to_datetime([r["time"] for r in records], utc=True)
    frame[EVENT_ID] = [r.get("event_id") for r in records]
    frame["event_time"] = pd.to_datetime(
        [r.get("event_time") or r["time"] for r in records], utc=True
    )
    return frame


def load_reference(settings: Settings, usecase: UseCase, version: str) -> pd.DataFrame:
    """The training reference of a registered version, cached in the home after one download."""
    cache = monitoring_root(settings, usecase) / "references" / f"v{version}.parquet"
    if cache.exists():
        return pd.read_parquet(cache)
    import mlflow

    from airloop.tracking import configure

    client = configure(settings)
    run_id = client.get_model_version(usecase.training.model_name, version).run_id
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT)
    frame = pd.read_parquet(path)
    cache.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(cache, index=False)
    return frame


def read_json(path: Path) -> dict[str, Any]:
    """A check's record, or nothing when that check has not run."""
    return json.loads(path.read_text()) if path.exists() else {}


def _write(path: Path, payload: dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(payload), indent=2, default=str))
    return str(path)


def check_drift(
    start: datetime,
    end: datetime,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Data drift per feature and prediction drift, served window against the training reference."""
    uc, st = resolve(usecase, settings)
    spec = uc.monitoring
    lo = min(as_utc(start), as_utc(end) - spec.window)
    served = served_frame(st, uc, lo, end)
    out: dict[str, Any] = {
        "interval_start": as_utc(start).isoformat(),
        "interval_end": as_utc(end).isoformat(),
        "window_start": lo.isoformat(),
        "rows": len(served),
        "breach": False,
    }
    if len(served) < spec.min_rows:
        out["status"] = f"not enough traffic: {len(served)} predictions, {spec.min_rows} needed"
        out["uri"] = _write(interval_dir(st, uc, start) / "drift.json", out)
        return _summary(out)
    latest = served.sort_values("served_at")["model_version"].iloc[-1]
    reference = load_reference(st, uc, latest)
    inputs = [c for c in reference.columns if c not in NOT_INPUTS and c not in spec.exclude]
    categorical = [
        c
        for c in inputs
        if c in uc.training.categorical or not pd.api.types.is_numeric_dtype(reference[c])
    ]
    numeric = [c for c in inputs if c not in categorical]
    thresholds = {c: spec.categorical_threshold for c in categorical if spec.categorical_threshold}
    data = compare(
        reference,
        served,
        numeric,
        categorical,
        spec.numeric_measure,
        spec.categorical_measure,
        spec.feature_threshold,
        {**thresholds, **spec.thresholds},
        spec.share_of_drifting_features,
    )
    mine = served[served["model_version"] == latest]
    prediction_score = min(
        numeric_drift(reference[SCORE_COLUMN], mine[SCORE_COLUMN], "psi"), MAX_SCORE
    )
    prediction = {
        "measure": "psi",
        "score": round(prediction_score, 6),
        "threshold": spec.prediction_threshold,
        "drifted": bool(prediction_score >= spec.prediction_threshold),
        "reference_mean": float(reference[SCORE_COLUMN].mean()),
        "current_mean": float(mine[SCORE_COLUMN].mean()),
    }
    served_path = interval_dir(st, uc, start) / "served.parquet"
    served_path.parent.mkdir(parents=True, exist_ok=True)
    served.drop(columns=["served_at"]).to_parquet(served_path, index=False)
    out.update(
        status="checked",
        model_version=latest,
        data=data.as_dict(),
        prediction=prediction,
        served_uri=str(served_path),
        breach=data.dataset_drift or prediction["drifted"],
    )
    out["uri"] = _write(interval_dir(st, uc, start) / "drift.json", out)
    return _summary(out)


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """What travels in XCom: ids, verdicts and the file with the details, not the tables."""
    data = result.get("data") or {}
    return {
        "uri": result["uri"],
        "status": result.get("status"),
        "rows": result.get("rows"),
        "model_version": result.get("model_version"),
        "breach": result["breach"],
        "dataset_drift": data.get("dataset_drift", False),
        "share_drifted": data.get("share_drifted"),
        "drifted_features": [
            {"feature": f["feature"], "score": f["score"], "threshold": f["threshold"]}
            for f in data.get("features", [])
            if f["drifted"]
        ],
        "prediction": result.get("prediction"),
    }


def champion_metrics(settings: Settings, usecase: UseCase, version: str) -> dict[str, float]:
    """The test metrics recorded on a registered version when it was trained."""
    from airloop.tracking import configure

    client = configure(settings)
    tags = client.get_model_version(usecase.training.model_name, version).tags
    return {
        k.removeprefix("airloop.test_"): float(v)
        for k, v in tags.items()
        if k.startswith("airloop.test_")
    }


def check_performance(
    start: datetime,
    end: datetime,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Live metrics on predictions whose labels have arrived by the interval end, never later ones.

    The window is the drift window moved back by the label delay: every label of it is due by
    ``end``. Labels that arrive later than declared count as pending, not as negatives.
    """
    uc, st = resolve(usecase, settings)
    spec = uc.monitoring
    end = as_utc(end)
    hi = end - uc.label.delay
    lo = min(as_utc(start), end - spec.window) - uc.label.delay
    served = served_frame(st, uc, lo, hi)
    out: dict[str, Any] = {
        "interval_start": as_utc(start).isoformat(),
        "interval_end": end.isoformat(),
        "window": [lo.isoformat(), hi.isoformat()],
        "predictions": len(served),
        "labelled": 0,
        "breach": False,
    }
    labels = read_partitions(st, uc, LABELS_TABLE, lo - uc.label.delay, end)
    if served.empty or labels is None or served[EVENT_ID].isna().all():
        out["status"] = "no predictions with event ids, or no labels yet"
        out["uri"] = _write(interval_dir(st, uc, start) / "performance.json", out)
        return out
    arrived = labels[pd.to_datetime(labels[AVAILABLE_AT], utc=True) < end]
    joined = served.merge(
        arrived[[EVENT_ID, LABEL, AVAILABLE_AT]].drop_duplicates(EVENT_ID), on=EVENT_ID, how="left"
    )
    known = joined[joined[LABEL].notna()]
    audit = interval_dir(st, uc, start) / "labelled.parquet"
    audit.parent.mkdir(parents=True, exist_ok=True)
    known[[EVENT_ID, "event_time", AVAILABLE_AT, LABEL, SCORE_COLUMN, "model_version"]].to_parquet(
        audit, index=False
    )
    out["labelled_uri"] = str(audit)
    out["labelled"], out["pending"] = len(known), int(joined[LABEL].isna().sum())
    if len(known) < spec.min_labelled:
        out["status"] = f"{len(known)} labelled predictions, {spec.min_labelled} needed"
        out["uri"] = _write(interval_dir(st, uc, start) / "performance.json", out)
        return out
    primary = uc.metrics[0]
    live = compute_metrics(
        uc.metrics, uc.task, known[LABEL].astype("float64"), known[SCORE_COLUMN].to_numpy()
    )
    version = known.sort_values("served_at")["model_version"].iloc[-1]
    expected = champion_metrics(st, uc, version)
    better_high = metric(primary, uc.task).higher_is_better
    breach = False
    drop = None
    if primary in expected and np.isfinite(live.get(primary, float("nan"))):
        drop = (
            expected[primary] - live[primary] if better_high else live[primary] - expected[primary]
        )
        breach = drop > spec.performance_drop
    out.update(
        status="checked",
        model_version=version,
        metric=primary,
        live=live,
        expected=expected,
        drop=drop,
        allowed_drop=spec.performance_drop,
        positive_rate=float(known[LABEL].mean()) if uc.task == "classification" else None,
        breach=bool(breach),
    )
    out["uri"] = _write(interval_dir(st, uc, start) / "performance.json", out)
    return out


def breach_reasons(drift: dict[str, Any], performance: dict[str, Any]) -> list[dict[str, Any]]:
    reasons: list[dict[str, Any]] = []
    if drift.get("dataset_drift"):
        reasons.append(
            {
                "check": "data_drift",
                "share_drifted": drift["share_drifted"],
                "features": drift["drifted_features"],
            }
        )
    prediction = drift.get("prediction") or {}
    if prediction.get("drifted"):
        reasons.append(
            {
                "check": "prediction_drift",
                "score": prediction["score"],
                "threshold": prediction["threshold"],
            }
        )
    if performance.get("breach"):
        reasons.append(
            {
                "check": "live_performance",
                "metric": performance["metric"],
                "live": performance["live"][performance["metric"]],
                "expected": performance["expected"][performance["metric"]],
                "allowed_drop": performance["allowed_drop"],
            }
        )
    return reasons


def decide_retraining(
    start: datetime,
    end: datetime,
    drift: dict[str, Any],
    performance: dict[str, Any],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Breaches → a decision under the use case's controls; a request carries its reason."""
    uc, st = resolve(usecase, settings)
    ledger = FeedbackLedger(monitoring_root(st, uc))
    context = {
        "usecase": uc.name,
        "model_version": drift.get("model_version") or performance.get("model_version"),
        "live": performance.get("live"),
    }
    decision = decide(
        ledger,
        uc.monitoring.retraining,
        as_utc(start),
        as_utc(end),
        breach_reasons(drift, performance),
        context,
    )
    if decision["request"]:
        note = _request_note(uc, decision["request"], performance)
        path = monitoring_root(st, uc) / "requests" / f"{decision['request_id']}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(note)
        decision["request"]["note_uri"] = str(path)
    log.info(
        "interval %s: %s (%s)", decision["interval_start"], decision["action"], decision["detail"]
    )
    return decision


def _request_note(uc: UseCase, request: dict[str, Any], performance: dict[str, Any]) -> str:
    """A short record for the data and science side: what drifted, how the model is doing."""
    lines = [
        f"# Retrain request {request['request_id']} ({uc.name})",
        "",
        f"Interval {request['interval_start']} to {request['interval_end']}, "
        f"model v{request.get('model_version')}, {request['streak']} breaching intervals in a row.",
        "",
    ]
    for reason in request["reasons"]:
        if reason["check"] == "data_drift":
            lines.append(f"- data drift: {reason['share_drifted']:.0%} of features drifted")
            for f in reason["features"]:
                lines.append(f"  - {f['feature']}: {f['score']:.3f} (threshold {f['threshold']})")
        elif reason["check"] == "prediction_drift":
            lines.append(
                f"- prediction drift: PSI {reason['score']:.3f} (threshold {reason['threshold']})"
            )
        else:
            lines.append(
                f"- live {reason['metric']}: {reason['live']:.3f} against {reason['expected']:.3f}"
                f" at training (allowed drop {reason['allowed_drop']})"
            )
    if performance.get("live"):
        live = ", ".join(f"{k} {v:.3f}" for k, v in performance["live"].items() if v == v)
        lines += ["", f"Live metrics on {performance['labelled']} labelled predictions: {live}."]
    return "\n".join(lines) + "\n"


def training_outcome(
    registered: dict[str, Any] | None,
    promotion: dict[str, Any] | None,
    deploy: dict[str, Any] | None,
    dag_run_id: str | None = None,
) -> dict[str, Any]:
    """How a training run ended, from what its register, promote and deploy stages returned.

    A stage that failed returned nothing: no promotion decision, or a promotion without a
    deploy, means the run failed and the champion is what it was.
    """
    version = (registered or {}).get("version")
    outcome: dict[str, Any]
    if promotion is None or (promotion.get("promoted") and deploy is None):
        outcome = {"result": "failed", "version": version}
    elif not promotion.get("promoted"):
        outcome = {
            "result": "refused by the gate",
            "version": version,
            "reasons": promotion.get("reasons"),
        }
    else:
        outcome = {"result": "promoted", "version": version, "deploy": deploy}
    outcome["dag_run_id"] = dag_run_id
    return outcome


def close_request(
    request_id: str | None,
    outcome: dict[str, Any],
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any] | None:
    """The training run a request opened has ended: record how (promoted, refused, failed)."""
    if not request_id:
        return None
    uc, st = resolve(usecase, settings)
    return FeedbackLedger(monitoring_root(st, uc)).close_request(request_id, outcome)
