"""The one list of model families and metrics: what each task type may use."""

from __future__ import annotations

import numpy as np
import pytest

from airloop.catalog import ModelConfigError, family, family_names, is_better, metric, metric_names
from airloop.training.models import build_model


def test_families_and_metrics_per_task() -> None:
    assert family_names("classification") == ["hist_gradient_boosting", "logistic", "random_forest"]
    assert family_names("regression") == ["hist_gradient_boosting", "linear", "random_forest"]
    assert metric_names("regression") == ["rmse", "mae", "r2"]
    assert metric_names("classification")[0] == "roc_auc"


def test_unknown_family_or_metric_lists_the_known_ones() -> None:
    with pytest.raises(ModelConfigError, match=r"choose one of \['hist_gradient_boosting'"):
        family("linear", "classification")
    with pytest.raises(ModelConfigError, match=r"known:.*'mae'"):
        metric("roc_auc", "regression")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_family_builds_and_fits_for_its_tasks(task: str) -> None:
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "c": rng.choice(["a", "b"], size=60)})
    y = (frame["x"] > 0).astype(int) if task == "classification" else frame["x"] * 2
    for name in family_names(task):
        model = build_model(task, name, {}, ["c"], ["x"], seed=1)
        model.fit(frame, y)
        assert len(model.predict(frame)) == 60, name


def test_unknown_parameters_are_refused_with_the_family() -> None:
    with pytest.raises(ModelConfigError, match="logistic"):
        build_model("classification", "logistic", {"depth": 3}, [], ["x"], seed=1)


def test_metrics_compute_and_say_which_way_is_better() -> None:
    assert metric("mae", "regression").compute(np.array([1.0, 2.0]), np.array([2.0, 2.0])) == 0.5
    assert np.isnan(
        metric("roc_auc", "classification").compute(np.array([1, 1]), np.array([0.2, 0.9]))
    )
    assert is_better("mae", "regression", 1.0, 1.2) and not is_better("r2", "regression", 0.1, 0.3)
