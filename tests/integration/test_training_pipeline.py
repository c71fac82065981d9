"""Experimentation (C) and training (D) on real flights features, through Airflow and MLflow."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO
from tests.integration.conftest import day, load_dag, task_states
from tests.support import AIRLOOP

pytestmark = pytest.mark.integration
WINDOW = {"window_start": "2013-01-01", "window_end": "2013-01-09"}


@pytest.fixture(scope="module")
def mlflow_client(features):
    from airloop.registry.tracking import configure

    return configure(features)


@pytest.fixture(scope="module")
def experiment_run(features):
    conf = {
        **WINDOW,
        "n_trials": 2,
        "search_space": {"learning_rate": [0.05, 0.1], "max_iter": [60]},
    }
    return load_dag("experimentation").test(logical_date=day(11), run_conf=conf)


@pytest.fixture(scope="module")
def training_run(experiment_run, features, flights, mlflow_client) -> Iterator[Any]:
    """A model_training run with no champion before it, so the gate holds the new version to
    the use case's floors and ceilings alone, which a model of these eight days clears: the
    run promotes, whatever other modules of the session left as champion (put back after)."""
    from airloop.registry.models import CHAMPION, alias_version

    name = flights.training.model_name
    kept = alias_version(features, name)
    if kept is not None:
        mlflow_client.delete_registered_model_alias(name, CHAMPION)
    try:
        # Within the replay (the DAG ends with the data); the window comes from the params.
        yield load_dag("model_training").test(logical_date=day(12), run_conf=WINDOW)
    finally:
        if kept is not None:
            mlflow_client.set_registered_model_alias(name, CHAMPION, kept)


def test_experiment_runs_trials_in_parallel_tasks_nested_in_mlflow(
    experiment_run, mlflow_client
) -> None:
    import mlflow

    assert str(experiment_run.state) == "success", task_states(experiment_run)
    tis = [ti for ti in experiment_run.get_task_instances() if ti.task_id == "run_trial"]
    assert sorted(ti.map_index for ti in tis) == [0, 1]
    parents = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`airloop.run_id` = '{experiment_run.run_id}' and tags.`airloop.stage` = 'experiment'",
        output_format="list",
    )
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.tags["airloop.proposal"] == "true"
    proposal = json.loads(parent.data.tags["airloop.proposed_config"])
    assert proposal["family"] == "hist_gradient_boosting" and proposal["params"]["max_iter"] == 60
    children = mlflow.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
        output_format="list",
    )
    assert len(children) == 2
    child = mlflow_client.get_run(children[0].info.run_id)
    assert child.data.params["feature_service"] == "flight_delay_v1"
    assert child.data.params["window_start"].startswith("2013-01-01")
    assert (
        child.data.tags["airloop.lock_hash"]
        == hashlib.sha256((REPO / "uv.lock").read_bytes()).hexdigest()
    )
    inputs = child.inputs.dataset_inputs
    assert inputs and inputs[0].dataset.digest == child.data.params["training_set_digest"][:36]
    # The schema logged with it is the one MLflow infers from the training set itself.
    from mlflow.types.utils import _infer_schema

    from airloop.training.dataset import load_training_set

    logged = inputs[0].dataset
    frame = load_training_set(json.loads(logged.source)["uri"])
    assert json.loads(logged.schema)["mlflow_colspec"] == _infer_schema(frame).to_dict()
    artifacts = {a.path for a in mlflow_client.list_artifacts(parent.info.run_id, "comparison")}
    assert artifacts == {"comparison/trials.csv", "comparison/trials.png"}


def test_training_registers_and_promotes_with_lineage(
    training_run, features, flights, mlflow_client
) -> None:
    from airloop.features.offline import partition_file
    from airloop.features.store import feature_store
    from airloop.training.dataset import frame_digest

    assert str(training_run.state) == "success", task_states(training_run)
    name = flights.training.model_name
    versions = mlflow_client.search_model_versions(
        f"name = '{name}' and tags.`airloop.run_id` = '{training_run.run_id}'"
    )
    assert len(versions) == 1
    mv = versions[0]
    tags = mv.tags
    # Every lineage tag resolves to something real.
    run = mlflow_client.get_run(tags["airloop.mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.info.run_id == mv.run_id
    for d in pd.date_range(
        tags["airloop.window_start"], tags["airloop.window_end"], freq="D", inclusive="left"
    ):
        assert partition_file(features, flights, "_events", d.to_pydatetime()).exists()
    store = feature_store(features, flights)
    service = store.get_feature_service(tags["airloop.feature_service"])
    assert sorted(json.loads(tags["airloop.feature_views"])) == sorted(
        p.name for p in service.feature_view_projections
    )
    assert (
        frame_digest(pd.read_parquet(tags["airloop.training_set_uri"]))
        == tags["airloop.training_set_digest"]
    )
    commit = tags["airloop.git_commit"].removesuffix("+dirty")
    assert subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", commit]).returncode == 0
    assert tags["airloop.lock_hash"] == hashlib.sha256((REPO / "uv.lock").read_bytes()).hexdigest()
    assert tags["airloop.dag_id"] == "model_training" and tags["airloop.validation"] == "passed"
    assert json.loads(tags["airloop.config"])["params"]["max_iter"] == 60, (
        "the experiment's proposal was used"
    )
    assert float(tags["airloop.test_roc_auc"]) > 0.5
    # Aliases: the new version is challenger and, with no champion to beat, champion.
    assert tags["airloop.gate"] == "passed"
    assert mlflow_client.get_model_version_by_alias(name, "challenger").version == mv.version
    assert mlflow_client.get_model_version_by_alias(name, "champion").version == mv.version
    evaluation = {a.path for a in mlflow_client.list_artifacts(mv.run_id, "evaluation")}
    assert {
        "evaluation/evaluation.json",
        "evaluation/slices.csv",
        "evaluation/calibration.png",
    } <= evaluation


def test_registration_and_training_are_idempotent_per_run(
    training_run, features, flights, mlflow_client
) -> None:
    from airloop.training import pipeline
    from airloop.training.checks import TrainingSetCheck

    lineage = {"dag_id": "model_training", "run_id": training_run.run_id, "trigger": "test"}
    ts = pipeline.build_training_set(params=WINDOW, usecase=flights, settings=features)
    trained = pipeline.train_model(ts, lineage, None, flights, features)
    first = mlflow_client.search_model_versions(
        f"name = '{flights.training.model_name}' and tags.`airloop.run_id` = '{training_run.run_id}'"
    )[0]
    assert trained.run_id == first.run_id, "a retried train task reuses its MLflow run"
    evaluation = pipeline.evaluate_model(ts, trained, flights, features)
    passed = TrainingSetCheck(success=True, rows=ts.rows)
    again = pipeline.register_model(ts, passed, trained, evaluation, lineage, flights, features)
    assert again.version == str(first.version) and again.created is False
    count = mlflow_client.search_model_versions(
        f"name = '{flights.training.model_name}' and tags.`airloop.run_id` = '{training_run.run_id}'"
    )
    assert len(count) == 1


def test_training_is_reproducible(features, flights) -> None:
    from airloop.training import pipeline
    from airloop.training.train import evaluate_run, train_and_log

    a = pipeline.build_training_set(params=WINDOW, usecase=flights, settings=features)
    b = pipeline.build_training_set(params=WINDOW, usecase=flights, settings=features)
    assert a.digest == b.digest
    config = {"family": "hist_gradient_boosting", "params": {"max_iter": 40}}
    first = train_and_log(features, flights, a, config, {"trigger": "test"})
    second = train_and_log(features, flights, b, config, {"trigger": "test"})
    assert first.run_id != second.run_id
    assert first.metrics == second.metrics
    assert (
        evaluate_run(features, flights, a, first.run_id).challenger
        == evaluate_run(features, flights, b, second.run_id).challenger
    )


def test_a_training_set_joined_in_pieces_is_the_set_joined_whole(
    features, flights, monkeypatch, caplog
) -> None:
    """Pieces of a few days each give the rows, the file and the digest of one join."""
    import logging

    from airloop.training import dataset, pipeline

    whole = pipeline.build_training_set(params=WINDOW, usecase=flights, settings=features)
    monkeypatch.setattr(dataset, "PIECE_ROWS", 2_000)
    Path(whole.uri).unlink()
    with caplog.at_level(logging.INFO, logger=dataset.__name__):
        pieces = pipeline.build_training_set(params=WINDOW, usecase=flights, settings=features)
    assert "in 4 piece(s)" in caplog.text
    assert (pieces.uri, pieces.digest, pieces.rows) == (whole.uri, whole.digest, whole.rows)
    assert dataset.frame_digest(pd.read_parquet(pieces.uri)) == pieces.digest


def test_gate_refuses_a_worse_challenger_and_promotes_a_better_one(
    features, flights, mlflow_client, tmp_path
) -> None:
    from airloop.registry.models import Promotion, describe_champion
    from airloop.training import pipeline
    from airloop.training.checks import TrainingSetCheck
    from airloop.training.dataset import TrainingSet, frame_digest
    from airloop.usecase import GateSpec

    usecase = flights.model_copy(
        update={
            "training": flights.training.model_copy(update={"model_name": "gate_test"}),
            "gates": GateSpec(max_regression=0.0),
        }
    )
    real = pipeline.build_training_set(params=WINDOW, usecase=usecase, settings=features)
    frame = pd.read_parquet(real.uri)
    frame["label"] = frame["label"].sample(frac=1.0, random_state=3).to_numpy()
    shuffled_path = tmp_path / "shuffled.parquet"
    frame.to_parquet(shuffled_path, index=False)
    shuffled = real.model_copy(update={"uri": str(shuffled_path), "digest": frame_digest(frame)})

    def cycle(training_set: TrainingSet, run: str, approval: Any = None) -> dict[str, Any]:
        lineage = {"dag_id": "gate_test", "run_id": run, "trigger": "test"}
        trained = pipeline.train_model(
            training_set, lineage, {"family": "logistic", "params": {"C": 1.0}}, usecase, features
        )
        evaluation = pipeline.evaluate_model(real, trained, usecase, features)
        passed = TrainingSetCheck(success=True, rows=training_set.rows)
        registered = pipeline.register_model(
            training_set, passed, trained, evaluation, lineage, usecase, features
        )
        return {
            "version": registered.version,
            "promotion": pipeline.promote_model(registered, usecase, features, approval),
        }

    weak = cycle(shuffled, "weak-1")
    assert weak["promotion"].promoted, "the first version becomes champion when no floor applies"
    strong = cycle(real, "strong-1")
    assert strong["promotion"] == Promotion(
        promoted=True, champion=strong["version"], previous=weak["version"]
    )
    worse = cycle(shuffled, "weak-2")
    assert worse["promotion"].promoted is False
    champion = describe_champion(features, usecase)
    assert champion is not None and champion["version"] == strong["version"]
    assert champion["aliases"] == {
        "champion": strong["version"],
        "challenger": worse["version"],
        "previous": weak["version"],
    }
    refused = mlflow_client.get_model_version("gate_test", worse["version"])
    assert refused.tags["airloop.promotion"].startswith("not promoted, because roc_auc")
    check_history_and_evidence(features, usecase, mlflow_client, weak, strong, worse)
    # A person at the approval step rejects a challenger the gate passed: nothing moves.
    rejected = cycle(real, "strong-2", pipeline.Approval(approved=False, by="alice"))
    assert rejected["promotion"].promoted is False
    assert rejected["promotion"].reasons == ["rejected by alice at the approval step"]
    assert describe_champion(features, usecase)["version"] == weak["version"]
    from airloop.registry.evidence import history

    last = history(features, usecase)[-1]
    assert (last.kind, last.actor, last.version) == ("rejected", "alice", rejected["version"])


def check_history_and_evidence(features, usecase, mlflow_client, weak, strong, worse) -> None:
    """Each decision is in the history with its evidence; a rollback too; champion at T."""
    from datetime import UTC, datetime

    from airloop.registry.evidence import champion_at, history
    from airloop.registry.models import rollback

    events = history(features, usecase)
    assert [(e.kind, e.version) for e in events] == [
        ("promoted", weak["version"]),
        ("promoted", strong["version"]),
        ("refused", worse["version"]),
    ]
    promoted = events[1]
    assert promoted.effective_at == datetime(2013, 1, 9, tzinfo=UTC), "the window's end"
    assert (promoted.champion_before, promoted.champion_after) == (
        weak["version"],
        strong["version"],
    )
    evidence = promoted.evidence
    assert evidence["validation"] == "passed" and evidence["gate"]["promote"] is True
    assert evidence["evaluation"]["champion_version"] == weak["version"]
    assert (
        evidence["evaluation"]["challenger"]["roc_auc"]
        > evidence["evaluation"]["champion"]["roc_auc"]
    )
    assert evidence["trigger"]["run_id"] == "strong-1" and evidence["approved_by"] == "the gate"
    assert "refused" in events[2].reason or "roc_auc" in events[2].reason
    run_id = mlflow_client.get_model_version("gate_test", strong["version"]).run_id
    attached = {a.path for a in mlflow_client.list_artifacts(run_id, "evidence")}
    assert attached == {
        f"evidence/{promoted.id:05d}-promoted.json",
        f"evidence/{promoted.id:05d}-promoted.html",
    }
    assert promoted.evidence_uri == f"runs:/{run_id}/evidence/{promoted.id:05d}-promoted.json"

    rolled = rollback(
        features,
        usecase,
        "bad live metric",
        who="tester",
        effective_at=datetime(2013, 1, 20, tzinfo=UTC),
    )
    assert rolled.to_version == weak["version"]
    last = history(features, usecase)[-1]
    assert (last.kind, last.actor, last.champion_after) == (
        "rolled_back",
        "tester",
        weak["version"],
    )
    assert champion_at(features, usecase, datetime(2013, 1, 8, tzinfo=UTC)) is None
    assert (
        champion_at(features, usecase, datetime(2013, 1, 15, tzinfo=UTC)).champion_after
        == strong["version"]
    )
    assert (
        champion_at(features, usecase, datetime(2013, 1, 21, tzinfo=UTC)).champion_after
        == weak["version"]
    )


def test_regression_usecase_trains_end_to_end(features, tmp_path) -> None:
    """The same engine on a regression use case: arrival delay in minutes."""
    from airloop.features.pipeline import run_interval
    from airloop.training import pipeline
    from airloop.usecase import load_usecase, resolve_usecase_path

    raw = yaml.safe_load(resolve_usecase_path("flights").read_text())
    raw["name"] = "flights_minutes"
    raw["task"] = "regression"
    raw["label"].pop("threshold")
    raw["label"]["name"] = "arr_delay_minutes"
    raw["metrics"] = ["rmse", "mae", "r2"]
    raw["gates"] = {"maximum": {"rmse": 200.0}, "max_regression": 1.0}
    raw["feature_service"]["name"] = "flight_minutes_v1"
    raw["training"].update({"model_name": "flight_arrival_delay", "params": {"max_iter": 60}})
    allowed = raw["training"]["max_null_shares"]  # a label rate's share is a mean in minutes
    raw["training"]["max_null_shares"] = {
        k.replace("__share_", "__mean_"): v for k, v in allowed.items()
    }
    path = tmp_path / "usecase.yaml"
    path.write_text(yaml.safe_dump(raw))
    usecase = load_usecase(str(path))
    # The same raw files, landed for this use case (each has its own landing folder).
    shutil.copytree(
        features.landing_root("flights"), features.landing_root(usecase.name), dirs_exist_ok=True
    )
    for d in range(1, 9):
        run_interval(day(d), day(d + 1), usecase, features)
    result = pipeline.run_training(
        WINDOW["window_start"], WINDOW["window_end"], None, {"trigger": "test"}, usecase, features
    )
    assert set(result.evaluation.challenger) == {"rmse", "mae", "r2"}
    assert result.promotion.promoted, result.registered.decision
    labels = pd.read_parquet(result.training_set.uri)["label"]
    assert labels.nunique() > 50, "the label is minutes, not a class"


def test_listener_records_every_task_of_an_airloop_run(
    training_run, features, mlflow_client
) -> None:
    from airloop.metadata.store import MetadataStore

    rows = MetadataStore(features).task_runs("model_training", training_run.run_id)
    assert {r["task_id"] for r in rows} == set(task_states(training_run))
    for row in rows:
        assert row["state"] == "success" and row["try_number"] == 1, row
        assert row["hostname"] and row["executor"] and row["duration"] is not None
        assert row["end_date"] >= row["start_date"]
        assert (
            row["conf"]["conf"] == WINDOW
            and row["conf"]["params"]["window_start"] == WINDOW["window_start"]
        )
        assert row["usecase"] == "flights" and row["data_interval_end"] is not None
    trained = next(r for r in rows if r["task_id"] == "train_model")
    mv = mlflow_client.search_model_versions(
        f"name = 'flight_delay' and tags.`airloop.run_id` = '{training_run.run_id}'"
    )[0]
    assert trained["mlflow_run_ids"] == [mv.run_id], "Airflow links to the MLflow run it made"
    assert next(r for r in rows if r["task_id"] == "promote_model")["mlflow_run_ids"] == []


def test_lineage_of_a_trained_model_resolves_and_reports_a_broken_link(
    training_run, features, flights, mlflow_client
) -> None:
    from airloop.lineage.chain import model_lineage
    from airloop.metadata.store import MetadataStore

    mv = mlflow_client.search_model_versions(
        f"name = 'flight_delay' and tags.`airloop.run_id` = '{training_run.run_id}'"
    )[0]
    ref = f"models:/flight_delay/{mv.version}"
    chain = model_lineage(features, flights, ref)
    assert chain.broken() == [], chain.broken()

    def walk(link: Any) -> list[Any]:
        return [link] + [x for child in link.links for x in walk(child)]

    links = walk(chain)
    assert [link.ref for link in links if link.status != "ok"] == [], "nothing changed since"
    kinds = {link.kind for link in links}
    assert kinds >= {
        "model version",
        "training run",
        "Airflow run",
        "trigger",
        "training set",
        "feature service",
        "feature view",
        "feature-pipeline run",
        "validation",
        "raw partition",
        "code",
    }
    intervals = [link.ref for link in links if link.kind == "feature-pipeline run"]
    assert intervals == [f"2013-01-0{d}" for d in range(1, 9)], "one run per interval of the window"
    airflow = next(link for link in links if link.kind == "Airflow run")
    assert airflow.ref == f"model_training/{training_run.run_id}" and airflow.detail["tasks"]

    store = MetadataStore(features)
    kept = next(r for r in store.intervals("flights") if r["partition"] == "2013-01-03")
    assert store.delete_interval("flights", "2013-01-03") == 1
    try:
        broken = model_lineage(features, flights, ref).broken()
        assert [(b.kind, b.ref) for b in broken] == [("feature-pipeline run", "2013-01-03")]
        assert "no run record" in (broken[0].problem or "")
        cli = subprocess.run([AIRLOOP, "lineage", ref], capture_output=True, text=True)
        assert cli.returncode == 1 and "✗ feature-pipeline run: 2013-01-03" in cli.stdout
    finally:
        store.record_interval({k: v for k, v in kept.items() if k != "recorded_at"})
    assert model_lineage(features, flights, ref).broken() == []


def test_the_airloop_page_shows_the_run_its_model_and_lineage(
    training_run, features, flights, mlflow_client
) -> None:
    from airloop.lineage import page

    mv = mlflow_client.search_model_versions(
        f"name = 'flight_delay' and tags.`airloop.run_id` = '{training_run.run_id}'"
    )[0]
    run = page.run_page(features, flights, "model_training", training_run.run_id)
    assert f">v{mv.version}</a> of flight_delay" in run
    assert "<li class='broken'>" not in run and "feature-pipeline run" in run
    assert "train_model" in run and "evidence/" in run
    # Relative links only: to Airflow's run pages from the tab, and to the page's own routes.
    assert 'href="../../../dags/model_training/runs/' in run
    assert 'href="/' not in run and "href='/" not in run
    overview = page.overview(features, flights)
    assert "id='champion'" in overview and "id='promotions'" in overview
    assert page.report_page(features, flights, "../../etc") is None
    assert page.evidence_page(features, flights, 10**6) is None
