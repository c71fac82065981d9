"""Every DAG file imports cleanly, follows the header policy, and stays light to parse."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airloop.usecase.model import load_usecase
from tests.conftest import REPO

DAG_FILES = sorted((REPO / "dags").glob("*.py"))
HEAVY = ("feast", "mlflow", "great_expectations", "sklearn", "pandas")
ALLOWED_TAGS = {"airloop", "features", "experimentation", "training", "serving", "monitoring"}
# What each DAG of the flights use case is scheduled by: the use case's "@daily" intervals, its
# training timetable (the 1st and the 15th) or a retrain request, or nothing (triggered only).
SCHEDULES: dict[str, tuple[str, str | None, str | None]] = {
    "batch_inference": ("CronDataIntervalTimetable", "0 0 * * *", None),
    "experimentation": ("NullTimetable", None, None),
    "feature_pipeline": ("CronDataIntervalTimetable", "0 0 * * *", None),
    "model_training": (
        "AssetOrTimeSchedule",
        "0 0 1,15 * *",
        "airloop://flights/retrain-request",
    ),
    "monitoring": ("CronDataIntervalTimetable", "0 0 * * *", None),
}


def schedule_of(dag: Any) -> tuple[str, str | None, str | None]:
    """A DAG's timetable as (kind, cron expression, the Asset URI it waits for)."""
    timetable = dag.timetable
    timer = getattr(timetable, "timetable", timetable)  # an asset-or-time schedule's timer
    assets = [a.uri for a in getattr(timetable.asset_condition, "objects", [])]
    return (
        type(timetable).__name__,
        getattr(timer, "expression", None),
        ",".join(sorted(assets)) or None,
    )


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert dagbag.dags, "no DAG was found in dags/"


def test_dag_id_is_the_file_stem(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id.partition("__")[0]


def test_each_use_case_gets_its_own_dags(monkeypatch, second_usecase: Path) -> None:
    """Two use cases in one Airflow: ten DAGs, each wired to its own use case and Assets."""
    from airflow.dag_processing.dagbag import DagBag

    from airloop.settings import get_settings

    monkeypatch.setenv("AIRLOOP_USECASES", f"flights,{second_usecase}")
    get_settings.cache_clear()
    try:
        bag = DagBag(dag_folder=str(REPO / "dags"))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert bag.import_errors == {}
    stems = [p.stem for p in DAG_FILES]
    assert sorted(bag.dags) == sorted([*stems, *(f"{s}__panel" for s in stems)])
    for stem in stems:
        first, second = bag.dags[stem], bag.dags[f"{stem}__panel"]
        assert "usecase:flights" in first.tags and "usecase:panel" in second.tags
        assert {t.task_id for t in first.tasks} == {t.task_id for t in second.tasks}
        refs = {t.op_kwargs.get("usecase") for t in second.tasks if hasattr(t, "op_kwargs")}
        assert refs <= {str(second_usecase), None} and str(second_usecase) in refs, refs
    [alias] = bag.dags["monitoring__panel"].get_task("check_interval").outlets
    assert alias.name == "panel_retrain_requests"
    condition = str(bag.dags["model_training__panel"].timetable.asset_condition)
    assert "airloop://panel/retrain-request" in condition and "flights" not in condition


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[p.stem for p in DAG_FILES])
def test_header_policy(dagbag, dag_file: Path) -> None:
    dag = dagbag.dags[dag_file.stem]
    assert dag.doc_md and dag.doc_md.strip().startswith("###"), (
        "doc_md must be the file's Markdown docstring"
    )
    assert schedule_of(dag) == SCHEDULES[dag_file.stem]
    # Stated by dag_header, and off: no DAG runs every missed interval when it is unpaused.
    assert dag.catchup is False
    assert dag.tags, "tags are required"
    for tag in dag.tags:
        assert tag in ALLOWED_TAGS or tag.startswith("usecase:"), f"tag {tag!r} is not in the list"
    assert dag.default_args.get("owner"), "owner is required"
    assert dag.default_args.get("retries", 0) >= 1
    for task in dag.tasks:
        assert task.retries >= 1 and task.owner == dag.default_args["owner"]
        assert task.retry_delay <= timedelta(minutes=5)


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[p.stem for p in DAG_FILES])
def test_dag_file_imports_no_heavy_module(dag_file: Path) -> None:
    probe = (
        "import json, runpy, sys\n"
        f"runpy.run_path({str(dag_file)!r})\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_feature_pipeline_shape(dagbag) -> None:
    dag = dagbag.dags["feature_pipeline"]
    order = [
        "validate_partition",
        "build_offline_features",
        "materialize_online",
    ]
    assert set(dag.task_ids) == set(order)
    for upstream, downstream in itertools.pairwise(order):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    assert dag.max_active_runs == 1
    materialize = dag.get_task("materialize_online")
    assert materialize.pool == "airloop_online_store"
    # Embedded (SQLite, the registry file): one writer, so one task writes every view.
    views = [v.name for v in load_usecase("flights").feature_views]
    assert materialize.op_kwargs_expand_input.value == {"views": [views]}


def test_feature_pipeline_writes_the_online_store_from_as_many_tasks_as_writers(
    monkeypatch,
) -> None:
    """With Redis and the SQL registry, the views are dealt to the writers' tasks, each view
    once; with SQLite, more than one writer is refused by name."""
    from airloop.orchestration.feature_pipeline import build_feature_pipeline
    from airloop.settings import SettingsError, get_settings

    usecase = load_usecase("flights")
    views = [v.name for v in usecase.feature_views]
    monkeypatch.setenv("AIRLOOP_FEAST_ONLINE_STORE", "redis")
    monkeypatch.setenv("AIRLOOP_FEAST_REGISTRY_URL", "postgresql+psycopg2://u@127.0.0.1/r")
    get_settings.cache_clear()
    try:
        for writers, groups in (("2", 2), ("3", 3), ("99", len(views))):
            monkeypatch.setenv("AIRLOOP_ONLINE_STORE_WRITERS", writers)
            get_settings.cache_clear()
            dag = build_feature_pipeline(usecase, "flights")
            dealt = dag.get_task("materialize_online").op_kwargs_expand_input.value["views"]
            assert len(dealt) == groups
            assert sorted(v for group in dealt for v in group) == sorted(views)
        monkeypatch.setenv("AIRLOOP_FEAST_ONLINE_STORE", "sqlite")
        monkeypatch.setenv("AIRLOOP_ONLINE_STORE_WRITERS", "2")
        get_settings.cache_clear()
        with pytest.raises(SettingsError, match="AIRLOOP_ONLINE_STORE_WRITERS"):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_monitoring_feeds_model_training_through_the_retrain_asset(dagbag) -> None:
    monitoring = dagbag.dags["monitoring"]
    training = dagbag.dags["model_training"]
    # The check emits the request through an alias: only an interval that opens one emits.
    check = monitoring.get_task("check_interval")
    [alias] = check.outlets
    assert type(alias).__name__ == "AssetAlias" and alias.name == "flights_retrain_requests"
    assert set(monitoring.task_ids) == {"check_interval", "publish_report"}
    assert check.downstream_task_ids == {"publish_report"}
    # model_training runs on its timetable and on the request Asset.
    assert type(training.timetable).__name__ == "AssetOrTimeSchedule"
    assert "airloop://flights/retrain-request" in str(training.timetable.asset_condition)
    assert monitoring.max_active_runs == 1
    # Two training runs of one use case at once (a schedule and a request, or two people):
    # the scheduler starts the second when the first ends, so they never race on the aliases.
    assert training.max_active_runs == 1
    close = training.get_task("close_retrain_request")
    assert close.trigger_rule == "all_done"
    assert close.upstream_task_ids == {"deploy_model"}


def test_a_training_image_moves_the_train_step_and_batch_scoring_into_containers() -> None:
    """AIRLOOP_TRAINING_IMAGE: the same DAGs, with those two tasks run by the Docker provider."""
    probe = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags')!r})\n"
        "train = bag.dags['model_training'].get_task('train_model')\n"
        "score = bag.dags['batch_inference'].get_task('score_interval')\n"
        "print(json.dumps({'errors': list(bag.import_errors), 'train': type(train).__name__,"
        " 'command': train.command, 'image': train.image, 'score': type(score).__name__,"
        " 'heavy': sorted({m.split('.')[0] for m in sys.modules} & set(%r)),"
        " 'up': sorted(train.upstream_task_ids), 'down': sorted(train.downstream_task_ids)}))\n"
    ) % list(HEAVY)
    env = {**os.environ, "AIRLOOP_TRAINING_IMAGE": "airloop:test"}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["errors"] == [] and got["heavy"] == []
    assert got["train"] == got["score"] == "StageInContainer" and got["image"] == "airloop:test"
    assert got["command"][:3] == ["airloop", "stage", "train-model"]
    assert "airloop_lineage(dag_run, triggering_asset_events)" in " ".join(got["command"])
    assert got["up"] == ["build_training_set", "validate_training_set"]
    assert got["down"] == ["evaluate_model", "register_model"]


def test_a_use_case_that_requires_approval_gets_a_human_step_before_promotion(tmp_path) -> None:
    """gates.require_approval: Airflow's HITL task between the gate and the promotion."""
    import yaml

    from airloop.usecase.model import resolve_usecase_path

    spec = yaml.safe_load(resolve_usecase_path("flights").read_text())
    spec["gates"]["require_approval"] = True
    spec["gates"]["approval_timeout"] = "2d"
    path = tmp_path / "flights_approved.yaml"
    path.write_text(yaml.safe_dump(spec))
    probe = (
        "import json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags' / 'model_training.py')!r})\n"
        "step = bag.dags['model_training'].get_task('approve_promotion')\n"
        "print(json.dumps({'errors': list(bag.import_errors), 'kind': type(step).__name__,"
        " 'options': step.options, 'timeout': step.response_timeout.total_seconds(),"
        " 'up': sorted(step.upstream_task_ids), 'down': sorted(step.downstream_task_ids)}))\n"
    )
    env = {**os.environ, "AIRLOOP_USECASE": str(path)}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {
        "errors": [],
        "kind": "HITLOperator",
        "options": ["Approve", "Reject"],
        "timeout": 2 * 86400,
        "up": ["register_model"],
        "down": ["promote_model"],
    }


def test_the_approval_body_and_answer() -> None:
    import jinja2

    from airloop.orchestration.model_training import APPROVAL_BODY, approval_of

    registered = {
        "name": "flight_delay",
        "version": "3",
        "decision": {
            "promote": True,
            "reasons": [],
            "champion_version": "2",
            "challenger": {"roc_auc": 0.71},
            "champion": {"roc_auc": 0.69},
        },
    }

    class TI:
        def xcom_pull(self, task_ids: str) -> dict:
            assert task_ids == "register_model"
            return registered

    body = jinja2.Template(APPROVAL_BODY).render(ti=TI())
    assert "**flight_delay v3**: the gate passed." in body
    assert "| roc_auc | 0.71 | 0.69 |" in body
    assert approval_of(None) is None
    answer = {"chosen_options": ["Reject"], "responded_by_user": {"id": "7", "name": "alice"}}
    assert approval_of(answer).model_dump() == {"approved": False, "by": "alice"}
