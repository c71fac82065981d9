"""The retraining controls: hysteresis, cooldown, de-duplication, budget; every decision kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airloop.metadata.ledger import FeedbackLedger
from airloop.monitoring.feedback import decide
from airloop.usecase import RetrainingSpec

DRIFT = [{"check": "data_drift", "share_drifted": 0.5, "features": [{"feature": "temp"}]}]


def interval(i: int) -> tuple[datetime, datetime]:
    start = datetime(2013, 3, 1, tzinfo=UTC) + timedelta(days=i)
    return start, start + timedelta(days=1)


def run(ledger, controls, i, breach=True, close=True):
    start, end = interval(i)
    decision = decide(ledger, controls, start, end, DRIFT if breach else [], {"model_version": "1"})
    if decision.request and close:
        ledger.close_request(decision.request.request_id, {"result": "promoted"})
    return decision


@pytest.fixture
def ledger(tmp_path):
    return FeedbackLedger(tmp_path)


def test_no_breach_opens_nothing_and_is_recorded(ledger):
    for i in range(5):
        assert run(ledger, RetrainingSpec(), i, breach=False).action == "no breach"
    assert ledger.requests() == []
    assert len(ledger.decisions()) == 5


def test_hysteresis_waits_for_k_consecutive_breaches(ledger):
    controls = RetrainingSpec(hysteresis=3, cooldown=0)
    actions = [run(ledger, controls, i, breach=b).action for i, b in enumerate([1, 1, 0, 1, 1, 1])]
    assert actions == ["waiting", "waiting", "no breach", "waiting", "waiting", "requested"]
    assert len(ledger.requests()) == 1
    assert ledger.requests()[0]["reasons"] == DRIFT
    assert ledger.requests()[0]["streak"] == 3


def test_cooldown_suppresses_and_says_so(ledger):
    controls = RetrainingSpec(hysteresis=1, cooldown=3)
    actions = [run(ledger, controls, i).action for i in range(6)]
    assert actions == [
        "requested",
        "suppressed",
        "suppressed",
        "suppressed",
        "requested",
        "suppressed",
    ]
    assert "cooldown" in ledger.decisions()[1]["detail"]


def test_one_open_retraining_at_a_time(ledger):
    controls = RetrainingSpec(hysteresis=1, cooldown=0)
    first = run(ledger, controls, 0, close=False)
    second = run(ledger, controls, 1, close=False)
    assert first.action == "requested"
    assert second.action == "suppressed" and "still open" in (second.detail or "")
    ledger.close_request(str(first.request_id), {"result": "refused by the gate"})
    assert run(ledger, controls, 2).action == "requested"


def test_budget_caps_requests_per_window(ledger):
    controls = RetrainingSpec(hysteresis=1, cooldown=0, budget=2, budget_window=timedelta(days=10))
    actions = [run(ledger, controls, i).action for i in range(12)]
    assert actions[:3] == ["requested", "requested", "suppressed"]
    assert "budget" in ledger.decisions()[2]["detail"]
    assert actions[10] == "requested"  # the first request left the 10-day window


def test_rerunning_an_interval_never_opens_a_second_request(ledger):
    """The rerun decides what the first try decided, naming the same request, and opens none
    (``request`` is what the DAG emits: nothing the second time)."""
    controls = RetrainingSpec(hysteresis=1, cooldown=0)
    first = run(ledger, controls, 0)
    assert first.action == "requested" and first.request is not None
    recorded = ledger.decisions()
    again = run(ledger, controls, 0)
    assert again.request is None
    assert (again.action, again.request_id, again.detail) == ("requested", first.request_id, None)
    assert len(ledger.requests()) == 1
    assert [{**d, "decided_at": None} for d in ledger.decisions()] == [
        {**d, "decided_at": None} for d in recorded
    ]


def test_an_abandoned_open_request_stops_blocking_after_a_day(ledger):
    controls = RetrainingSpec(hysteresis=1, cooldown=0)
    start, end = interval(0)
    decide(ledger, controls, start, end, DRIFT, now=datetime(2026, 1, 1, tzinfo=UTC))
    start, end = interval(1)
    later = decide(ledger, controls, start, end, DRIFT, now=datetime(2026, 1, 3, tzinfo=UTC))
    assert later.action == "requested"


PROMOTED = {"promoted": True, "champion": "7"}


@pytest.mark.parametrize(
    ("promotion", "deploy", "result"),
    [
        (None, None, "failed"),  # gate or registration failed
        (PROMOTED, None, "failed"),  # promoted, then the deploy failed (rolled back)
        (
            {"promoted": False, "champion": "6", "reasons": ["roc_auc too low"]},
            {"deployed": False},
            "refused by the gate",
        ),
        (PROMOTED, {"deployed": True, "version": "7"}, "promoted"),
    ],
)
def test_training_outcome_names_how_the_run_ended(promotion, deploy, result):
    from airloop.monitoring.outcome import training_outcome
    from airloop.registry.models import GateDecision, Promotion, Registration
    from airloop.serving.deploy import Deployment

    decision = GateDecision(promote=True, reasons=[], primary_metric="roc_auc")
    registered = Registration(name="m", version="7", created=True, decision=decision)
    outcome = training_outcome(
        registered,
        Promotion.from_dict(promotion) if promotion else None,
        Deployment.from_dict(deploy) if deploy else None,
        "run-1",
    )
    assert outcome.result == result
    assert outcome.version == "7" and outcome.dag_run_id == "run-1"


def test_closing_a_request_records_the_outcome_and_a_failure_fails(tmp_path, flights):
    from airloop.monitoring.outcome import TrainingRunFailed, close_retrain_request
    from airloop.settings import Settings

    settings = Settings(home=tmp_path)
    ledger = FeedbackLedger(settings.monitoring_root(flights.name))
    start, end = interval(0)
    opened = decide(ledger, RetrainingSpec(hysteresis=1), start, end, DRIFT)
    assert opened.request is not None
    with pytest.raises(TrainingRunFailed, match="did not finish"):
        close_retrain_request(
            opened.request.request_id, None, None, None, "run-9", flights, settings
        )
    closed = ledger.request(opened.request.request_id)
    assert closed is not None and closed["status"] == "closed"
    assert closed["outcome"] == {
        "result": "failed",
        "version": None,
        "reasons": None,
        "deploy": None,
        "dag_run_id": "run-9",
    }


@pytest.mark.parametrize(
    ("drop", "breach"), [("10%", False), ("5%", True), (0.1, False), (0.05, True)]
)
def test_the_live_performance_drop_may_be_a_share_of_the_test_metric(
    flights, monkeypatch, drop, breach
) -> None:
    """Test AUC 0.8, live AUC ~0.74: 10 % (0.08) allows it, 5 % (0.04) does not."""
    import numpy as np
    import pandas as pd

    from airloop.core.columns import LABEL, SCORE
    from airloop.monitoring import checks
    from airloop.monitoring.readers import MODEL_VERSION, SERVED_AT
    from airloop.usecase import MonitoringSpec

    monkeypatch.setattr(checks, "version_metrics", lambda *_: {"roc_auc": 0.8})
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 2000)
    score = np.clip(label * 0.22 + rng.uniform(0, 0.78, 2000), 0, 1)
    known = pd.DataFrame(
        {
            LABEL: label,
            SCORE: score,
            MODEL_VERSION: "1",
            SERVED_AT: pd.Timestamp("2013-01-02", tz="UTC"),
        }
    )
    spec = MonitoringSpec.model_validate(
        {**flights.monitoring.model_dump(), "performance_drop": drop}
    )
    found = checks.compare_live(None, flights.model_copy(update={"monitoring": spec}), known)
    assert 0.7 < found["live"]["roc_auc"] < 0.76, found["live"]
    assert found["breach"] is breach, found


def test_monitoring_reads_each_day_of_the_log_once_and_again_when_it_grows(
    flights, tmp_path
) -> None:
    """The table of a week equals the one built from every record; a day's table is kept and
    read back while its files are unchanged, and rebuilt when a late prediction lands."""
    import json
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from airloop.monitoring.readers import records_frame, served_frame
    from airloop.serving.prediction_log import read_window
    from airloop.settings import Settings

    settings = Settings(home=tmp_path)
    root = settings.prediction_log_dir(flights.name)
    first = datetime(2013, 1, 5, tzinfo=UTC)

    def record(when: datetime, i: int, gust: float | None) -> dict:
        return {
            "time": when.isoformat(),
            "event_time": when.isoformat(),
            "event_id": f"e{i}",
            "features": {"origin": "EWR", "gust": gust, "temp": 20.0 + i},
            "model_version": 1 + i % 2,
            "score": i / 100,
        }

    def append(when: datetime, i: int, gust: float | None) -> None:
        path = root / f"date={when:%Y-%m-%d}" / f"hour={when:%H}.w.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(json.dumps(record(when, i, gust)) + "\n")

    for i in range(30):  # a gust only on the later days: untyped on the first ones
        append(first + timedelta(hours=5 * i), i, 3.0 if i > 15 else None)
    lo, hi = first + timedelta(hours=7), first + timedelta(days=5)
    expected = records_frame(read_window(root, lo, hi))
    got = served_frame(settings, flights, lo, hi)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got["gust"].dtype == "float64"
    cache = settings.monitoring_root(flights.name) / "served"
    kept = sorted(p.name for p in cache.iterdir())
    assert len(kept) == 5 and kept[0].startswith("date=2013-01-05.")

    assert served_frame(settings, flights, lo, hi).equals(got)  # from the kept tables
    assert sorted(p.name for p in cache.iterdir()) == kept

    append(first + timedelta(days=1, hours=23), 99, 4.0)  # late, for the second day
    again = served_frame(settings, flights, lo, hi)
    assert len(again) == len(got) + 1 and "e99" in set(again["event_id"])
    assert len(list(cache.glob("date=2013-01-06.*.parquet"))) == 1  # the stale one replaced
