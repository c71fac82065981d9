"""The monitoring DAG's two checks of an interval: drift, and live performance with late labels.

Each compares what was served (the prediction log) with what the serving version was trained
on or scored at training, and gives a verdict only on enough rows: fewer than the use case's
minimum or the engine's floor (:mod:`airloop.monitoring.minimums`) is "not enough data", never
a breach. Results are files under ``monitoring/<use case>/intervals/<key>/``, keyed by the
interval, so a re-run overwrites its own results and nothing else; the records returned carry
the verdicts and the files' URIs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.catalog import metric
from airloop.core.columns import AVAILABLE_AT, EVENT_ID, EVENT_TS, LABEL, LABELS_TABLE, SCORE
from airloop.core.files import atomic_write, write_json
from airloop.data.intervals import as_utc, partition_key
from airloop.features.offline import read_partitions
from airloop.monitoring.drift import (
    MAX_SCORE,
    DriftReport,
    compare,
    judge,
    not_enough,
    numeric_distance,
)
from airloop.monitoring.minimums import MIN_LABELLED, MIN_PER_CLASS, MIN_ROWS
from airloop.monitoring.readers import (
    EVENT_TIME,
    MODEL_VERSION,
    SERVED_AT,
    latest_version,
    load_reference,
    served_frame,
    version_metrics,
)
from airloop.monitoring.records import DriftCheck, DriftedFeature, PerformanceCheck, PredictionDrift
from airloop.settings import Settings
from airloop.training.metrics import compute_metrics
from airloop.usecase import UseCase, resolve

NOT_INPUTS = {SCORE, LABEL, EVENT_TS, EVENT_ID}


def interval_dir(settings: Settings, usecase: UseCase, start: datetime) -> Path:
    """Where an interval's monitoring results and report live."""
    return settings.monitoring_root(usecase.name) / "intervals" / partition_key(as_utc(start))


# -- drift ------------------------------------------------------------------------------------


def drift_inputs(usecase: UseCase, reference: pd.DataFrame) -> list[str]:
    """The model inputs checked for drift: all but ``monitoring.exclude`` and the calendar
    features (``event_month``...), which change by design when the month turns, whatever the
    use case's ``exclude`` lists."""
    skipped = {*NOT_INPUTS, *usecase.monitoring.exclude, *usecase.events.calendar_features}
    return [c for c in reference.columns if c not in skipped]


def data_drift(usecase: UseCase, reference: pd.DataFrame, served: pd.DataFrame) -> DriftReport:
    """Per-feature drift of the served inputs against the reference, by the use case's measures."""
    spec = usecase.monitoring
    inputs = drift_inputs(usecase, reference)
    categorical = [
        c
        for c in inputs
        if c in usecase.training.categorical or not pd.api.types.is_numeric_dtype(reference[c])
    ]
    numeric = [c for c in inputs if c not in categorical]
    thresholds = {c: spec.categorical_threshold for c in categorical if spec.categorical_threshold}
    return compare(
        reference,
        served,
        numeric,
        categorical,
        spec.numeric_measure,
        spec.categorical_measure,
        spec.feature_threshold,
        {**thresholds, **spec.thresholds},
        spec.share_of_drifting_features,
        spec.significance,
    )


def min_predictions(usecase: UseCase) -> int:
    """The fewest predictions a drift verdict needs: the use case's ``min_rows``, never fewer
    than the engine's floor."""
    return max(usecase.monitoring.min_rows, MIN_ROWS)


def min_labelled(usecase: UseCase) -> int:
    """The fewest labelled predictions a live-performance verdict needs: the use case's
    ``min_labelled``, never fewer than the engine's floor."""
    return max(usecase.monitoring.min_labelled, MIN_LABELLED)


def prediction_drift(
    usecase: UseCase, reference: pd.DataFrame, served: pd.DataFrame
) -> PredictionDrift | None:
    """PSI of the version's served scores against its reference scores, or no verdict (None)
    on fewer than :func:`min_predictions` of either.

    A version promoted a day or two ago has only those days' scores, and one day's weather
    moves every score of the day: measured on them, PSI read 0.3 to 0.6 after nearly every
    promotion of the year replay, where a week of the same model's scores read about 0.1.
    And a breach needs a PSI above what chance gives at these counts as well as above
    ``prediction_threshold``: on 20 to 35 scores, chance alone read 0.96 to 2.35.
    """
    spec = usecase.monitoring
    if len(served) < min_predictions(usecase) or len(reference) < MIN_ROWS:
        return None
    distance = numeric_distance(reference[SCORE], served[SCORE], "psi", spec.significance)
    drifted, applied, status = judge(distance, spec.prediction_threshold)
    if status != "checked":  # missing scores left fewer than the floor
        return None
    return PredictionDrift(
        measure="psi",
        score=round(min(distance.score, MAX_SCORE), 6),
        threshold=round(applied, 6),
        drifted=drifted,
        reference_mean=float(reference[SCORE].mean()),
        current_mean=float(served[SCORE].mean()),
        configured_threshold=spec.prediction_threshold,
        noise_threshold=round(distance.noise, 6),
        significance=spec.significance,
        bins=distance.bins,
        reference_rows=distance.reference_rows,
        current_rows=distance.current_rows,
    )


def prediction_status(usecase: UseCase, prediction: PredictionDrift | None, own: int) -> str:
    """What became of the prediction-drift check: checked, or why there is no verdict."""
    if prediction is not None:
        return "checked"
    return not_enough(own, min_predictions(usecase), "predictions of the serving version")


def drift_window(usecase: UseCase, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The served events drift is measured on: the interval, widened to the use case's window."""
    return min(as_utc(start), as_utc(end) - usecase.monitoring.window), as_utc(end)


def performance_window(
    usecase: UseCase, start: datetime, end: datetime
) -> tuple[datetime, datetime]:
    """The drift window moved back by the label delay: every label of it is due by ``end``."""
    lo, hi = drift_window(usecase, start, end)
    return lo - usecase.label.delay, hi - usecase.label.delay


def served_in(served: pd.DataFrame, lo: datetime, hi: datetime) -> pd.DataFrame:
    """The rows of a prediction-log table whose event time falls in [lo, hi)."""
    if served.empty:
        return served
    times = served[EVENT_TIME]
    return served[(times >= as_utc(lo)) & (times < as_utc(hi))].reset_index(drop=True)


def check_drift(
    start: datetime,
    end: datetime,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
    served: pd.DataFrame | None = None,
) -> DriftCheck:
    """Data drift per feature and prediction drift, served window against the training reference.

    ``served``: the prediction log already read as a table, covering at least the drift window
    (:func:`check_interval` reads it once for both checks).
    """
    uc, st = resolve(usecase, settings)
    need = min_predictions(uc)
    lo, end = drift_window(uc, start, end)
    served = served_frame(st, uc, lo, end) if served is None else served_in(served, lo, end)
    folder = interval_dir(st, uc, start)
    full: dict[str, Any] = {
        "interval_start": as_utc(start).isoformat(),
        "interval_end": as_utc(end).isoformat(),
        "window_start": lo.isoformat(),
        "rows": len(served),
        "min_rows": need,
        "breach": False,
    }
    if len(served) < need:
        status = not_enough(len(served), need, "predictions in the window")
        uri = str(write_json(folder / "drift.json", {**full, "status": status}))
        return DriftCheck(uri=uri, status=status, rows=len(served), breach=False)
    version = latest_version(served)
    reference = load_reference(st, uc, version)
    data = data_drift(uc, reference, served)
    own = served[served[MODEL_VERSION] == version]
    prediction = prediction_drift(uc, reference, own)
    served_uri = atomic_write(
        folder / "served.parquet",
        lambda tmp: served.drop(columns=[SERVED_AT]).to_parquet(tmp, index=False),
    )
    breach = data.dataset_drift or (prediction is not None and prediction.drifted)
    full.update(
        status="checked",
        model_version=version,
        data=data.as_dict(),
        prediction=prediction.to_dict() if prediction is not None else None,
        prediction_status=prediction_status(uc, prediction, len(own)),
        served_uri=str(served_uri),
        breach=breach,
    )
    return DriftCheck(
        uri=str(write_json(folder / "drift.json", full)),
        status="checked",
        rows=len(served),
        breach=breach,
        model_version=version,
        dataset_drift=data.dataset_drift,
        share_drifted=data.share_drifted,
        drifted_features=[
            DriftedFeature(
                feature=f.feature,
                score=f.score,
                threshold=f.threshold,
                configured_threshold=f.configured_threshold,
                noise_threshold=f.noise_threshold,
                reference_rows=f.reference_rows,
                current_rows=f.current_rows,
            )
            for f in data.drifted
        ],
        features_checked=len(data.checked),
        features_without_verdict=len(data.features) - len(data.checked),
        prediction=prediction,
        prediction_status=prediction_status(uc, prediction, len(own)),
    )


# -- live performance -------------------------------------------------------------------------


def join_arrived_labels(
    settings: Settings, usecase: UseCase, served: pd.DataFrame, lo: datetime, end: datetime
) -> pd.DataFrame | None:
    """The served rows with their label where it had arrived by ``end`` (NaN where not yet)."""
    labels = read_partitions(settings, usecase, LABELS_TABLE, lo - usecase.label.delay, end)
    if served.empty or labels is None or served[EVENT_ID].isna().all():
        return None
    arrived = labels[pd.to_datetime(labels[AVAILABLE_AT], utc=True) <= end]  # the boundary rule
    return served.merge(
        arrived[[EVENT_ID, LABEL, AVAILABLE_AT]].drop_duplicates(EVENT_ID), on=EVENT_ID, how="left"
    )


def too_few_labels(usecase: UseCase, labels: pd.Series) -> str | None:
    """Why these labels are too few for a live-performance verdict, or None when they will do:
    fewer than :func:`min_labelled`, or for a classification fewer than :data:`MIN_PER_CLASS`
    of either class (a ROC AUC on three positives is chance)."""
    need = min_labelled(usecase)
    if len(labels) < need:
        return not_enough(len(labels), need, "labelled predictions")
    if usecase.task == "classification":
        positives = int((labels.astype("float64") > 0.5).sum())
        fewest = min(positives, len(labels) - positives)
        if fewest < MIN_PER_CLASS:
            return not_enough(fewest, MIN_PER_CLASS, "labelled predictions of the rarer class")
    return None


def compare_live(settings: Settings, usecase: UseCase, known: pd.DataFrame) -> dict[str, Any]:
    """Live metrics on labelled predictions against the serving version's test metrics."""
    primary = usecase.metrics[0]
    live = compute_metrics(
        usecase.metrics, usecase.task, known[LABEL].astype("float64"), known[SCORE].to_numpy()
    )
    version = latest_version(known)
    expected = version_metrics(settings, usecase, version)
    drop = None
    observed = live.get(primary)
    if primary in expected and observed is not None:
        gap = expected[primary] - observed
        drop = gap if metric(primary, usecase.task).higher_is_better else -gap
    allowed = usecase.monitoring.performance_drop.allowed(expected.get(primary))
    return {
        "model_version": version,
        "metric": primary,
        "live": live,
        "expected": expected,
        "drop": drop,
        "allowed_drop": allowed,
        "positive_rate": float(known[LABEL].mean()) if usecase.task == "classification" else None,
        "breach": bool(drop is not None and drop > allowed),
    }


def check_performance(
    start: datetime,
    end: datetime,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
    served: pd.DataFrame | None = None,
) -> PerformanceCheck:
    """Live metrics on predictions whose labels have arrived by the interval end, never later ones.

    The window is the drift window moved back by the label delay (:func:`performance_window`).
    Labels that arrive later than declared count as pending, not as negatives. ``served``: as
    for :func:`check_drift`, covering at least this window.
    """
    uc, st = resolve(usecase, settings)
    end = as_utc(end)
    lo, hi = performance_window(uc, start, end)
    served = served_frame(st, uc, lo, hi) if served is None else served_in(served, lo, hi)
    folder = interval_dir(st, uc, start)
    out: dict[str, Any] = {
        "interval_start": as_utc(start).isoformat(),
        "interval_end": end.isoformat(),
        "window": [lo.isoformat(), hi.isoformat()],
        "predictions": len(served),
        "min_labelled": min_labelled(uc),
    }
    joined = join_arrived_labels(st, uc, served, lo, end)
    if joined is None:
        out["status"] = "no predictions with event ids, or no labels yet"
    else:
        known = joined[joined[LABEL].notna()]
        audit = atomic_write(
            folder / "labelled.parquet",
            lambda tmp: known[
                [EVENT_ID, EVENT_TIME, AVAILABLE_AT, LABEL, SCORE, MODEL_VERSION]
            ].to_parquet(tmp, index=False),
        )
        out.update(
            labelled_uri=str(audit), labelled=len(known), pending=int(joined[LABEL].isna().sum())
        )
        short = too_few_labels(uc, known[LABEL])
        if short is not None:
            out["status"] = short
        else:
            out.update(status="checked", **compare_live(st, uc, known))
    out["uri"] = str(folder / "performance.json")
    result = PerformanceCheck.model_validate(out)
    write_json(folder / "performance.json", result.to_dict())
    return result
