"""Drift measures: known values, invariance to sample size, verdicts on real shifts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from airloop.monitoring.drift import (
    categorical_distance,
    categorical_drift,
    chi2_quantile,
    compare,
    jensen_shannon_from_proportions,
    judge,
    noise_threshold,
    numeric_distance,
    numeric_drift,
    psi_from_proportions,
)
from airloop.monitoring.minimums import MIN_LABELLED, MIN_PER_CLASS, MIN_ROWS


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


# -- the noise threshold: verdicts that mean something on small samples ------------------------


def same_and_shifted(measure: str, n: int, seed: int, shift: float = 0.0) -> tuple[Any, Any]:
    """A reference of 5,000 values and a current sample of ``n``, shifted by ``shift`` sd."""
    rng = np.random.default_rng(seed)
    return pd.Series(rng.gamma(2.0, size=5_000)), pd.Series(rng.gamma(2.0, size=n) + shift * 1.4)


@pytest.mark.parametrize(
    ("measure", "threshold"), [("psi", 0.2), ("jensen_shannon", 0.1), ("wasserstein", 0.1)]
)
def test_samples_of_one_distribution_at_n_30_do_not_drift_under_the_noise_rule(
    measure: str, threshold: float
) -> None:
    # The rule itself, below the engine's floor of 50 values (min_rows=1): at most 1 seed in
    # 100 may breach at significance 0.01. With bins clipped at 1e-4, 37 of 100 did for PSI.
    breaches = 0
    for seed in range(100):
        ref, cur = same_and_shifted(measure, 30, seed)
        drifted, applied, status = judge(numeric_distance(ref, cur, measure), threshold, 1)  # type: ignore[arg-type]
        assert status == "checked" and applied > threshold  # chance's threshold is the larger
        breaches += drifted
    assert breaches <= 1


@pytest.mark.parametrize(
    ("measure", "threshold"), [("psi", 0.2), ("jensen_shannon", 0.1), ("wasserstein", 0.1)]
)
def test_a_real_shift_at_n_2000_drifts_under_the_noise_rule(measure: str, threshold: float) -> None:
    for seed in range(20):
        ref, cur = same_and_shifted(measure, 2_000, seed, shift=0.5)
        distance = numeric_distance(ref, cur, measure)  # type: ignore[arg-type]
        drifted, applied, _ = judge(distance, threshold)
        assert drifted and applied == threshold  # at 2,000 rows the use case's threshold rules


@pytest.mark.parametrize("measure", ["psi", "jensen_shannon"])
def test_categories_of_one_mix_at_n_30_do_not_drift_and_a_new_mix_at_2000_does(
    measure: str,
) -> None:
    shares = np.array([0.4, 0.25, 0.15, 0.1, 0.05, 0.05])
    breaches = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        ref = pd.Series(rng.choice(list("abcdef"), 5_000, p=shares))
        cur = pd.Series(rng.choice(list("abcdef"), 30, p=shares))
        breaches += judge(categorical_distance(ref, cur, measure), 0.1, 1)[0]  # type: ignore[arg-type]
    assert breaches <= 1
    moved = pd.Series(rng.choice(list("abcdef"), 2_000, p=shares[::-1]))
    assert judge(categorical_distance(ref, moved, measure), 0.1)[0]  # type: ignore[arg-type]


def test_the_psi_noise_threshold_is_the_chi2_rule() -> None:
    from scipy.stats import chi2

    for dof in (1, 2, 5, 9, 40, 3_000):
        assert chi2_quantile(0.99, dof) == pytest.approx(chi2.ppf(0.99, dof), rel=0.01)
    expected = (1 / 5_000 + 1 / 30) * chi2.ppf(0.99, 9)
    assert noise_threshold("psi", 5_000, 30, 10, 0.01) == pytest.approx(expected, rel=0.01)
    assert noise_threshold("jensen_shannon", 5_000, 30, 10, 0.01) == pytest.approx(
        np.sqrt(expected / 8), rel=0.01
    )


def test_a_feature_records_the_threshold_applied_and_the_counts_behind_it() -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"x": rng.normal(size=5_000), "y": rng.normal(size=5_000)})
    cur = pd.DataFrame({"x": rng.normal(size=60), "y": [np.nan] * 20 + list(rng.normal(size=40))})
    report = compare(ref, cur, ["x", "y"], [], "psi", threshold=0.2)
    x, y = report.features
    noise = (1 / 5_000 + 1 / 60) * chi2_quantile(0.99, x.bins - 1)  # type: ignore[operator]
    assert (x.reference_rows, x.current_rows, x.bins, x.status) == (5_000, 60, 10, "checked")
    assert x.configured_threshold == 0.2
    assert x.noise_threshold == pytest.approx(noise, abs=1e-6)
    assert x.threshold == pytest.approx(max(0.2, noise), abs=1e-6)
    # 40 values of y: no verdict, and not counted in the share either way
    assert (y.current_rows, y.drifted) == (40, False)
    assert y.status == f"not enough data: 40 values, {MIN_ROWS} needed"
    assert [f.feature for f in report.checked] == ["x"]
    assert report.as_dict()["not_enough_data"] == 1


def test_a_column_gone_missing_drifts_at_any_count() -> None:
    ref = pd.DataFrame({"x": np.arange(500.0)})
    cur = pd.DataFrame({"x": [np.nan] * 60})
    (x,) = compare(ref, cur, ["x"], []).features
    assert x.drifted and x.status == "checked"


def test_a_small_sample_alone_never_makes_dataset_drift() -> None:
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({c: rng.normal(size=5_000) for c in "abc"})
    cur = pd.DataFrame({c: rng.normal(loc=3.0, size=MIN_ROWS - 1) for c in "abc"})
    report = compare(ref, cur, list("abc"), [])
    assert not report.drifted and not report.dataset_drift and report.share_drifted == 0
    enough = compare(ref, pd.concat([cur, cur.iloc[:1]]), list("abc"), [])
    assert enough.dataset_drift  # the same shift, on the floor's count


# -- the checks: the engine's floors and its own exclusions -----------------------------------


def with_monitoring(uc: Any, **changes: Any) -> Any:
    return uc.model_copy(update={"monitoring": uc.monitoring.model_copy(update=changes)})


def test_prediction_drift_on_35_scores_is_no_verdict_whatever_min_rows_says() -> None:
    from airloop.core.columns import SCORE
    from airloop.monitoring.checks import prediction_drift, prediction_status
    from airloop.usecase import load_usecase

    # What `airloop init` proposed for 5 rows a day: min_rows 17. Moved scores, still no breach.
    lax = with_monitoring(load_usecase("flights"), min_rows=17)
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({SCORE: rng.beta(2, 8, 20_000)})
    few = pd.DataFrame({SCORE: rng.beta(4, 6, 35)})
    assert prediction_drift(lax, reference, few) is None
    assert prediction_status(lax, None, 35) == (
        f"not enough data: 35 predictions of the serving version, {MIN_ROWS} needed"
    )
    alike = pd.DataFrame({SCORE: rng.beta(2, 8, 60)})
    verdict = prediction_drift(lax, reference, alike)
    assert verdict is not None and not verdict.drifted
    assert (verdict.reference_rows, verdict.current_rows, verdict.bins) == (20_000, 60, 10)
    assert verdict.configured_threshold == 0.2
    assert verdict.threshold == max(0.2, verdict.noise_threshold)  # type: ignore[type-var]
    assert verdict.noise_threshold > 0.2  # type: ignore[operator]


def test_calendar_features_are_never_drift_inputs_whatever_exclude_says() -> None:
    from airloop.monitoring.checks import data_drift, drift_inputs
    from airloop.usecase import load_usecase

    flights = load_usecase("flights")
    events = flights.events.model_copy(update={"calendar": ["month", "day_of_week"]})
    uc = with_monitoring(flights.model_copy(update={"events": events}), exclude=["distance"])
    rng = np.random.default_rng(8)
    reference = pd.DataFrame(
        {
            "event_month": rng.integers(1, 3, 1_000),
            "event_day_of_week": rng.integers(0, 7, 1_000),
            "distance": rng.normal(1_000, 300, 1_000),
            "dep_delay_mean": rng.normal(10, 5, 1_000),
        }
    )
    served = reference.assign(event_month=12, distance=reference["distance"] * 3)
    assert drift_inputs(uc, reference) == ["dep_delay_mean"]
    report = data_drift(uc, reference, served)
    assert [f.feature for f in report.features] == ["dep_delay_mean"] and not report.drifted


def test_live_performance_needs_enough_labels_and_both_classes() -> None:
    from airloop.monitoring.checks import too_few_labels
    from airloop.usecase import load_usecase

    lax = with_monitoring(load_usecase("flights"), min_labelled=10)
    assert too_few_labels(lax, pd.Series([0.0, 1.0] * 12)) == (
        f"not enough data: 24 labelled predictions, {MIN_LABELLED} needed"
    )
    rare = pd.Series([1.0] * (MIN_PER_CLASS - 1) + [0.0] * 200)
    assert too_few_labels(lax, rare) == (
        f"not enough data: {MIN_PER_CLASS - 1} labelled predictions of the rarer class,"
        f" {MIN_PER_CLASS} needed"
    )
    assert too_few_labels(lax, pd.Series([1.0] * MIN_PER_CLASS + [0.0] * 200)) is None
