"""Training logic without the stores: splits, trials, gates, metrics, configs, windows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airloop.catalog import is_better, metric
from airloop.registry.models import gate
from airloop.training.dataset import TrainingDataError, frame_digest, resolve_window, split_by_time
from airloop.training.experiment import ExperimentError, grid_trials
from airloop.training.metrics import compute_metrics
from airloop.training.train import TrainConfig
from airloop.usecase import Candidate


def _frame(n: int = 100) -> pd.DataFrame:
    stamps = pd.date_range("2013-01-01", periods=n, freq="h", tz="UTC")
    return pd.DataFrame(
        {
            "event_timestamp": stamps,
            "event_id": [f"e{i}" for i in range(n)],
            "label": np.arange(n) % 2,
        }
    )


def test_split_is_in_time_order_without_overlap() -> None:
    train, valid, test = split_by_time(_frame(), 0.15, 0.15)
    assert train["event_timestamp"].max() < valid["event_timestamp"].min()
    assert valid["event_timestamp"].max() < test["event_timestamp"].min()
    assert len(train) + len(valid) + len(test) == 100


def test_split_never_cuts_through_one_timestamp() -> None:
    frame = _frame(40)
    frame["event_timestamp"] = frame["event_timestamp"].dt.floor("10h")
    train, valid, test = split_by_time(frame, 0.25, 0.25)
    assert set(train["event_timestamp"]).isdisjoint(valid["event_timestamp"])
    assert set(valid["event_timestamp"]).isdisjoint(test["event_timestamp"])


def test_split_refuses_a_window_too_small() -> None:
    frame = _frame(3)
    frame["event_timestamp"] = frame["event_timestamp"].iloc[0]
    with pytest.raises(TrainingDataError, match="widen the window"):
        split_by_time(frame, 0.15, 0.15)


def test_digest_depends_on_values_not_on_the_index() -> None:
    a = _frame()
    b = _frame().set_index("event_id", drop=False)
    assert frame_digest(a) == frame_digest(b)
    c = _frame()
    c.loc[5, "label"] = 1 - c.loc[5, "label"]
    assert frame_digest(a) != frame_digest(c)


def test_trials_are_reproducible_and_distinct() -> None:
    space = {"learning_rate": [0.05, 0.1, 0.2], "max_leaf_nodes": [15, 31]}
    a = grid_trials("classification", "hist_gradient_boosting", space, 4, seed=7)
    b = grid_trials("classification", "hist_gradient_boosting", space, 4, seed=7)
    assert a == b and len(a) == 4
    assert len({tuple(sorted(t.params.items())) for t in a}) == 4


@pytest.mark.parametrize(
    ("family", "space", "message"),
    [
        ("xgboost", {}, "not a classification family"),
        ("logistic", {"C": []}, "non-empty list"),
        ("logistic", {"C": 1.0}, "non-empty list"),
    ],
)
def test_bad_experiment_forms_are_refused(family: str, space: dict, message: str) -> None:
    with pytest.raises(ExperimentError, match=message):
        grid_trials("classification", family, space, 2, seed=1)


def test_metric_directions() -> None:
    assert metric("roc_auc", "classification").higher_is_better
    assert not metric("rmse", "regression").higher_is_better
    assert is_better("roc_auc", "classification", 0.70, 0.705, margin=0.01)
    assert not is_better("roc_auc", "classification", 0.69, 0.705, margin=0.01)
    assert is_better("rmse", "regression", 10.05, 10.0, margin=0.1)
    with pytest.raises(ValueError, match="unknown classification metric"):
        metric("rmse", "classification")


def test_metrics_are_computed_by_task() -> None:
    values = compute_metrics(
        ["roc_auc", "brier_score"], "classification", [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]
    )
    assert values["roc_auc"] == 1.0 and values["brier_score"] == pytest.approx(0.025)


def test_gate_floors_and_champion_margin(flights) -> None:
    ok: dict[str, float | None] = {
        "roc_auc": 0.70,
        "average_precision": 0.4,
        "log_loss": 0.5,
        "brier_score": 0.15,
    }
    assert gate(flights, ok, None, None).promote
    decision = gate(flights, {**ok, "roc_auc": 0.50}, None, None)
    assert not decision.promote and "below the minimum 0.55" in decision.reasons[0]
    worse = gate(flights, ok, {**ok, "roc_auc": 0.75}, "3")
    assert not worse.promote and "champion v3" in worse.reasons[0]
    assert gate(flights, ok, {**ok, "roc_auc": 0.705}, "3").promote
    ceiling = gate(flights, {**ok, "brier_score": 0.3}, None, None)
    assert "above the maximum" in ceiling.reasons[0]


def test_a_bound_the_champion_breaks_too_does_not_stop_a_challenger_no_worse(flights) -> None:
    ok: dict[str, float | None] = {"roc_auc": 0.70, "average_precision": 0.4, "brier_score": 0.26}
    # Hard days: both break the Brier ceiling on the same rows; the challenger is no worse.
    decision = gate(flights, ok, {**ok, "brier_score": 0.265}, "3")
    assert decision.promote and decision.reasons == []
    assert decision.notes == [
        "brier_score 0.2600 is above the maximum 0.25, as is champion v3's 0.2650 on the same rows"
    ]
    # The champion holds the ceiling: the safety net holds the challenger to it.
    held = gate(flights, ok, {**ok, "brier_score": 0.24}, "3")
    assert held.reasons == [
        "brier_score 0.2600 is above the maximum 0.25 (absolute rule; champion v3: 0.2400)",
        "brier_score 0.2600 is above champion v3's 0.2400 on the same rows by more than 0.01"
        " (relative rule)",
    ]
    # Both break it, but the challenger is worse by more than the margin: refused, relatively.
    worse = gate(flights, {**ok, "brier_score": 0.30}, {**ok, "brier_score": 0.26}, "3")
    assert not worse.promote and any("(absolute rule" in r for r in worse.reasons)
    # Floors alike: a challenger better than a champion that is below the floor too goes in.
    fine = {**ok, "brier_score": 0.2}
    below = gate(flights, {**fine, "roc_auc": 0.54}, {**fine, "roc_auc": 0.50}, "3")
    assert below.promote and below.notes == [
        "roc_auc 0.5400 is below the minimum 0.55, as is champion v3's 0.5000 on the same rows"
    ]


def test_gate_names_a_metric_that_could_not_be_computed(flights) -> None:
    missing = {"roc_auc": None, "average_precision": 0.4, "log_loss": 0.5, "brier_score": None}
    decision = gate(flights, missing, {"roc_auc": 0.6}, "3")
    assert not decision.promote
    assert (
        "roc_auc could not be computed on the test rows (one class only, or too few rows; a"
        " longer window holds both), so it cannot be held to the minimum 0.55 (absolute rule;"
        " champion v3: 0.6000)" in decision.reasons
    )
    assert any(
        r.startswith("brier_score could not be computed") and r.endswith("champion v3: missing)")
        for r in decision.reasons
    )
    assert any("champion v3's 0.6000 on the same rows" in r for r in decision.reasons)
    broken = gate(flights, {**missing, "roc_auc": 0.7, "brier_score": 0.1}, None, "3", "no model")
    assert broken.reasons == ["the champion v3 could not be scored: no model"]


def test_config_defaults_follow_the_usecase(flights) -> None:
    default = TrainConfig.from_usecase(flights)
    assert default.family == flights.training.family and default.params == flights.training.params
    other = TrainConfig.from_usecase(flights, {"family": "logistic"})
    assert other.family == "logistic" and other.params == {}
    trial = TrainConfig.from_usecase(flights, {"params": {"learning_rate": 0.5}})
    assert trial.params == {**flights.training.params, "learning_rate": 0.5}


def test_training_window_from_params_or_interval(flights) -> None:
    end = datetime(2013, 2, 1, tzinfo=UTC)
    lo, hi = resolve_window(flights, None, end, {})
    assert hi == end and lo == hi - flights.training.window
    lo, hi = resolve_window(
        flights, None, end, {"window_start": "2013-01-03", "window_end": "2013-01-10"}
    )
    assert (lo.day, hi.day) == (3, 10)
    with pytest.raises(ValueError, match="empty training window"):
        resolve_window(
            flights, None, None, {"window_start": "2013-01-10", "window_end": "2013-01-03"}
        )


def test_training_set_gate_rejects_unbalanced_labels(flights) -> None:
    from airloop.training.checks import check_training_set

    n = 600
    frame = pd.DataFrame(
        {
            "label": [0] * n,
            "origin_weather__temp": np.linspace(10, 90, n),
            "carrier_delays__share_1d": [0.2] * n,
        }
    )
    with pytest.raises(TrainingDataError, match=r"column 'label' has mean 0\.0"):
        check_training_set(flights, frame, ["origin_weather__temp", "carrier_delays__share_1d"])
    frame["label"] = np.arange(n) % 3 == 0
    frame["label"] = frame["label"].astype(int)
    frame.loc[:400, "origin_weather__temp"] = None
    with pytest.raises(TrainingDataError, match="origin_weather__temp' has 401 null values"):
        check_training_set(flights, frame, ["origin_weather__temp", "carrier_delays__share_1d"])


def test_an_input_missing_by_nature_may_be_missing_more_often(flights) -> None:
    """The aircraft's earlier departure of the day is missing on its first flight: the use
    case allows that input more missing rows (training.max_null_shares), and no other."""
    from airloop.training.checks import check_training_set, input_bounds

    sparse = "plane_departures__dep_delay_last_12h"
    assert flights.training.max_null_shares[sparse] > flights.training.max_null_share
    n = 600
    bounds = input_bounds(flights)
    frame = pd.DataFrame(  # every input present and in its range
        {c: (bounds[c][0] or 0.0) if c in bounds else 1.0 for c in flights.model_inputs}
        | {"carrier": "UA", "origin": "EWR", "label": np.arange(n) % 3 == 0},
        index=range(n),
    ).astype({"label": int})
    frame.loc[: int(n * 0.7), sparse] = None  # over the default share, under its own
    check_training_set(flights, frame, [sparse, "carrier_delays__share_1d"])
    frame.loc[: int(n * 0.7), "carrier_delays__share_1d"] = None
    with pytest.raises(TrainingDataError, match="carrier_delays__share_1d' has 421 null") as e:
        check_training_set(flights, frame, [sparse, "carrier_delays__share_1d"])
    # What to do about it: a longer window, or a larger share for the column.
    assert "1 input(s) missing on too many of the 600 rows: a lag or a window" in str(e.value)
    assert "training.max_null_shares in usecase.yaml" in str(e.value)


def test_a_relative_margin_scales_with_the_champions_metric(flights) -> None:
    from airloop.usecase import GateSpec

    ok: dict[str, float | None] = {"roc_auc": 0.70, "average_precision": 0.4, "brier_score": 0.15}
    relative = flights.model_copy(
        update={"gates": GateSpec.model_validate({"max_regression": "2%"})}
    )
    # 2 % of the champion's 0.714 is 0.01428: 0.70 trails by 0.014, inside it; 0.72 by 0.02, not.
    assert gate(relative, ok, {**ok, "roc_auc": 0.714}, "3").promote
    refused = gate(relative, ok, {**ok, "roc_auc": 0.72}, "3")
    assert not refused.promote
    assert refused.reasons == [
        "roc_auc 0.7000 is below champion v3's 0.7200 on the same rows by more than 2%"
        " (relative rule)"
    ]


def test_small_slices_are_listed_with_a_note_instead_of_vanishing() -> None:
    import pandas as pd

    from airloop.training.metrics import slice_metrics

    frame = pd.DataFrame({"carrier": ["UA"] * 40 + ["HA"] * 3, "label": [0, 1] * 20 + [1, 0, 1]})
    score = [0.2, 0.8] * 20 + [0.9, 0.1, 0.7]
    found = {
        s.value: s
        for s in slice_metrics(
            ["roc_auc"], "classification", frame, score, "label", ["carrier"], 30
        )
    }
    assert (
        found["UA"].rows == 40
        and found["UA"].metrics["roc_auc"] == 1.0
        and found["UA"].note is None
    )
    assert found["HA"].metrics == {} and found["HA"].note.startswith("too few rows (3 < 30")


def _shifted_scores(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """One feature whose positives are rarer than an uncalibrated model would say."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * x - 2)))).astype(int)
    return pd.DataFrame({"x": x}), pd.Series(y)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibration_maps_scores_to_observed_rates_on_held_out_rows(method: str) -> None:
    from airloop.training.metrics import calibration
    from airloop.training.models import build_model, calibrate

    x_fit, y_fit = _shifted_scores(3000, 0)
    x_cal, y_cal = _shifted_scores(3000, 1)
    x_test, y_test = _shifted_scores(3000, 2)
    # Fitted on balanced classes, the model over-predicts the (rarer) positives.
    balanced = build_model("classification", "logistic", {"class_weight": "balanced"}, [], ["x"], 0)
    balanced.fit(x_fit, y_fit)
    before = calibration(y_test, balanced.predict_proba(x_test)[:, 1]).ece
    calibrated = calibrate(balanced, method, x_cal, y_cal)
    after = calibration(y_test, calibrated.predict_proba(x_test)[:, 1]).ece
    assert before > 0.1 and after < 0.03
    assert calibrate(balanced, "none", x_cal, y_cal) is balanced


def test_calibration_is_refused_for_a_regression(tmp_path) -> None:
    from airloop.usecase import UseCaseError, load_usecase
    from tests.sales_usecase import sales_raw, write_usecase

    raw = sales_raw()
    raw["training"]["calibration"] = "isotonic"
    with pytest.raises(UseCaseError, match="only a classification has"):
        load_usecase(str(write_usecase(tmp_path / "sales", raw)))


def test_refit_learns_the_validation_slice_and_leaves_the_test_slice_unseen(flights) -> None:
    from airloop.training.train import fit

    x, y = _shifted_scores(3000, 0)
    stamps = pd.date_range("2013-01-01", periods=len(x), freq="min", tz="UTC")
    frame = x.assign(label=y, event_timestamp=stamps)
    config = TrainConfig.from_usecase(flights, {"family": "logistic"})
    once = fit(flights, frame, ["x"], config)
    again = fit(flights, frame, ["x"], config, refit=True)
    assert not once.refit and again.refit
    assert len(again.train) == len(once.train) + len(once.validation)
    assert again.test["event_timestamp"].min() > again.train["event_timestamp"].max()
    # Experiments compare the validation figure: it is the model's before the refit.
    assert again.validation_metrics == once.validation_metrics
    probe = x.head(50)
    assert not np.allclose(once.model.predict_proba(probe), again.model.predict_proba(probe))


def test_refit_and_calibration_cannot_share_the_validation_slice(tmp_path) -> None:
    from airloop.usecase import UseCaseError, load_usecase
    from tests.sales_usecase import sales_raw, write_usecase

    raw = sales_raw()
    raw["training"].update({"refit": True, "calibration": "sigmoid"})
    with pytest.raises(UseCaseError, match=r"training\.refit fits on the validation slice"):
        load_usecase(str(write_usecase(tmp_path / "sales", raw)))


def test_the_training_sets_mlflow_schema_is_the_one_mlflow_infers() -> None:
    """From each column's distinct values: the same types and the same required columns."""
    from mlflow.types.utils import _infer_schema

    from airloop.training.train import dataset_schema

    n = 500
    frame = _frame(n).assign(
        carrier=pd.Series(["UA", "AA", None, "B6"] * (n // 4), dtype=object),
        origin=["EWR", "JFK"] * (n // 2),
        tailnum=pd.Series(["N1", None] * (n // 2), dtype="string"),
        distance=np.linspace(100.0, 2000.0, n),
        gap=np.where(np.arange(n) % 7 == 0, np.nan, 1.0),
        count_3h=np.arange(n) % 5,
        flag=np.arange(n) % 3 == 0,
        late=pd.Series([1, None] * (n // 2), dtype="Int64"),
        mixed=pd.Series([1, 2.5] * (n // 2), dtype=object),
        stamps=pd.Series([pd.Timestamp("2013-01-01", tz="UTC"), pd.NaT] * (n // 2)),
    )
    ours, mlflows = dataset_schema(frame), _infer_schema(frame)
    assert ours.to_dict() == mlflows.to_dict()
    required = {spec["name"]: spec["required"] for spec in ours.to_dict()}
    assert required["origin"] and not required["carrier"] and not required["gap"]


def test_a_candidate_family_is_kept_when_validation_scores_it_better(flights) -> None:
    """On 150 rows of a straight-line signal spread over 20 noisy inputs, the logistic
    candidate validates better than boosted trees and is the model; on a signal no line
    separates (a checkerboard), the trees are kept. The figures of both are recorded."""
    from airloop.training.train import fit

    rng = np.random.default_rng(0)
    inputs = [f"x{i}" for i in range(20)]

    def frame(n: int, label: Any) -> pd.DataFrame:
        x = pd.DataFrame(rng.normal(size=(n, 20)), columns=inputs)
        stamps = pd.date_range("2013-01-01", periods=n, freq="h", tz="UTC")
        return x.assign(label=label(x).astype(int), event_timestamp=stamps)

    config = TrainConfig.from_usecase(flights)
    assert config.family == "hist_gradient_boosting"
    linear = frame(150, lambda x: x["x0"] + rng.normal(0, 0.5, len(x)) > 0)
    kept = fit(flights, linear, inputs, config, candidates=[Candidate(family="logistic")])
    assert kept.config is not None and kept.config.family == "logistic"
    assert set(kept.compared) == {"hist_gradient_boosting", "logistic"}
    assert kept.validation_metrics["roc_auc"] == kept.compared["logistic"]
    assert kept.compared["logistic"] > kept.compared["hist_gradient_boosting"]

    checkerboard = frame(3000, lambda x: (x["x0"] > 0) ^ (x["x1"] > 0))
    kept = fit(flights, checkerboard, inputs, config, candidates=[Candidate(family="logistic")])
    assert kept.config is not None and kept.config.family == "hist_gradient_boosting"
    alone = fit(flights, checkerboard, inputs, config)
    assert alone.compared == {"hist_gradient_boosting": alone.validation_metrics["roc_auc"]}


def test_a_candidate_on_some_views_beats_more_inputs_that_only_add_noise(flights) -> None:
    """The plain model on the last known values (one view) against the same family on every
    view, on 120 rows whose signal is in that view only: the noise views' 30 inputs cost the
    bigger model on the validation slice, so the plain one is kept, and it still takes every
    input (the use case's signature) while it uses only its own."""
    from airloop.training.models import score
    from airloop.training.train import fit, inputs_of

    rng = np.random.default_rng(1)
    lags = ["s_lags__a", "s_lags__b"]
    noise = [f"s_stats__n{i}" for i in range(30)]
    n = 120
    frame = pd.DataFrame(rng.normal(size=(n, 32)), columns=[*lags, *noise])
    frame = frame.assign(
        label=(frame["s_lags__a"] + rng.normal(0, 0.7, n) > 0).astype(int),
        event_timestamp=pd.date_range("2013-01-01", periods=n, freq="h", tz="UTC"),
    )
    config = TrainConfig(family="logistic")
    plain = Candidate(family="logistic", views=["s_lags"])
    kept = fit(flights, frame, [*lags, *noise], config, candidates=[plain])
    assert set(kept.compared) == {"logistic", "logistic_on_s_lags"}
    assert kept.compared["logistic_on_s_lags"] > kept.compared["logistic"]
    assert kept.config is not None and kept.config.views == ["s_lags"]
    scored = score(kept.model, "classification", frame[[*lags, *noise]])
    shuffled = frame[[*lags, *noise]].assign(**{c: 0.0 for c in noise})
    assert np.allclose(scored, score(kept.model, "classification", shuffled))
    assert inputs_of(["hour", *lags, *noise], ["s_lags"]) == ["hour", *lags]
    assert inputs_of(lags, []) == lags


def test_relative_to_follows_a_trend_the_trees_alone_cannot() -> None:
    """A series rising past every level seen in training: boosted trees on the last value stay
    at the highest level they saw; learning the change from the last value follows it."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from airloop.training.models import RelativeTo

    level = np.arange(400, dtype=float)
    frame = pd.DataFrame({"last": level[:-1], "noise": np.random.default_rng(0).normal(size=399)})
    target = level[1:]
    train, later = frame.iloc[:300], frame.iloc[300:]
    trees = HistGradientBoostingRegressor(random_state=0).fit(train, target[:300])
    relative = RelativeTo(HistGradientBoostingRegressor(random_state=0), "last")
    relative.fit(train, target[:300])
    assert np.abs(trees.predict(later) - target[300:]).mean() > 40
    assert np.abs(relative.predict(later) - target[300:]).mean() < 1
    # Without the input, a prediction adds the training targets' mean.
    missing = later.head(1).assign(last=np.nan)
    change = relative.estimator_.predict(missing)[0]
    assert relative.predict(missing)[0] == pytest.approx(change + target[:300].mean())


def test_relative_to_is_a_model_input_of_a_regression(tmp_path) -> None:
    from airloop.usecase import UseCaseError, load_usecase
    from tests.sales_usecase import sales_raw, write_usecase

    raw = sales_raw()
    raw["training"]["relative_to"] = "no_such_input"
    with pytest.raises(UseCaseError, match="relative_to: 'no_such_input' must be a model input"):
        load_usecase(str(write_usecase(tmp_path / "sales", raw)))
    usecase = load_usecase(str(write_usecase(tmp_path / "ok", sales_raw())))
    lagged = next(i for i in usecase.model_inputs if "_lag_" in i)
    raw["training"]["relative_to"] = lagged
    assert load_usecase(str(write_usecase(tmp_path / "lag", raw))).training.relative_to == lagged


def _piece(path, ids, stamps, **columns):
    frame = pd.DataFrame(
        {"event_id": ids, "event_timestamp": pd.to_datetime(stamps, utc=True), **columns}
    )
    frame.to_parquet(path, index=False)
    return path


def test_pieces_in_time_order_are_copied_and_overlapping_ones_sorted(tmp_path) -> None:
    """Each piece is ordered already. Either way the file is ordered by time then id, a column missing in a piece or holding
    only integers there takes the others' type, and the file's digest is the whole frame's."""
    from airloop.training.dataset import combine_pieces, file_digest

    first = _piece(
        tmp_path / "a.parquet",
        ["a", "b", "c"],
        ["2013-01-01 05:00", "2013-01-01 06:00", "2013-01-01 06:00"],
        count=[1, 2, 3],
        flag=[True, False, True],
        note=[None, None, None],
    )
    later = _piece(
        tmp_path / "b.parquet",
        ["d", "e"],
        ["2013-01-02 05:30", "2013-01-03 00:00"],
        count=[4, None],
        flag=[None, True],
        note=["x", "y"],
    )
    earlier = _piece(tmp_path / "c.parquet", ["f"], ["2013-01-01 05:30"], count=[7])
    for pieces, ids in [
        ([first, later], ["a", "b", "c", "d", "e"]),
        ([first, later, earlier], ["a", "f", "b", "c", "d", "e"]),
    ]:
        out = combine_pieces(pieces, tmp_path / f"out-{len(pieces)}.parquet")
        frame = pd.read_parquet(out)
        assert list(frame["event_id"]) == ids
        assert str(frame["count"].dtype) == "float64"
        assert frame["note"].tolist()[-2:] == ["x", "y"]
        assert file_digest(out) == frame_digest(frame)


def test_a_file_digest_reads_each_row_group_as_the_whole_file_is_read(tmp_path) -> None:
    """Integers and booleans missing in one row group only: read whole, they are floats and
    objects in every row, and so they are hashed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airloop.training.dataset import file_digest

    table = pa.table(
        {
            "count": pa.array([1, 2, None, 4], pa.int64()),
            "flag": pa.array([True, False, None, True]),
            "whole": pa.array([1, 2, 3, 4], pa.int64()),
        }
    )
    path = tmp_path / "groups.parquet"
    pq.write_table(table, path, row_group_size=2)
    assert pq.ParquetFile(path).num_row_groups == 2
    assert file_digest(path) == frame_digest(pd.read_parquet(path))


def test_a_training_set_above_max_rows_is_read_as_the_same_even_sample(tmp_path) -> None:
    """Row group by row group, in the set's order, the same rows on every read; all of a set
    that fits."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airloop.training.dataset import load_training_set

    frame = pd.DataFrame(
        {
            "event_id": [f"e{i:04d}" for i in range(1000)],
            "event_timestamp": pd.date_range("2013-01-01", periods=1000, freq="min", tz="UTC"),
            "x": np.arange(1000.0),
        }
    )
    path = tmp_path / "set.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=128)
    sample = load_training_set(str(path), max_rows=300)
    assert len(sample) == 300
    assert sample["event_timestamp"].is_monotonic_increasing
    assert sample["x"].nunique() == 300
    assert sample["x"].min() < 100 and sample["x"].max() > 900  # the whole window, evenly
    assert sample.equals(load_training_set(str(path), max_rows=300))
    assert load_training_set(str(path), max_rows=1000).equals(frame)
    assert load_training_set(str(path)).equals(frame)


def test_time_split_of_an_ordered_set_is_the_split_by_masks() -> None:
    """Slices of a set in time order hold the rows the masks would pick."""
    stamps = pd.to_datetime(["2013-01-01"] * 3 + ["2013-01-02"] * 4 + ["2013-01-03"] * 3, utc=True)
    frame = pd.DataFrame({"event_timestamp": stamps, "x": range(10)})
    shuffled = frame.sample(frac=1, random_state=1)
    for a, b in zip(split_by_time(frame, 0.3, 0.3), split_by_time(shuffled, 0.3, 0.3), strict=True):
        assert sorted(a["x"]) == sorted(b["x"])


def test_max_rows_below_min_rows_is_refused() -> None:
    from airloop.usecase.policies import TrainingSpec

    with pytest.raises(ValueError, match=r"training.max_rows \(100\) is below training.min_rows"):
        TrainingSpec(model_name="m", min_rows=200, max_rows=100)


def test_the_rows_of_some_events_read_as_the_whole_set_reads_them(tmp_path) -> None:
    """``airloop ci``'s candidate rows: only the events asked for, in the set's order, each
    column typed as in the whole set (integers missing only in rows not asked for stay floats),
    a repeated event kept; none for ids of another type."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airloop.training.dataset import load_training_rows, load_training_set

    table = pa.table(
        {
            "event_id": pa.array([1, 2, 3, 4, 5, 2, 6]),
            "count": pa.array([1, 2, None, 4, 5, 2, 6], pa.int64()),
            "flag": pa.array([True, False, None, True, True, False, True]),
            "x": pa.array([0.5, 1.5, 2.5, 3.5, 4.5, 1.5, 6.5]),
        }
    )
    path = tmp_path / "set.parquet"
    pq.write_table(table, path, row_group_size=2)
    whole = load_training_set(str(path))
    asked = pd.Series([6, 2, 5, 99])
    rows = load_training_rows(str(path), asked)
    expected = whole[whole["event_id"].isin(asked)].reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, expected)
    assert rows["event_id"].tolist() == [2, 5, 2, 6]
    assert str(rows["count"].dtype) == "float64" and rows["flag"].dtype == object
    assert load_training_rows(str(path), pd.Series(["2", "5"])).empty
    assert list(load_training_rows(str(path), pd.Series([], dtype=int)).columns) == list(whole)
