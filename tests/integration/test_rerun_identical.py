"""Clear and rerun every task of every DAG for one interval: what it wrote comes out identical.

Each test runs one DAG for one interval through Airflow, takes digests of everything the home
holds (every file of the stores, reports and ledgers; the online store's rows; Feast's
registry; airloop's metadata tables; the MLflow registry and runs; the run's XComs), clears the
run's task instances with ``airflow tasks clear`` and runs that same run again (issue 34 §2),
then takes the digests again. They must be equal, except for fields normalised below, each
with the reason a rerun changes it.

``dag.test()`` on the same logical date is not a rerun of the same run: it deletes the run and
creates one with a new run id (made from the wall clock), under which stages keyed to the
Airflow run (a model version per run) would rightly make new things.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.integration.conftest import (
    clear_and_rerun,
    day,
    load_dag,
    run_interval,
    store_snapshot,
    task_states,
)
from tests.traffic import like_the_reference, write_served

pytestmark = pytest.mark.integration

WINDOW = {"window_start": "2013-01-01", "window_end": "2013-01-09"}
# A small model of the use case's own family: the rerun reuses its MLflow run, never refits.
CONFIG = {"family": "hist_gradient_boosting", "params": {"max_iter": 40}}
FEATURE_DAY, BATCH_DAY, MONITOR_DAY = 8, 8, 29  # 29 January: no other module serves near it
TRAINING_DATE = day(13)  # a logical date no other module's model_training run takes
EXPERIMENT_DATE = day(14)  # nor any experimentation run
TRIAL = {**WINDOW, "n_trials": 1, "search_space": {"learning_rate": [0.1], "max_iter": [60]}}

# Wall-clock stamps of when a record was written, not of the data: a rerun writes them anew.
WRITTEN_AT = {
    "used_at",  # landing: when the interval's run took the landed files
    "validated_at",  # the validation report: when the gate ran
    "decided_at",  # the feedback ledger: when monitoring decided (its interval is the key)
}
# Airflow's and the metadata store's own databases are compared through their rows below;
# task logs are per try (a rerun is a new try with a log of its own).
NOT_FILES = ("airflow/", "logs/")
DATABASE_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal")


def _without_stamps(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_stamps(v) for k, v in value.items() if k not in WRITTEN_AT}
    if isinstance(value, list):
        return [_without_stamps(v) for v in value]
    return value


def _file_digest(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".json":
        data = json.dumps(_without_stamps(json.loads(data)), sort_keys=True).encode()
    elif path.suffix == ".jsonl":
        records = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        data = json.dumps(_without_stamps(records), sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


def file_digests(settings: Any) -> dict[str, str]:
    """Every file of the home and the shared root (stores, staging, landing records, reports,
    ledgers, batch predictions, MLflow's artifacts), but databases (compared by their rows)."""
    found: dict[str, str] = {}
    for root in dict.fromkeys([settings.home, settings.shared]):
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            skipped = rel.startswith(NOT_FILES) or rel.endswith((*DATABASE_SUFFIXES, ".lock"))
            if path.is_file() and not skipped:
                found[f"{root}/{rel}"] = _file_digest(path)
    return found


def feast_registry(settings: Any) -> dict[str, Any]:
    """Feast's registry file, as its objects."""
    from feast.protos.feast.core.Registry_pb2 import Registry
    from google.protobuf.json_format import MessageToDict

    registry = Registry()
    registry.ParseFromString((settings.home / "feast" / "registry.db").read_bytes())
    found = MessageToDict(registry)
    # When the registry and each view were last written, and the id of that write.
    for key in ("lastUpdated", "versionId"):
        found.pop(key, None)
    for kind in ("featureViews", "onDemandFeatureViews", "streamFeatureViews"):
        for view in found.get(kind, []):
            meta = view.get("meta", {})
            meta.pop("lastUpdatedTimestamp", None)
            # Feast appends every materialisation to the view's list, a rerun's too (the same
            # window again): what the list covers is compared, not how often.
            intervals = meta.pop("materializationIntervals", [])
            meta["materialized"] = sorted({json.dumps(i, sort_keys=True) for i in intervals})
    return found


def metadata_tables(settings: Any, run_id: str) -> dict[str, Any]:
    """airloop's own tables: interval records, champion decisions, task tries of other runs."""
    from airloop.metadata.store import MetadataStore

    store = MetadataStore(settings)
    return {
        # recorded_at: when the interval's record was written (the rerun rewrites it).
        "intervals": [
            {k: v for k, v in row.items() if k != "recorded_at"}
            for row in store.intervals(settings.usecase)
        ],
        "model_events": store.model_events(),
        # This run's tries are checked on their own (a rerun adds a try to each task).
        "other_task_runs": sorted(
            json.dumps(row, sort_keys=True, default=str)
            for row in store.task_runs()
            if row["run_id"] != run_id
        ),
    }


def mlflow_state(settings: Any) -> dict[str, Any]:
    """Every registered model (versions, tags, aliases) and every run (status, tags, params,
    latest metrics); the artifacts are files of the home, digested with the others."""
    from airloop.registry.tracking import configure

    client = configure(settings)
    models = {}
    for model in client.search_registered_models():
        models[model.name] = {
            "aliases": dict(model.aliases),
            "tags": dict(model.tags),
            "versions": {
                mv.version: {
                    "run_id": mv.run_id,
                    "source": mv.source,
                    "status": mv.status,
                    "tags": dict(mv.tags),
                    "aliases": sorted(mv.aliases),
                }
                for mv in client.search_model_versions(f"name = '{model.name}'")
            },
        }
    runs = {}
    experiments = [e.experiment_id for e in client.search_experiments()]
    for run in client.search_runs(experiments, max_results=50_000):
        # Metrics as their latest values: monitoring logs an interval's figures again on a
        # rerun (same step, same values), which lengthens their history, not what they are.
        runs[run.info.run_id] = {
            "status": run.info.status,
            "tags": dict(run.data.tags),
            "params": dict(run.data.params),
            "metrics": dict(run.data.metrics),
        }
    return {"models": models, "runs": runs}


def xcoms(dag_run: Any) -> dict[str, Any]:
    """What each task of the run returned (wall-clock stamps left out, as in the files)."""
    found = {
        f"{ti.task_id}[{ti.map_index}]": _without_stamps(
            ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
        )
        for ti in dag_run.get_task_instances()
    }
    registered = found.get("register_model[-1]")
    if isinstance(registered, dict):
        # Whether this try created the version: the rerun finds the one the first try made
        # (the registry's versions, in the MLflow state, show that nothing new was registered).
        registered.pop("created")
    return found


def asset_events() -> dict[str, int]:
    """Asset events Airflow holds, counted by asset."""
    from airflow.utils.session import create_session
    from sqlalchemy import text

    with create_session() as session:
        rows = session.execute(
            text(
                "SELECT a.uri, count(*) FROM asset_event e JOIN asset a ON a.id = e.asset_id"
                " GROUP BY a.uri"
            )
        ).fetchall()
    return {str(uri): int(n) for uri, n in rows}


def state(settings: Any, usecase: Any, dag_run: Any) -> dict[str, Any]:
    """Digests of everything the home holds after the run."""
    return {
        "files": file_digests(settings),
        "stores": store_snapshot(settings, usecase),
        "feast_registry": feast_registry(settings),
        "metadata": metadata_tables(settings, dag_run.run_id),
        "mlflow": mlflow_state(settings),
        "xcom": xcoms(dag_run),
        "tasks": task_states(dag_run),
    }


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    """Where two states differ, as paths: a failure names what changed, not two whole dumps."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after), key=str):
            where = f"{path}/{key}"
            if key not in after:
                found.append(f"{where}: gone")
            elif key not in before:
                found.append(f"{where}: new")
            else:
                found += differences(before[key], after[key], where)
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            d
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for d in differences(b, a, f"{path}[{i}]")
        ]
    return [] if before == after else [f"{path}: {str(before)[:200]} -> {str(after)[:200]}"]


class Rerun(NamedTuple):
    """The cleared run after its rerun, and Airflow's asset events before and after it."""

    run: Any
    events_before: dict[str, int]
    events_after: dict[str, int]

    def returned(self, task_id: str) -> Any:
        return self.run.get_task_instance(task_id).xcom_pull(task_ids=task_id)


def rerun_and_compare(dag: Any, first: Any, settings: Any, usecase: Any) -> Rerun:
    """Clear the run and run it again: every task a new try of the same run, which succeeds,
    and every digest equal."""
    from airloop.metadata.store import MetadataStore

    assert str(first.state) == "success", task_states(first)
    tries = {(ti.task_id, ti.map_index): ti.try_number for ti in first.get_task_instances()}
    recorded = MetadataStore(settings).task_runs(dag.dag_id, first.run_id)
    events = asset_events()
    before = state(settings, usecase, first)

    again = clear_and_rerun(dag, first)

    assert again.run_id == first.run_id and str(again.state) == "success", task_states(again)
    assert {(ti.task_id, ti.map_index): ti.try_number for ti in again.get_task_instances()} == {
        key: n + 1 for key, n in tries.items()
    }, "every task ran again, as a new try"
    changed = differences(before, state(settings, usecase, again))
    assert not changed, "the rerun changed:\n" + "\n".join(changed)
    # airloop's record of task tries (the listener's) keeps each one: the first tries as they
    # were, and one new successful try per task.
    rows = MetadataStore(settings).task_runs(dag.dag_id, first.run_id)

    def tried(row: dict[str, Any], extra: int) -> bool:
        return bool(row["try_number"] == tries[(row["task_id"], row["map_index"])] + extra)

    assert [r for r in rows if tried(r, 0)] == [r for r in recorded if tried(r, 0)]
    assert sorted((r["task_id"], r["map_index"], r["state"]) for r in rows if tried(r, 1)) == (
        sorted((task, index, "success") for task, index in tries)
    )
    return Rerun(again, events, asset_events())


def test_feature_pipeline_rerun_is_identical(features, flights) -> None:
    dag = load_dag("feature_pipeline")
    rerun = rerun_and_compare(dag, run_interval(dag, FEATURE_DAY), features, flights)
    assert rerun.events_after == rerun.events_before


@pytest.fixture(scope="module")
def training(features, flights) -> Iterator[Any]:
    """One model_training run of this module's own, with no champion before it (so the gate
    holds it to the use case's floors alone, which it clears: it becomes champion, which the
    batch and monitoring runs here use); the aliases other modules left are put back after."""
    from airloop.registry.models import CHALLENGER, CHAMPION, PREVIOUS, alias_version
    from airloop.registry.tracking import configure

    client = configure(features)
    name = flights.training.model_name
    kept = {a: alias_version(features, name, a) for a in (CHAMPION, CHALLENGER, PREVIOUS)}
    if kept[CHAMPION] is not None:
        client.delete_registered_model_alias(name, CHAMPION)
    try:
        run = load_dag("model_training").test(
            logical_date=TRAINING_DATE, run_conf={**WINDOW, "config": CONFIG}
        )
        assert str(run.state) == "success", task_states(run)
        assert run.get_task_instance("promote_model").xcom_pull(task_ids="promote_model")[
            "promoted"
        ]
        yield run
    finally:
        for alias, version in kept.items():
            if version is not None:
                client.set_registered_model_alias(name, alias, version)
            elif alias_version(features, name, alias) is not None:
                client.delete_registered_model_alias(name, alias)


def test_model_training_rerun_registers_nothing_new(training, features, flights) -> None:
    """The rerun trains nothing (it finds the run's MLflow run), registers nothing (it finds
    the run's version), and evaluates against the champion the first try was held to (none),
    not against its own version, champion since its promotion."""
    first = {
        task: training.get_task_instance(task).xcom_pull(task_ids=task)
        for task in ("register_model", "evaluate_model")
    }
    rerun = rerun_and_compare(load_dag("model_training"), training, features, flights)
    assert rerun.events_after == rerun.events_before
    assert first["register_model"]["created"] is True
    assert rerun.returned("register_model")["created"] is False
    assert rerun.returned("register_model")["version"] == first["register_model"]["version"]
    assert first["evaluate_model"]["champion_version"] is None
    assert rerun.returned("evaluate_model")["champion_version"] is None


def test_batch_inference_rerun_is_identical(training, features, flights) -> None:
    from airloop.registry.models import require_champion

    dag = load_dag("batch_inference")
    rerun = rerun_and_compare(dag, run_interval(dag, BATCH_DAY), features, flights)
    scored = rerun.returned("score_interval")
    assert scored["rows"] > 500 and scored["model_version"] == require_champion(features, flights)
    # Airflow records an event for each success of a task with an outlet, a rerun's too: the
    # file was written again (with the same bytes, above). Nothing else is emitted.
    uri = f"airloop://{flights.name}/batch-predictions"
    assert rerun.events_after == {**rerun.events_before, uri: rerun.events_before.get(uri, 0) + 1}


def test_monitoring_rerun_is_identical(training, features, flights) -> None:
    """A checked interval (a week of served predictions, enough for a verdict) that opens no
    retrain request, rerun after the next one: the decision, the ledger, the report, its
    MLflow run and the latest figures the serving API publishes come out the same."""
    from airloop.registry.models import require_champion

    version = require_champion(features, flights)  # the training run's, in this module
    for d in (MONITOR_DAY, MONITOR_DAY + 1):  # the second interval's week holds more rows
        write_served(
            features, flights, like_the_reference(features, flights, version, d, seed=d), version
        )
    dag = load_dag("monitoring")
    first = run_interval(dag, MONITOR_DAY)
    # The next interval has been monitored since: its figures are the latest, and stay so.
    assert str(run_interval(dag, MONITOR_DAY + 1).state) == "success"
    rerun = rerun_and_compare(dag, first, features, flights)
    checked = rerun.returned("check_interval")
    assert checked["drift"]["status"] == "checked", checked["drift"]
    assert checked["decision"]["action"] == "no breach", checked["decision"]
    assert rerun.events_after == rerun.events_before, "no retrain request, nor any other event"


@pytest.fixture
def experiment(features) -> Iterator[Any]:
    """One experimentation run of one trial; its proposal withdrawn after (model_training
    runs without a config take the latest proposal: other modules' must not take this one)."""
    from airloop.registry.tracking import configure

    run = load_dag("experimentation").test(logical_date=EXPERIMENT_DATE, run_conf=TRIAL)
    try:
        yield run
    finally:
        parent = run.get_task_instance("select_best").xcom_pull(task_ids="select_best")
        if parent:
            configure(features).set_tag(parent["parent_run_id"], "airloop.proposal", "false")


def test_experimentation_rerun_is_identical(experiment, features, flights) -> None:
    """The rerun finds the parent run and the trial's run its first tries made: no new run,
    the same comparison and the same proposal."""
    rerun = rerun_and_compare(load_dag("experimentation"), experiment, features, flights)
    assert rerun.events_after == rerun.events_before
    assert rerun.returned("select_best")["config"]["params"]["max_iter"] == 60
