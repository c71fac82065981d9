"""The DAGs' Params refuse, at trigger time, the bad values their JSON schemas can express.

Airflow validates a trigger's conf against the DAG's Params before it creates the run (the
Trigger form and ``airflow dags trigger --conf`` alike): this applies a conf the way it does
(``ParamsDict.update`` then ``validate``). What a schema cannot say (a window in the future, a
key no Param declares) is refused by the first task: ``tests/unit/test_bad_input.py``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def dags() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def trigger(dag: Any, conf: dict[str, Any]) -> dict[str, Any]:
    """The params a run triggered with ``conf`` would get, or Airflow's refusal."""
    params = copy.deepcopy(dag.params)
    params.update(conf)
    return params.validate()


def test_the_default_forms_are_valid(dags) -> None:
    trigger(dags["experimentation"], {})
    trigger(dags["model_training"], {})


REFUSED = [
    ("experimentation", {"n_trials": -1}, "n_trials"),
    ("experimentation", {"n_trials": 0}, "n_trials"),
    ("experimentation", {"n_trials": "3"}, "n_trials"),
    ("experimentation", {"n_trials": 3.5}, "n_trials"),
    ("experimentation", {"model_family": "xgboost"}, "model_family"),
    ("experimentation", {"metric": "rmse"}, "metric"),
    ("experimentation", {"seed": -5}, "seed"),
    ("experimentation", {"search_space": {"max_depth": []}}, "search_space"),
    ("experimentation", {"search_space": {"max_depth": 3}}, "search_space"),
    ("experimentation", {"window_start": "2013-13-01"}, "window_start"),
    ("experimentation", {"window_end": 20130301}, "window_end"),
    ("model_training", {"window_start": "yesterday"}, "window_start"),
    ("model_training", {"window_end": 5}, "window_end"),
    ("model_training", {"config": "fast"}, "config"),
    ("model_training", {"config": {"family": "xgboost"}}, "config"),
    ("model_training", {"config": {"famly": "logistic"}}, "config"),
    ("model_training", {"config": {"params": [1, 2]}}, "config"),
]


@pytest.mark.parametrize(("dag_id", "conf", "field"), REFUSED, ids=lambda v: str(v))
def test_a_bad_value_is_refused_naming_its_param(
    dags, dag_id: str, conf: dict[str, Any], field: str
) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError, match=rf"Invalid input for param {field}\b"):
        trigger(dags[dag_id], conf)


def test_a_good_conf_is_accepted(dags) -> None:
    params = trigger(
        dags["model_training"],
        {"window_start": "2013-01-01", "config": {"family": "logistic", "params": {"C": 2.0}}},
    )
    assert params["config"]["family"] == "logistic"
    params = trigger(dags["experimentation"], {"n_trials": 5, "model_family": "random_forest"})
    assert params["n_trials"] == 5


def test_the_first_task_refuses_what_no_schema_can_say_before_its_stage() -> None:
    """A window in the future, a key no Param declares: the first task of each DAG fails at
    once, naming the field, before its stage (trials, a training set) runs."""
    from airflow.sdk.exceptions import AirflowFailException

    from airloop.orchestration.experimentation import plan_trials
    from airloop.orchestration.model_training import build_training_set

    with pytest.raises(AirflowFailException, match="window_end: 2999-01-01 is in the future"):
        plan_trials.function(usecase="flights", params={"window_end": "2999-01-01"})
    with pytest.raises(AirflowFailException, match="n_trial: not a parameter of this DAG"):
        build_training_set.function(usecase="flights", params={"n_trial": 3})
