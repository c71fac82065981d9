"""The life of a model as the demo drives it, without a scheduler: which runs it asks Airflow
for, in which order, what it waits for, what it writes on the timeline, and what it says when a
run fails.

Airflow is an in-memory table of runs behind the real :class:`ApiClient`'s methods (each run
finishes in the state the test gives its DAG); what a DAG's tasks would leave behind is written
with the stores' own code: the monitoring decision and the retrain request in the feedback
ledger, the gate's decision in the model history. A run's failure is read from Airflow 3.3's
recorded answers (tests/unit/recorded/)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airloop.core.periods import Interval
from airloop.demo import lifecycle as life_module
from airloop.demo.lifecycle import Lifecycle, LifecycleError, Timeline
from airloop.metadata.ledger import FeedbackLedger
from airloop.metadata.store import MetadataStore
from airloop.quality.gate import quarantine_folder
from airloop.runtime.airflow_cli import ONLINE_STORE_POOL
from airloop.runtime.api import ApiClient
from airloop.runtime.services import Services
from airloop.settings import Settings
from airloop.usecase import UseCase

RECORDED = Path(__file__).parent / "recorded"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / f"{name}.json").read_text())


def day(d: int, month: int = 1) -> Interval:
    start = datetime(2013, month, d, tzinfo=UTC)
    return start, start + timedelta(days=1)


class Airflow(ApiClient):
    """Runs kept in memory. ``ends`` gives a DAG's runs their final state (success unless
    said); ``does`` what a DAG's run leaves behind, called when it is triggered. Every call the
    lifecycle makes is kept in ``calls``, in order. Anything not stood in for here goes to port
    9, where nothing listens."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.model_copy(update={"airflow_port": 9}))
        self._token = "t"
        self.runs: dict[str, dict[str, Any]] = {}
        self.ends: dict[str, str] = {}
        self.does: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.slots = 4
        self.failed: dict[str, list[dict[str, Any]]] = {}  # run id → its failed tasks

    def add_run(self, dag_id: str, run_type: str, interval: Interval | None = None) -> str:
        run_id = f"{run_type}__{len(self.runs) + 1}"
        self.runs[run_id] = {
            "dag_id": dag_id,
            "dag_run_id": run_id,
            "run_type": run_type,
            "state": "queued",
            "data_interval_start": interval[0].isoformat() if interval else None,
            "data_interval_end": interval[1].isoformat() if interval else None,
        }
        return run_id

    def trigger(
        self,
        dag_id: str,
        conf: dict[str, Any] | None = None,
        interval: tuple[datetime, datetime] | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        self.calls.append(("trigger", dag_id, interval[0].date() if interval else conf, note))
        run = self.runs[self.add_run(dag_id, "manual", interval)]
        if dag_id in self.does:
            self.does[dag_id](run)
        return dict(run)

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        self.calls.append(("ask", dag_id, run_id))
        return {**self.runs[run_id], "state": self.ends.get(dag_id, "success")}

    def dag_runs(self, dag_id: str, **filters: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.runs.values() if r["dag_id"] == dag_id]

    def wait_for_tasks(
        self,
        dag_id: str,
        run_id: str,
        on_tick: Callable[[], None] | None = None,
        timeout: float = 900.0,
    ) -> bool:
        self.calls.append(("tasks", dag_id, run_id))
        return self.ends.get(dag_id, "success") == "success"

    def pool_slots(self, pool: str) -> int:
        return self.slots

    def set_pool_slots(self, pool: str, slots: int) -> None:
        self.calls.append(("pool", pool, slots))

    def failed_tasks(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.failed.get(run_id, [])

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> dict[str, Any]:
        log: dict[str, Any] = recorded("airflow_log_validation_failed")
        return log


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


@pytest.fixture
def airflow(settings: Settings) -> Airflow:
    return Airflow(settings)


@pytest.fixture
def said() -> list[str]:
    return []


@pytest.fixture
def life(settings: Settings, flights: UseCase, airflow: Airflow, said: list[str]) -> Lifecycle:
    services = Services(settings, components=[])  # nothing started: nothing to check
    return Lifecycle(settings, flights, airflow, services, echo=said.append)


def monitoring_decides(
    life: Lifecycle, airflow: Airflow, decisions: dict[datetime, dict[str, Any]]
) -> None:
    """The monitoring DAG: records its decision for the interval; a retrain request opens an
    asset-triggered model_training run, which closes the request with ``outcome``."""

    def run(run: dict[str, Any]) -> None:
        start = datetime.fromisoformat(run["data_interval_start"])
        decision = {
            "interval_start": start.isoformat(),
            "decided_at": datetime.now(UTC).isoformat(),
            "breach": False,
            "action": "none",
            **decisions[start],
        }
        outcome = decision.pop("outcome", None)
        life.ledger.record(decision)
        if decision["action"] == "requested":
            request_id = decision["request_id"]
            life.ledger.open_request(
                {"request_id": request_id, "interval_end": run["data_interval_end"]}
            )
            airflow.add_run("model_training", "asset_triggered")
            life.ledger.close_request(request_id, outcome)

    airflow.does["monitoring"] = run


def gate_decides(settings: Settings, flights: UseCase, airflow: Airflow, kind: str) -> None:
    """model_training's gate: its decision kept in the model history, under its run."""

    def run(run: dict[str, Any]) -> None:
        MetadataStore(settings).record_model_event(
            {
                "usecase": flights.name,
                "model": flights.training.model_name,
                "kind": kind,
                "version": "3",
                "champion_before": "2",
                "champion_after": "3" if kind == "promoted" else "2",
                "effective_at": datetime.now(UTC),
                "actor": "model_training",
                "reason": "scheduled",
                "dag_id": "model_training",
                "run_id": run["dag_run_id"],
                "evidence": {},
            }
        )

    airflow.does["model_training"] = run


# A wait that no longer ends polls for half an hour: fail the test instead (not a timing check).
WAITS = pytest.mark.timeout(20)


def kinds(timeline: Timeline) -> list[tuple[str | None, str, str]]:
    return [(e["day"], e["kind"], e["detail"]) for e in timeline.events]


# -- the timeline -----------------------------------------------------------------------------
def test_the_timeline_keeps_events_in_the_order_they_happened(tmp_path: Path) -> None:
    timeline = Timeline()
    timeline.add(day(22)[0].date(), "drift", "share_drifted: requested", detail_text="5 of 9")
    timeline.add(day(22)[0].date(), "retrain", "request r1 opened")
    timeline.add(None, "failed", "no day")
    saved = json.loads(timeline.save(tmp_path / "timeline.json").read_text())
    assert [(e["day"], e["kind"]) for e in saved] == [
        ("2013-01-22", "drift"),
        ("2013-01-22", "retrain"),
        (None, "failed"),
    ]
    assert saved[0]["detail_text"] == "5 of 9"
    assert all(datetime.fromisoformat(e["at"]).tzinfo is not None for e in saved)


# -- bootstrap --------------------------------------------------------------------------------
@pytest.fixture
def champion(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The registry's answer after model_training (a plain record, not an MLflow store)."""
    found: dict[str, Any] = {"version": "1", "metrics": {"test_roc_auc": 0.71}}
    monkeypatch.setattr(life_module, "describe_champion", lambda settings, usecase: found or None)
    yield found


def test_bootstrap_runs_features_then_an_experiment_then_a_first_champion(
    life: Lifecycle, airflow: Airflow, champion: dict[str, Any]
) -> None:
    life.bootstrap([day(1), day(2), day(3)], trials=2)
    triggered = [c[1:] for c in airflow.calls if c[0] == "trigger"]
    window = {"window_start": "2013-01-01", "window_end": "2013-01-04"}
    assert triggered == [
        ("feature_pipeline", day(1)[0].date(), "airloop demo: bootstrap"),
        ("feature_pipeline", day(2)[0].date(), "airloop demo: bootstrap"),
        ("feature_pipeline", day(3)[0].date(), "airloop demo: bootstrap"),
        ("experimentation", {**window, "n_trials": 2}, None),
        ("model_training", window, "airloop demo: first champion"),
    ]
    assert kinds(life.timeline) == [
        ("2013-01-01", "ingest", "3 intervals through the feature pipeline"),
        ("2013-01-04", "experiment", "2 trials"),
        ("2013-01-04", "champion", "v1 promoted and serving"),
    ]
    assert life.timeline.events[-1]["metrics"] == {"test_roc_auc": 0.71}


def test_bootstrap_without_trials_makes_no_experiment(
    life: Lifecycle, airflow: Airflow, champion: dict[str, Any]
) -> None:
    life.bootstrap([day(1)], trials=0)
    assert "experimentation" not in [c[1] for c in airflow.calls if c[0] == "trigger"]
    assert [e["kind"] for e in life.timeline.events] == ["ingest", "champion"]


def test_a_bootstrap_that_ends_without_a_champion_stops_the_replay(
    life: Lifecycle, champion: dict[str, Any]
) -> None:
    champion.clear()
    with pytest.raises(LifecycleError, match="finished without a champion"):
        life.bootstrap([day(1)], trials=0)
    assert [e["kind"] for e in life.timeline.events] == ["ingest"]


# -- monitored intervals ----------------------------------------------------------------------
def test_a_monitored_stretch_overlaps_features_and_reports_and_follows_a_retrain_request(
    life: Lifecycle, airflow: Airflow, said: list[str]
) -> None:
    monitoring_decides(
        life,
        airflow,
        {
            day(22)[0]: {"action": "none"},
            day(23)[0]: {
                "breach": True,
                "reasons": [{"check": "share_drifted"}, {"check": "prediction_psi"}],
                "action": "requested",
                "detail": "5 of 9 features drifted",
                "request_id": "r-23",
                "outcome": {"result": "promoted", "version": "2"},
            },
        },
    )
    life.monitored_intervals([day(22), day(23)])
    assert [(*c[:2], str(c[2])) for c in airflow.calls] == [
        ("trigger", "feature_pipeline", "2013-01-22"),
        ("tasks", "feature_pipeline", "manual__1"),
        # The 22nd is served with the online store's pool closed; the 23rd's features are
        # queued meanwhile (their materialisation waits for the pool).
        ("pool", ONLINE_STORE_POOL, "0"),
        ("trigger", "feature_pipeline", "2013-01-23"),
        ("pool", ONLINE_STORE_POOL, "4"),
        ("trigger", "monitoring", "2013-01-22"),
        ("tasks", "feature_pipeline", "manual__2"),
        ("pool", ONLINE_STORE_POOL, "0"),
        ("pool", ONLINE_STORE_POOL, "4"),
        # One monitoring run at a time: the 22nd's report is waited for before the 23rd's.
        ("ask", "monitoring", "manual__3"),
        ("trigger", "monitoring", "2013-01-23"),
        # The retraining the 23rd's request opened, followed to its end...
        ("ask", "model_training", "asset_triggered__5"),
        # ...and the last report, before the stretch ends.
        ("ask", "monitoring", "manual__4"),
    ]
    assert kinds(life.timeline) == [
        ("2013-01-23", "drift", "share_drifted, prediction_psi: requested"),
        ("2013-01-23", "retrain", "request r-23 opened"),
        ("2013-01-23", "promoted", "v2: promoted"),
    ]
    assert life.timeline.events[0]["detail_text"] == "5 of 9 features drifted"
    assert life.timeline.events[2]["run_id"] == "asset_triggered__5"
    assert said[0].startswith("  2013-01-22  served     0 (v-)  drifting  -  pred PSI  -")
    assert said[0].endswith("  none")
    assert said[1].endswith("requested (5 of 9 features drifted)  → retraining")
    assert said[2] == "             model_training (asset_triggered__5): v2 promoted"
    assert set(life.stores) == {"start", "end"}
    assert life.stores["start"]["interval"] == "2013-01-22T00:00:00+00:00"
    assert life.stores["end"]["interval"] == "2013-01-23T00:00:00+00:00"


def test_a_retraining_the_gate_refused_is_on_the_timeline_as_a_gate_decision(
    life: Lifecycle, airflow: Airflow
) -> None:
    monitoring_decides(
        life,
        airflow,
        {
            day(22)[0]: {
                "breach": True,
                "reasons": [{"check": "live_roc_auc"}],
                "action": "requested",
                "request_id": "r-22",
                "outcome": {"result": "rejected", "version": "2"},
            }
        },
    )
    life.monitored_interval(day(22))
    assert kinds(life.timeline)[1:] == [
        ("2013-01-22", "retrain", "request r-22 opened"),
        ("2013-01-22", "gate", "v2: rejected"),
    ]


def test_a_breach_without_a_request_is_drift_alone(life: Lifecycle, airflow: Airflow) -> None:
    monitoring_decides(
        life,
        airflow,
        {
            day(22)[0]: {
                "breach": True,
                "reasons": [{"check": "share_drifted"}],
                "action": "cooldown",
            }
        },
    )
    life.monitored_interval(day(22))
    assert kinds(life.timeline) == [("2013-01-22", "drift", "share_drifted: cooldown")]
    assert "model_training" not in [c[1] for c in airflow.calls if c[0] == "trigger"]


def test_the_online_stores_pool_is_opened_again_when_serving_fails(
    life: Lifecycle, airflow: Airflow
) -> None:
    airflow.slots = 3
    with pytest.raises(RuntimeError, match="the service answered 503"), life.holding_online_store():
        raise RuntimeError("the service answered 503")
    assert airflow.calls == [("pool", ONLINE_STORE_POOL, 0), ("pool", ONLINE_STORE_POOL, 3)]


# -- model_training's timetable ---------------------------------------------------------------
def test_no_scheduled_training_where_none_of_its_intervals_ends(
    life: Lifecycle, airflow: Airflow
) -> None:
    life.scheduled_training(day(22))  # flights trains on the 1st and the 15th
    assert airflow.calls == [] and life.timeline.events == []


def test_a_scheduled_training_is_made_for_the_interval_that_ends_and_its_decision_kept(
    life: Lifecycle, airflow: Airflow, settings: Settings, flights: UseCase, said: list[str]
) -> None:
    gate_decides(settings, flights, airflow, "promoted")
    life.scheduled_training(day(31))
    assert [c for c in airflow.calls if c[0] == "trigger"] == [
        ("trigger", "model_training", day(15)[0].date(), life_module.SCHEDULED)
    ]
    assert kinds(life.timeline) == [
        (
            "2013-01-31",
            "promoted",
            "v3: promoted (scheduled training on the interval to 2013-02-01)",
        )
    ]
    assert life.timeline.events[0]["trigger"] == "schedule"
    assert said == ["             model_training (manual__1, on its timetable): v3: promoted"]


def test_a_scheduled_training_that_failed_before_its_gate_is_said_so(
    life: Lifecycle, airflow: Airflow
) -> None:
    airflow.ends["model_training"] = "failed"
    life.scheduled_training(day(31))  # not raised: the champion stays, the replay goes on
    assert kinds(life.timeline) == [
        (
            "2013-01-31",
            "failed",
            "failed before a decision (scheduled training on the interval to 2013-02-01)",
        )
    ]
    assert life.timeline.events[0]["version"] is None


# -- failures ---------------------------------------------------------------------------------
def test_a_failed_feature_run_says_the_tasks_error_the_report_and_the_commands(
    life: Lifecycle, airflow: Airflow, settings: Settings
) -> None:
    airflow.ends["feature_pipeline"] = "failed"
    airflow.failed["manual__1"] = recorded("airflow_task_instances_validation_failed")[
        "task_instances"
    ]
    report = quarantine_folder(settings, "flights", day(2)[0]) / "report.json"
    report.parent.mkdir(parents=True)
    report.write_text("{}")
    with pytest.raises(LifecycleError) as failed:
        life.features([day(2)])
    message = str(failed.value)
    assert message.startswith(
        "feature_pipeline run manual__1 (interval 2013-01-02 00:00 .. 2013-01-03 00:00 UTC)"
        " failed\n  validate_partition (try 1) failed with ValidationFailed: partition"
        " 2013-01-02 of use case 'flights' failed validation"
    )
    assert f"quarantine report: {report}" in message
    assert message.endswith(
        "next: fix the data (the report names each failed check);"
        " then land it again: `airloop land --start 2013-01-02 --intervals 1`;"
        " then run the interval again: `airloop backfill --start 2013-01-02 --intervals 1`"
        " (with `airloop up`)"
    )
    assert life.timeline.events == []  # nothing ingested


def test_a_failed_run_of_another_dag_gets_no_feature_commands(
    life: Lifecycle, airflow: Airflow
) -> None:
    """Rerunning or landing an interval is the feature pipeline's remedy: a failed monitoring
    run of the same interval is not told to land its data again."""
    airflow.ends["monitoring"] = "failed"
    run_id = airflow.add_run("monitoring", "manual", day(22))
    assert life.why("monitoring", airflow.dag_run("monitoring", run_id)) == (
        f"monitoring run {run_id} (interval 2013-01-22 00:00 .. 2013-01-23 00:00 UTC) failed\n"
        "  no task failed: the run itself was marked failed (see Airflow's log)"
    )
    airflow.ends["experimentation"] = "failed"
    with pytest.raises(LifecycleError) as failed:
        life.run("experimentation", {"n_trials": 2})
    assert str(failed.value) == (
        "experimentation run manual__2 failed\n"
        "  no task failed: the run itself was marked failed (see Airflow's log)"
    )


@WAITS
def test_a_decision_from_an_earlier_run_is_not_taken_and_a_failed_run_stops_the_wait(
    life: Lifecycle, airflow: Airflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interval was monitored before (a rerun): its old decision is in the ledger. The new
    run fails before deciding: the wait ends with the run's failure, not the old decision."""
    monkeypatch.setattr(life_module, "RUN_CHECK_SECONDS", 0.0)  # ask the run at once
    start = day(22)[0]
    life.ledger.record(
        {"interval_start": start.isoformat(), "decided_at": "2013-01-23T00:00:00+00:00"}
    )
    airflow.ends["monitoring"] = "failed"
    run_id = airflow.add_run("monitoring", "manual", day(22))
    with pytest.raises(LifecycleError, match=f"^monitoring run {run_id} "):
        life._wait_for_decision(run_id, start, since=datetime.now(UTC))


@WAITS
def test_a_monitoring_run_that_succeeded_without_a_decision_stops_the_replay(
    life: Lifecycle, airflow: Airflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(life_module, "RUN_CHECK_SECONDS", 0.0)
    run_id = airflow.add_run("monitoring", "manual", day(22))
    with pytest.raises(LifecycleError, match=f"monitoring run {run_id} recorded no decision"):
        life._wait_for_decision(run_id, day(22)[0], since=datetime.now(UTC))


@WAITS
def test_the_decision_is_read_from_the_ledger_by_the_intervals_start(
    life: Lifecycle, settings: Settings, flights: UseCase
) -> None:
    ledger = FeedbackLedger(settings.monitoring_root(flights.name))
    since = datetime.now(UTC)
    for d in (21, 22, 23):
        ledger.record(
            {
                "interval_start": day(d)[0].isoformat(),
                "decided_at": datetime.now(UTC).isoformat(),
                "action": f"action of the {d}th",
            }
        )
    decision = life._wait_for_decision("unused", day(22)[0], since)
    assert decision["action"] == "action of the 22th"
