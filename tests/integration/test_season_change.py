"""A season change: a champion of January meets the flights of June.

Three weeks of January train the first champion; two weeks of June go through the feature
pipeline and are served as the service would have served them (point-in-time features, the
champion's scores, the service's prediction log). Monitoring must open a retrain request on
the shift, and the model retrained on June must be promoted by the gate, which decides on the
same rows as the champion's. In-process stages on real Feast and MLflow stores, in a home of its
own; no servers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from tests.traffic import write_served

pytestmark = pytest.mark.integration

JANUARY = datetime(2013, 1, 1, tzinfo=UTC)
JUNE = datetime(2013, 6, 1, tzinfo=UTC)
WINTER_DAYS = 21  # the use case's training window: the demo's first champion
DAYS = 14


def days_from(first: datetime, n: int) -> list[tuple[datetime, datetime]]:
    return [(first + timedelta(days=i), first + timedelta(days=i + 1)) for i in range(n)]


def serve(settings: Any, usecase: Any, version: str, start: datetime, end: datetime) -> int:
    """The interval's events with the features a point-in-time-correct service would have
    looked up, scored by ``version``, appended to the prediction log."""
    import mlflow

    from airloop.core.columns import EVENT_ID, EVENT_TS, EVENTS_TABLE, SCORE
    from airloop.features.offline import read_partitions
    from airloop.features.store import historical_features
    from airloop.registry.tracking import configure
    from airloop.training.models import model_inputs, score

    events = read_partitions(settings, usecase, EVENTS_TABLE, start, end)
    frame = historical_features(settings, usecase, events)
    configure(settings)
    model = mlflow.pyfunc.load_model(f"models:/{usecase.training.model_name}/{version}")
    columns = model.metadata.get_input_schema().input_names()
    inputs = model_inputs(frame, columns)
    rows = inputs.copy()
    rows[EVENT_ID], rows[EVENT_TS] = frame[EVENT_ID].to_numpy(), frame[EVENT_TS].to_numpy()
    rows[SCORE] = score(model.get_raw_model(), usecase.task, inputs)
    write_served(settings, usecase, rows, version)
    return len(rows)


def to_offline_store(usecase: Any, settings: Any, start: datetime, end: datetime) -> None:
    """The feature pipeline up to the offline store: this test serves point in time from it,
    so the online store is left out (a second a day). So is the data-quality gate (its
    expectation suites, about a third of this test's time): the gate reads the snapshot and
    changes nothing in it, so the partitions built from it are the same, and a source that
    cannot be read or cast still stops the build (``build_features``). The gate has tests of
    its own (``test_validation_gate.py``, ``test_bad_raw_data.py``)."""
    from airloop.features.pipeline import build_offline_features, extract_partition

    extracted = extract_partition(start, end, usecase, settings)
    build_offline_features(start, end, extracted, usecase, settings, {"trigger": "test"})


def test_a_season_change_opens_a_request_and_the_retrained_model_meets_the_gate(
    tmp_path_factory, flights
) -> None:
    from airloop.data.replay import land_window
    from airloop.features.store import apply_definitions
    from airloop.metadata.ledger import FeedbackLedger
    from airloop.monitoring.pipeline import monitor_interval
    from airloop.registry.models import describe_champion
    from airloop.settings import Settings
    from airloop.training.pipeline import run_training

    settings = Settings(home=tmp_path_factory.mktemp("season"))
    land_window(flights, settings, date(2013, 1, 1), date(2013, 1, 1 + WINTER_DAYS))
    land_window(flights, settings, date(2013, 6, 1), date(2013, 6, 1 + DAYS))
    apply_definitions(settings, flights)
    for lo, hi in days_from(JANUARY, WINTER_DAYS):
        to_offline_store(flights, settings, lo, hi)
    first = run_training("2013-01-01", "2013-01-22", None, {"trigger": "test"}, flights, settings)
    assert first.promotion.promoted, first.promotion
    version = str(first.registered.version)

    # A week of June is served before monitoring starts looking (its window is a week of
    # predictions), so the request comes with a week of June to retrain on. Each day reaches
    # the offline store before it is served, as the feature pipeline runs ahead of serving.
    for lo, hi in days_from(JUNE, 7):
        to_offline_store(flights, settings, lo, hi)
        assert serve(settings, flights, version, lo, hi) > 500
    request = None
    monitored = []
    for lo, hi in days_from(JUNE + timedelta(days=7), DAYS - 7):
        to_offline_store(flights, settings, lo, hi)
        assert serve(settings, flights, version, lo, hi) > 500
        decided = monitor_interval(lo, hi, {"trigger": "test"}, flights, settings).decision
        monitored.append((lo.date().isoformat(), decided.action))
        if decided.request is not None:
            request = decided.request
            break
    assert request is not None, monitored
    reasons = {reason["check"] for reason in request.reasons}
    assert reasons & {"data_drift", "prediction_drift", "live_performance"}, request

    end = pd.Timestamp(request.interval_end)
    retrained = run_training(
        f"{end - pd.Timedelta(days=DAYS):%Y-%m-%d}",
        f"{end:%Y-%m-%d}",
        None,
        {"trigger": "test", "retrain_request": request.request_id},
        flights,
        settings,
    )
    # The gate judges the challenger against the champion on the same rows of June: the
    # model that learnt June's airports is the better one, and serves.
    promotion = retrained.promotion
    assert promotion.promoted, promotion
    champion = describe_champion(settings, flights)
    assert champion is not None
    assert str(champion["version"]) == str(retrained.registered.version)
    assert promotion.previous == version
    assert FeedbackLedger(settings.monitoring_root(flights.name)).request(request.request_id)
