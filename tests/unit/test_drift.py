"""Drift measures: known values, invariance to sample size, verdicts on real shifts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airloop.monitoring.drift import (
    categorical_drift,
    compare,
    jensen_shannon_from_proportions,
    numeric_drift,
    psi_from_proportions,
)


def test_psi_and_js_of_identical_distributions_are_zero():
    p = np.array([0.2, 0.3, 0.5])
    assert psi_from_proportions(p, p) == 0
    assert jensen_shannon_from_proportions(p, p) == pytest.approx(0, abs=1e-9)


def test_psi_matches_the_textbook_formula():
    ref, cur = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert psi_from_proportions(ref, cur) == pytest.approx(expected)


def test_js_distance_matches_scipy_and_tops_at_sqrt_ln2():
    from scipy.spatial import distance

    p, q = np.array([0.1, 0.4, 0.5]), np.array([0.3, 0.3, 0.4])
    assert jensen_shannon_from_proportions(p, q) == pytest.approx(distance.jensenshannon(p, q))
    disjoint = jensen_shannon_from_proportions(np.array([1.0, 1e-12]), np.array([1e-12, 1.0]))
    assert disjoint == pytest.approx(np.sqrt(np.log(2)), abs=1e-3)


@pytest.mark.parametrize("measure", ["psi", "jensen_shannon", "wasserstein"])
def test_no_drift_on_samples_of_one_distribution_even_at_large_n(measure):
    rng = np.random.default_rng(0)
    ref = pd.Series(rng.normal(size=200_000))
    cur = pd.Series(rng.normal(size=200_000))
    assert numeric_drift(ref, cur, measure) < 0.01


@pytest.mark.parametrize(
    ("measure", "threshold"), [("psi", 0.2), ("jensen_shannon", 0.1), ("wasserstein", 0.1)]
)
def test_a_one_sigma_shift_drifts(measure, threshold):
    rng = np.random.default_rng(1)
    ref = pd.Series(rng.normal(size=20_000))
    cur = pd.Series(rng.normal(loc=1.0, size=5_000))
    assert numeric_drift(ref, cur, measure) > threshold


def test_missing_values_and_infinities_are_ignored_not_fatal():
    ref = pd.Series([1.0, 2.0, np.nan, 3.0, np.inf] * 100)
    cur = pd.Series([1.0, 2.0, 3.0, None] * 100)
    assert numeric_drift(ref, cur, "psi") < 0.05


def test_categorical_drift_sees_a_new_category_and_a_changed_mix():
    ref = pd.Series(["a"] * 500 + ["b"] * 500)
    assert categorical_drift(ref, pd.Series(["a"] * 500 + ["b"] * 500), "psi") < 1e-6
    assert categorical_drift(ref, pd.Series(["a"] * 100 + ["c"] * 900), "psi") > 1.0
    assert categorical_drift(ref, pd.Series(["a"] * 900 + ["b"] * 100), "jensen_shannon") > 0.2


def test_compare_flags_features_and_the_dataset_share():
    rng = np.random.default_rng(2)
    ref = pd.DataFrame(
        {"x": rng.normal(size=5000), "y": rng.normal(size=5000), "c": rng.choice(["u", "v"], 5000)}
    )
    cur = ref.sample(2000, random_state=0).copy()
    cur["x"] = cur["x"] + 2
    report = compare(ref, cur, ["x", "y"], ["c"], threshold=0.2, share_threshold=0.3)
    assert [f.feature for f in report.drifted] == ["x"]
    assert report.share_drifted == pytest.approx(1 / 3)
    assert report.dataset_drift
    stricter = compare(ref, cur, ["x", "y"], ["c"], thresholds={"x": 50.0})
    assert not stricter.drifted


def test_wasserstein_is_refused_for_categories():
    with pytest.raises(ValueError, match="ordered"):
        categorical_drift(pd.Series(["a"]), pd.Series(["b"]), "wasserstein")


def test_a_constant_reference_that_changes_drifts_with_a_finite_json_safe_score():
    import json

    ref = pd.DataFrame({"month": [1.0] * 500})
    cur = pd.DataFrame({"month": [2.0] * 300})
    report = compare(ref, cur, ["month"], [], "wasserstein", threshold=0.5)
    assert report.features[0].drifted
    json.dumps(report.as_dict(), allow_nan=False)
    same = compare(ref, ref, ["month"], [], "wasserstein", threshold=0.5)
    assert not same.features[0].drifted


def test_prediction_drift_gives_no_verdict_on_fewer_than_min_rows_of_the_version():
    from airloop.core.columns import SCORE
    from airloop.monitoring.checks import prediction_drift
    from airloop.usecase import load_usecase

    flights = load_usecase("flights")
    need = flights.monitoring.min_rows
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({SCORE: rng.beta(2, 8, 20_000)})
    shifted = pd.DataFrame({SCORE: rng.beta(4, 6, need)})  # a new version's scores, moved
    assert prediction_drift(flights, reference, shifted.iloc[: need - 1]) is None
    verdict = prediction_drift(flights, reference, shifted)
    assert verdict is not None and verdict.drifted
    alike = pd.DataFrame({SCORE: rng.beta(2, 8, need)})
    same = prediction_drift(flights, reference, alike)
    assert same is not None and not same.drifted
