"""Monitoring against a real champion, its real training reference, real labels and real Airflow runs.

Served traffic is written through the service's own prediction log writer from the champion's
training rows (what a point-in-time-correct service would have served); the drifted scenario
shifts every numeric input by five standard deviations.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.integration.conftest import day, load_dag
from tests.traffic import drifted, like_the_reference, write_served

pytestmark = pytest.mark.integration


def reference_rows(settings: Any, usecase: Any, version: str, d: int) -> pd.DataFrame:
    from airloop.core.columns import EVENT_TS
    from airloop.monitoring.readers import load_reference

    reference = load_reference(settings, usecase, version)
    stamps = pd.to_datetime(reference[EVENT_TS], utc=True)
    return reference[(stamps >= day(d)) & (stamps < day(d + 1))].copy()


@pytest.fixture(scope="module")
def monitor_dag(champion):
    return load_dag("monitoring")


def test_training_logs_the_reference_monitoring_compares_with(champion, features, flights):
    from airloop.core.columns import SCORE as SCORE_COLUMN
    from airloop.monitoring.readers import load_reference

    reference = load_reference(features, flights, champion["version"])
    assert len(reference) > 1000
    assert reference[SCORE_COLUMN].between(0, 1).all()
    assert {"carrier", "origin", "distance", "origin_weather__temp"} <= set(reference.columns)


def test_no_drift_over_several_intervals_opens_no_request(champion, features, flights):
    from airloop.metadata.ledger import FeedbackLedger
    from airloop.monitoring.checks import check_drift, check_performance
    from airloop.monitoring.feedback import decide_retraining

    for d in (2, 3, 4):
        rows = like_the_reference(features, flights, champion["version"], d, seed=d)
        write_served(features, flights, rows, champion["version"])
    decisions = []
    for d in (2, 3, 4):
        drift = check_drift(day(d), day(d + 1), flights, features)
        perf = check_performance(day(d), day(d + 1), flights, features)
        assert drift.status == "checked", drift
        assert not drift.dataset_drift, drift.drifted_features
        assert drift.prediction is not None and not drift.prediction.drifted
        decisions.append(decide_retraining(day(d), day(d + 1), drift, perf, flights, features))
    assert [d.action for d in decisions] == ["no breach"] * 3
    assert FeedbackLedger(features.monitoring_root(flights.name)).requests() == []


def test_live_performance_joins_only_labels_that_have_arrived(champion, features, flights):
    from airloop.core.columns import AVAILABLE_AT
    from airloop.monitoring.checks import check_performance

    write_served(
        features,
        flights,
        reference_rows(features, flights, champion["version"], 5),
        champion["version"],
    )
    # Interval 5 January: predictions of [2 Jan 18:00, 5 Jan 18:00) are due by 6 Jan 00:00 ...
    result = check_performance(day(5), day(6), flights, features)
    assert result.status == "checked", result
    assert result.labelled >= 500
    assert result.labelled_uri is not None
    joined = pd.read_parquet(result.labelled_uri)
    assert (pd.to_datetime(joined[AVAILABLE_AT], utc=True) < day(6)).all()
    assert (joined["event_time"] < day(6) - flights.label.delay).all()
    # ... and the champion was trained on these days, so live AUC is far from chance.
    assert result.live is not None and result.expected is not None
    assert (result.live["roc_auc"] or 0) > 0.55
    assert result.expected["roc_auc"] > 0
    # Cut the interval at noon: flights after 06:00 have no label yet and are not used.
    noon = day(5) + timedelta(hours=12)
    early = check_performance(day(5), noon, flights, features)
    assert early.labelled_uri is not None
    early_rows = pd.read_parquet(early.labelled_uri)
    assert (pd.to_datetime(early_rows[AVAILABLE_AT], utc=True) < noon).all()
    assert early_rows["event_time"].max() < day(5) + timedelta(hours=6)
    assert early.labelled < result.labelled


def _retrain_events(settings: Any) -> list[dict[str, Any]]:
    from airflow.settings import Session
    from sqlalchemy import text

    with Session() as session:
        rows = session.execute(
            text(
                "SELECT e.extra, e.source_dag_id FROM asset_event e JOIN asset a ON a.id = e.asset_id"
                " WHERE a.uri = 'airloop://flights/retrain-request' ORDER BY e.id"
            )
        ).fetchall()
    return [
        {"extra": json.loads(r[0]) if isinstance(r[0], str) else r[0], "dag": r[1]} for r in rows
    ]


REQUEST = "retrain-20130109T0000"  # opened by the interval of 9 January (hysteresis 2)


@pytest.fixture(scope="module")
def drift_requested(champion, features, flights, monitor_dag) -> dict[str, Any]:
    """Drifted traffic on 8-10 January, monitored through Airflow: what the runs left (the
    ledger's decisions, the request events they emitted, 9 January's report and figures),
    read before any test reruns an interval."""
    from airloop.metadata.ledger import FeedbackLedger

    for d in (8, 9, 10):
        rows = drifted(
            like_the_reference(features, flights, champion["version"], d, seed=d), flights
        )
        write_served(features, flights, rows, champion["version"])
    before = len(_retrain_events(features))
    states = []
    for d in (8, 9, 10):
        run = monitor_dag.test(logical_date=day(d + 1))
        assert run.data_interval_start == day(d)
        states.append({ti.task_id: str(ti.state) for ti in run.get_task_instances()})
    root = features.monitoring_root(flights.name)
    ledger = FeedbackLedger(root)
    # By interval: other modules monitor later intervals too (the ledger's last need not be ours).
    last = ledger.decision_for(day(10)) or {}
    return {
        "states": states,
        "actions": {d["interval_start"][:10]: d["action"] for d in ledger.decisions()},
        "last_detail": last.get("detail"),
        "events": _retrain_events(features)[before:],
        "report": (root / "intervals" / "2013-01-09" / "report.html").read_text(),
        "prom": (root / "intervals" / "2013-01-09" / "metrics.prom").read_text(),
    }


def test_injected_drift_opens_exactly_one_request_with_its_reason(
    champion, features, flights, drift_requested
):
    from airloop.metadata.ledger import FeedbackLedger

    for states in drift_requested["states"]:
        assert states["publish_report"].endswith("success"), states
    root = features.monitoring_root(flights.name)
    ledger = FeedbackLedger(root)
    actions = drift_requested["actions"]
    # Hysteresis 2: the first breach waits, the second requests, the third finds it still open.
    assert actions["2013-01-08"] == "waiting"
    assert actions["2013-01-09"] == "requested"
    assert actions["2013-01-10"] == "suppressed"
    assert "still open" in drift_requested["last_detail"]

    events = drift_requested["events"]
    assert len(events) == 1
    extra = events[0]["extra"]
    assert events[0]["dag"] == "monitoring"
    assert extra["request_id"] == REQUEST
    assert extra["interval_end"].startswith("2013-01-10")
    reason = next(r for r in extra["reasons"] if r["check"] == "data_drift")
    drifting = {f["feature"] for f in reason["features"]}
    assert {"distance", "origin_weather__temp"} <= drifting
    assert all(f["score"] >= f["threshold"] for f in reason["features"])
    assert "carrier" not in drifting  # categorical inputs were not shifted

    page = drift_requested["report"]
    assert "Decision: requested" in page and "data drift" in page and "<svg" in page
    assert "<th>target</th>" in page  # the use case's live_target beside the live metric
    prom = drift_requested["prom"]
    assert 'airloop_drift_score{usecase="flights",feature="distance"' in prom

    import mlflow

    from airloop.registry.tracking import configure

    configure(features)
    runs = mlflow.search_runs(
        experiment_names=["flights/monitoring"],
        filter_string=f"tags.`airloop.retrain_request` = '{REQUEST}'",
        output_format="list",
    )
    assert len(runs) == 1
    assert runs[0].data.tags["airloop.model_version"] == champion["version"]
    assert runs[0].data.metrics["drift.distance"] >= 0.25

    closed = ledger.close_request(REQUEST, {"result": "promoted"})
    assert closed is not None and closed["status"] == "closed"


def test_rerunning_a_monitored_interval_emits_no_second_request(
    drift_requested, features, flights, monitor_dag
):
    from airloop.metadata.ledger import FeedbackLedger

    ledger = FeedbackLedger(features.monitoring_root(flights.name))

    def emitted() -> list[dict[str, Any]]:
        return [e for e in _retrain_events(features) if e["extra"]["request_id"] == REQUEST]

    # 9 January's run opened the request and emitted it, once.
    assert [r["request_id"] for r in ledger.requests()].count(REQUEST) == 1
    assert len(emitted()) == 1
    before = len(_retrain_events(features))
    run = monitor_dag.test(logical_date=day(10))  # the interval of 9 January again
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert all(state.endswith("success") for state in states.values()), states
    assert len(_retrain_events(features)) == before
    assert len(emitted()) == 1
    assert [r["request_id"] for r in ledger.requests()].count(REQUEST) == 1
    # What the interval decided, reported and published is what its first run did.
    decision = ledger.decision_for(day(9)) or {}
    assert (decision.get("action"), decision.get("request_id")) == ("requested", REQUEST)
    folder = features.monitoring_root(flights.name) / "intervals" / "2013-01-09"
    assert (folder / "report.html").read_text() == drift_requested["report"]
    assert (folder / "metrics.prom").read_text() == drift_requested["prom"]


def test_served_metrics_include_the_monitoring_figures(champion, features, flights):
    from fastapi.testclient import TestClient

    from airloop.serving.app import create_app

    with TestClient(create_app(features, flights, poll_seconds=60)) as client:
        text = client.get("/metrics").text
    assert "airloop_drift_share" in text
    assert "airloop_requests_total" in text
    assert np.isfinite(
        float(
            next(
                line for line in text.splitlines() if line.startswith("airloop_drift_share")
            ).split()[-1]
        )
    )


def test_monitor_in_process_runs_the_same_stages_without_airflow(champion, features, flights):
    """`airloop monitor --in-process`: checks, decision, report for each day, and no Asset event."""
    from typer.testing import CliRunner

    from airloop.cli import app
    from airloop.metadata.ledger import FeedbackLedger

    # A quiet day, then a drifted one: no breach, then the first breach waits (hysteresis 2).
    # Ten days after the drifted ones above, beyond the drift check's window of seven.
    quiet = like_the_reference(features, flights, champion["version"], 20, seed=20)
    write_served(features, flights, quiet, champion["version"])
    loud = like_the_reference(features, flights, champion["version"], 21, seed=21)
    write_served(features, flights, drifted(loud, flights), champion["version"])
    before = len(_retrain_events(features))
    result = CliRunner().invoke(
        app, ["monitor", "--start", "2013-01-20", "--days", "2", "--in-process"]
    )
    assert result.exit_code == 0, result.output
    assert "2013-01-20: success, no breach\n" in result.output
    assert (
        "2013-01-21: success, waiting (hysteresis: 1 of 2 breaching intervals)\n" in result.output
    )
    ledger = FeedbackLedger(features.monitoring_root(flights.name))
    decisions = [ledger.decision_for(day(d)) or {} for d in (20, 21)]
    assert [d.get("action") for d in decisions] == ["no breach", "waiting"]
    for d in (20, 21):
        folder = features.monitoring_root(flights.name) / "intervals" / f"2013-01-{d}"
        assert (folder / "report.html").exists() and (folder / "drift.json").exists()
    assert len(_retrain_events(features)) == before
