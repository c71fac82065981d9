"""The monitoring report without MLflow: Prometheus text, the history and the HTML page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from airloop.core.files import write_json
from airloop.metadata.ledger import FeedbackLedger
from airloop.monitoring.checks import interval_dir
from airloop.monitoring.records import Decision, PerformanceCheck, RetrainRequest
from airloop.monitoring.report.history import history_frame
from airloop.monitoring.report.page import render_report
from airloop.monitoring.report.prometheus import prometheus_text
from airloop.settings import Settings
from airloop.usecase import UseCase

START = datetime(2013, 3, 10, tzinfo=UTC)
END = START + timedelta(days=1)


def day(i: int) -> datetime:
    """The start of the i-th interval after START."""
    return START + timedelta(days=i)


def feature(name: str, kind: str, measure: str, score: float, threshold: float) -> dict[str, Any]:
    """One feature's entry in drift.json, as the drift check writes it."""
    return {
        "feature": name,
        "kind": kind,
        "measure": measure,
        "score": score,
        "threshold": threshold,
        "drifted": score >= threshold,
        "reference_rows": 9000,
        "current_rows": 3500,
        "missing_share_reference": 0.0,
        "missing_share_current": 0.01,
    }


def checked_drift(**changes: Any) -> dict[str, Any]:
    """A checked drift.json with no drifting feature (so the page needs no reference data)."""
    full: dict[str, Any] = {
        "interval_start": START.isoformat(),
        "interval_end": END.isoformat(),
        "rows": 3500,
        "breach": False,
        "status": "checked",
        "model_version": "3",
        "data": {
            "dataset_drift": False,
            "share_drifted": 0.0,
            "share_threshold": 0.3,
            "features": [
                feature("carrier", "categorical", "psi", 0.03, 0.25),
                feature("distance", "numeric", "wasserstein", 0.12, 0.5),
            ],
        },
        "prediction": {
            "measure": "psi",
            "score": 0.05,
            "threshold": 0.2,
            "drifted": False,
            "reference_mean": 0.21,
            "current_mean": 0.225,
        },
    }
    return {**full, **changes}


def performance(**changes: Any) -> PerformanceCheck:
    """A checked live-performance record for the interval."""
    values: dict[str, Any] = {
        "uri": "/nowhere/performance.json",
        "status": "checked",
        "interval_start": START.isoformat(),
        "interval_end": END.isoformat(),
        "window": [START.isoformat(), END.isoformat()],
        "predictions": 1200,
        "labelled": 800,
        "pending": 40,
        "model_version": "3",
        "metric": "roc_auc",
        "live": {"roc_auc": 0.71, "log_loss": float("nan")},
        "expected": {"roc_auc": 0.74},
    }
    return PerformanceCheck.model_validate({**values, **changes})


def decision(start: datetime = START, **changes: Any) -> Decision:
    """The controls' decision for the interval starting at ``start``."""
    values: dict[str, Any] = {
        "interval_start": start.isoformat(),
        "interval_end": (start + timedelta(days=1)).isoformat(),
        "breach": False,
        "streak": 0,
        "action": "no breach",
        "detail": None,
        "reasons": [],
        "request_id": None,
        "decided_at": (start + timedelta(days=1, hours=1)).isoformat(),
        "usecase": "flights",
    }
    return Decision.model_validate({**values, **changes})


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


def ledger(settings: Settings) -> FeedbackLedger:
    return FeedbackLedger(settings.monitoring_root("flights"))


# -- Prometheus text ----------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Each sample of a Prometheus text, keyed by name and sorted labels (the text must parse)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_prometheus_text_of_a_checked_interval(flights: UseCase) -> None:
    text = prometheus_text(flights, checked_drift(), performance(), decision())
    assert text.endswith("\n")
    assert (
        'airloop_drift_score{usecase="flights",feature="distance",measure="wasserstein"} 0.12'
        in text.splitlines()
    )
    uc = (("usecase", "flights"),)
    assert samples(text) == {
        (
            "airloop_drift_score",
            (("feature", "carrier"), ("measure", "psi"), ("usecase", "flights")),
        ): 0.03,
        (
            "airloop_drift_score",
            (("feature", "distance"), ("measure", "wasserstein"), ("usecase", "flights")),
        ): 0.12,
        ("airloop_drift_share", uc): 0.0,
        ("airloop_prediction_drift", uc): 0.05,
        ("airloop_labelled_predictions", uc): 800.0,
        ("airloop_retrain_requested", uc): 0.0,
        ("airloop_live_metric", (("metric", "roc_auc"), ("usecase", "flights"))): 0.71,
    }


def test_prometheus_text_skips_live_metrics_that_are_none(flights: UseCase) -> None:
    text = prometheus_text(flights, checked_drift(), performance(), decision())
    assert performance().live == {"roc_auc": 0.71, "log_loss": None}
    assert "log_loss" not in text
    assert text.count("# TYPE airloop_live_metric gauge") == 1


@pytest.mark.parametrize(
    ("action", "flag"),
    [("requested", "1.0"), ("waiting", "0.0"), ("suppressed", "0.0"), ("no breach", "0.0")],
)
def test_prometheus_text_flags_only_an_opened_request(
    flights: UseCase, action: str, flag: str
) -> None:
    chosen = decision(action=action, breach=action != "no breach")
    text = prometheus_text(flights, checked_drift(), performance(), chosen)
    assert f'airloop_retrain_requested{{usecase="flights"}} {flag}' in text.splitlines()


def test_prometheus_text_leaves_out_gauges_without_values(flights: UseCase) -> None:
    """Not enough traffic and no labels: only the counts and the request flag are written."""
    quiet = {"rows": 12, "status": "not enough traffic: 12 predictions, 3000 needed"}
    perf = performance(status="no labels yet", labelled=0, metric=None, live=None, expected=None)
    text = prometheus_text(flights, quiet, perf, decision())
    assert samples(text) == {
        ("airloop_labelled_predictions", (("usecase", "flights"),)): 0.0,
        ("airloop_retrain_requested", (("usecase", "flights"),)): 0.0,
    }
    for absent in ("airloop_drift_share", "airloop_prediction_drift", "airloop_live_metric"):
        assert absent not in text


# -- history ------------------------------------------------------------------------------------


def test_history_of_an_empty_ledger_is_empty(home: Settings, flights: UseCase) -> None:
    assert history_frame(home, flights).empty


def test_history_has_one_row_per_decision_oldest_first(home: Settings, flights: UseCase) -> None:
    book = ledger(home)
    book.record(
        decision(day(2), action="requested", detail="2 breaches", request_id="r-1").to_dict()
    )
    book.record(decision(day(0)).to_dict())
    book.record(decision(day(1), action="waiting").to_dict())
    write_json(interval_dir(home, flights, day(0)) / "drift.json", checked_drift())
    write_json(interval_dir(home, flights, day(0)) / "performance.json", performance().to_dict())
    # day 1: no drift check, a performance check of another version without a live metric
    write_json(
        interval_dir(home, flights, day(1)) / "performance.json",
        performance(model_version="4", live={"log_loss": 0.4}).to_dict(),
    )
    # day 2: nothing written at all

    history = history_frame(home, flights)

    assert list(history["interval_start"]) == [day(0), day(1), day(2)]
    assert list(history["action"]) == ["no breach", "waiting", "requested"]
    assert list(history["detail"]) == [None, None, "2 breaches"]
    assert list(history["request_id"]) == [None, None, "r-1"]
    assert list(history["model_version"]) == ["3", "4", None]
    first = history.iloc[0]
    assert first["share_drifted"] == 0.0
    assert first["prediction_psi"] == 0.05
    assert first["live_metric"] == 0.71
    assert first["expected_metric"] == 0.74
    assert history.loc[1:, "share_drifted"].isna().all()
    assert history.loc[1:, "prediction_psi"].isna().all()
    assert history.loc[1:, "live_metric"].isna().all()
    assert history.loc[1, "expected_metric"] == 0.74
    assert pd.isna(history.loc[2, "expected_metric"])


def test_history_can_be_only_the_last_intervals(home: Settings, flights: UseCase) -> None:
    book = ledger(home)
    for d in (2, 0, 1):
        book.record(decision(day(d)).to_dict())
    assert list(history_frame(home, flights, last=2)["interval_start"]) == [day(1), day(2)]
    assert len(history_frame(home, flights)) == 3


def test_history_keeps_one_row_for_a_rerun_interval(home: Settings, flights: UseCase) -> None:
    book = ledger(home)
    book.record(decision(day(0), action="waiting").to_dict())
    book.record(decision(day(0), action="no breach").to_dict())
    history = history_frame(home, flights)
    assert list(history["action"]) == ["no breach"]


# -- the page -----------------------------------------------------------------------------------


def test_page_without_drift_shows_the_decision_and_the_tables(
    home: Settings, flights: UseCase
) -> None:
    folder = interval_dir(home, flights, START)  # the checks write these before the report
    write_json(folder / "drift.json", checked_drift())
    write_json(folder / "performance.json", performance().to_dict())
    ledger(home).record(decision(detail="no check breached").to_dict())
    page = render_report(
        home,
        flights,
        START,
        END,
        checked_drift(),
        performance(),
        decision(detail="no check breached"),
    )
    assert page.startswith("<!doctype html>")
    assert "<h1>Monitoring flights: 2013-03-10 00:00 to 2013-03-11 00:00 UTC</h1>" in page
    assert "Model version served: <b>3</b>" in page
    assert "predictions in the drift window: 3500; checked." in page
    assert "<h2>Decision: no breach</h2>\n<p>no check breached</p>" in page
    assert "0 of 2 features drifted\n(dataset drift at ≥ 30%)" in page
    assert (
        "<tr><td>distance</td><td>numeric</td><td>wasserstein</td><td>0.1200</td>"
        "<td>0.5000</td><td>False</td><td>0.0100</td></tr>"
    ) in page
    assert (
        "<tr><td>psi</td><td>0.0500</td><td>0.2000</td><td>False</td>"
        "<td>0.2100</td><td>0.2250</td></tr>"
    ) in page
    assert "<p>800 labelled, 40 pending;\nchecked</p>" in page
    # The use case's live target stands beside its primary metric only.
    assert "<tr><td>roc_auc</td><td>0.7100</td><td>0.7400</td><td>0.6800</td></tr>" in page
    assert "<tr><td>log_loss</td><td></td><td></td><td></td></tr>" in page
    assert "<p>none drifted</p>" in page
    assert '<div class="history"><svg' in page and "<title>live metric</title>" in page
    assert (
        "<tr><td>2013-03-10 00:00:00+00:00</td><td>0.0000</td><td>0.0500</td>"
        "<td>0.7100</td><td>3</td><td>no breach</td><td>no check breached</td></tr>"
    ) in page


def test_page_escapes_what_it_shows(home: Settings, flights: UseCase, tmp_path: Path) -> None:
    from airloop.monitoring.feedback import request_note_path

    note = request_note_path(home, flights, "r-<1>")  # where decide_retraining writes it
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text("retrain: <live> & drift\n")
    request = RetrainRequest(
        request_id="r-<1>",
        interval_start=START.isoformat(),
        interval_end=END.isoformat(),
        opened_at=END.isoformat(),
        status="open",
        streak=2,
        reasons=[],
        note_uri=str(note),
    )
    odd = checked_drift(
        status="checked <again>",
        data={
            "share_drifted": 0.0,
            "features": [feature("<b>odd</b>", "numeric", "wasserstein", 0.1, 0.5)],
        },
    )
    chosen = decision(
        action="requested",
        detail="<script>alert('x')</script> & more",
        request_id="r-<1>",
        request=request,
    )
    ledger(home).record(chosen.to_dict())
    page = render_report(
        home, flights, START, END, odd, performance(status="3 < 500 labelled"), chosen
    )
    assert "<h2>Decision: requested</h2>" in page
    assert "<p>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more</p>" in page
    assert "<pre>retrain: &lt;live&gt; &amp; drift\n</pre>" in page
    assert "<td>&lt;b&gt;odd&lt;/b&gt;</td>" in page
    assert "; checked &lt;again&gt;.</p>" in page
    assert "40 pending;\n3 &lt; 500 labelled</p>" in page
    for raw in ("<script>", "<b>odd</b>", "<live>", "<again>", "3 < 500"):
        assert raw not in page
    # A rerun of the interval names its request without opening it again: the same page.
    rerun = chosen.model_copy(update={"request": None})
    assert page == render_report(
        home, flights, START, END, odd, performance(status="3 < 500 labelled"), rerun
    )


def test_page_shows_an_unmeasured_interval_as_a_blank_cell(
    home: Settings, flights: UseCase
) -> None:
    book = ledger(home)
    book.record(decision(day(0)).to_dict())
    book.record(decision(day(1), action="waiting").to_dict())
    write_json(interval_dir(home, flights, day(0)) / "drift.json", checked_drift())
    page = render_report(home, flights, START, END, checked_drift(), performance(), decision())
    history_table = page.split("<h2>History")[1]
    assert ">nan<" not in history_table
    assert "<td>0.0000</td>" in history_table and "<td></td>" in history_table


def test_prometheus_labels_are_escaped(flights: UseCase) -> None:
    drift = checked_drift()
    drift["data"]["features"].append(feature('we"ird\\name', "numeric", "psi", 0.1, 0.2))
    parsed = samples(prometheus_text(flights, drift, performance(), decision()))
    key = (
        "airloop_drift_score",
        (("feature", 'we"ird\\name'), ("measure", "psi"), ("usecase", "flights")),
    )
    assert parsed[key] == 0.1


# -- a rerun of an older interval ---------------------------------------------------------------


def test_history_can_stop_at_an_interval(home: Settings, flights: UseCase) -> None:
    book = ledger(home)
    for d in (0, 1, 2):
        book.record(decision(day(d)).to_dict())
    assert list(history_frame(home, flights, until=day(1))["interval_start"]) == [day(0), day(1)]


def test_the_page_of_an_older_interval_rerun_after_a_later_one_is_the_same(
    home: Settings, flights: UseCase
) -> None:
    """Its history is the one it had at its interval: not the later interval's row, nor the
    request a later interval opened."""
    book = ledger(home)

    def page() -> str:
        return render_report(home, flights, START, END, checked_drift(), performance(), decision())

    book.record(decision().to_dict())
    first = page()
    later = START + timedelta(days=1)
    book.record(decision(later, action="requested", request_id="r-later").to_dict())
    book.open_request(
        RetrainRequest(
            request_id="r-later",
            interval_start=later.isoformat(),
            interval_end=(later + timedelta(days=1)).isoformat(),
            opened_at=later.isoformat(),
            status="open",
            streak=2,
            reasons=[],
        ).to_dict()
    )
    assert page() == first


def test_a_rerun_of_an_older_interval_leaves_the_latest_figures_alone(
    home: Settings, flights: UseCase
) -> None:
    from airloop.monitoring.report import publish_latest

    book = ledger(home)
    latest = home.monitoring_metrics_file(flights.name)
    book.record(decision(day(0)).to_dict())
    assert publish_latest(home, flights, day(0), "day 0\n") == latest
    assert latest.read_text() == "day 0\n"
    book.record(decision(day(1)).to_dict())
    publish_latest(home, flights, day(1), "day 1\n")
    publish_latest(home, flights, day(0), "day 0 again\n")  # the older interval, rerun
    assert latest.read_text() == "day 1\n"
    latest.unlink()
    publish_latest(home, flights, day(0), "day 0 again\n")
    assert latest.read_text() == "day 0 again\n", "figures rather than none"
