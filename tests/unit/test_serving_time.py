"""Serving and time: the freshness rule, the refusal of past events, /invocations' checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airloop.core.periods import Span
from airloop.serving.errors import ApiError
from airloop.serving.freshness import expected_freshness, is_stale
from airloop.serving.invocations import CheckedModel, request_rules, table_problems
from airloop.serving.metrics import Metrics
from airloop.serving.model import LoadedModel
from airloop.serving.predict import Predictor, drop_views, refuse_past_events, time_views
from airloop.usecase import UseCase
from airloop.usecase.policies import ServingSpec

D = datetime(2013, 1, 8, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def with_delay(usecase: UseCase, source: str, delay: str) -> UseCase:
    """The use case with a source published ``delay`` after its rows' time."""
    spec = usecase.sources[source].model_copy(update={"available_after": Span.parse(delay)})
    return usecase.model_copy(update={"sources": {**usecase.sources, source: spec}})


# -- the freshness rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        ("carrier_delays", Span.of(days=1)),  # label_rate: the cadence (label.delay is in it)
        ("plane_attributes", Span.of(days=1)),  # a reference snapshot: the cadence
        ("origin_weather", Span.of(days=1)),  # source rows: the cadence, no `every`
        ("origin_departures", Span.of(hours=1)),  # an aggregate's own `every`
        ("origin_queue", Span.of(hours=1)),  # a pending view's own `every`
    ],
)
def test_values_serve_for_one_interval_of_their_view(
    flights: UseCase, view: str, expected: Span
) -> None:
    assert expected_freshness(flights, flights.feature_view(view)) == expected


def test_a_sources_delay_does_not_lengthen_freshness(flights: UseCase) -> None:
    """The day-before snapshot of a source known a day late holds data two days old at the
    event: stale, whatever the delay (the values already waited for it)."""
    weather = with_delay(flights, "weather", "1d")
    freshness = expected_freshness(weather, weather.feature_view("origin_weather"))
    assert freshness == Span.of(days=1)
    assert is_stale(D - timedelta(days=1), D + timedelta(hours=10), freshness)


def test_stale_from_as_of_plus_freshness_exactly_not_a_moment_before() -> None:
    freshness = Span.of(days=1, hours=6)
    due = D + timedelta(hours=30)
    assert not is_stale(D, D, freshness)
    assert not is_stale(D, due - timedelta(microseconds=1), freshness)
    assert is_stale(D, due, freshness)
    assert is_stale(D, due + SECOND, freshness)


def test_a_monthly_freshness_counts_calendar_months() -> None:
    month = Span.of(months=1)
    end_of_january = datetime(2003, 1, 31, tzinfo=UTC)
    due = datetime(2003, 2, 28, tzinfo=UTC)  # 31 January + 1 month
    assert not is_stale(end_of_january, due - SECOND, month)
    assert is_stale(end_of_january, due, month)
    first = datetime(2003, 2, 1, tzinfo=UTC)
    assert not is_stale(first, datetime(2003, 2, 28, 23, tzinfo=UTC), month)  # 28 days later
    assert is_stale(first, datetime(2003, 3, 1, tzinfo=UTC), month)


def stamp(when: datetime) -> int:
    return int(when.timestamp())


FRESHNESS = {"carrier_delays": Span.of(days=1, hours=6), "origin_departures": Span.of(hours=1)}


def test_time_views_gives_ages_and_flags_stale_and_future_views() -> None:
    stamps = {
        "carrier_delays": stamp(D),
        "origin_departures": stamp(D + timedelta(hours=2)),
        "plane_attributes": None,  # no row for the entity
    }
    at = D + timedelta(hours=3)
    times = time_views(FRESHNESS, stamps, at)
    assert times.ages == {
        "carrier_delays": 3 * 3600.0,
        "origin_departures": 3600.0,
        "plane_attributes": None,
    }
    assert times.stale == ["origin_departures"]  # exactly one hour old: due for its next values
    assert times.future == []
    before = time_views(FRESHNESS, stamps, D + timedelta(hours=1))
    assert before.future == ["origin_departures"] and before.ages["origin_departures"] == -3600.0
    assert before.stale == []
    same = time_views(FRESHNESS, stamps, D + timedelta(hours=2))  # computed at the event: usable
    assert same.future == [] and same.stale == []


def test_without_an_event_time_values_after_now_are_not_future() -> None:
    stamps = {"origin_departures": stamp(D + timedelta(hours=2))}
    assert time_views(FRESHNESS, stamps, D, given=False).future == []


def test_a_past_event_is_refused_with_a_422_pointing_to_batch_scoring() -> None:
    stamps = [{"origin_departures": stamp(D)}, {"origin_departures": stamp(D)}]
    timing = [
        time_views(FRESHNESS, stamps[0], D + SECOND),
        time_views(FRESHNESS, stamps[1], D - SECOND),
    ]
    with pytest.raises(ApiError) as caught:
        refuse_past_events(timing, stamps)
    error = caught.value
    assert error.status == 422 and error.code == "EVENT_BEFORE_ONLINE_FEATURES"
    assert "airloop score" in error.message and "serving.past_events: flag" in error.message
    assert error.fields == [
        {
            "field": "instances.1.event_time",
            "problem": "before the online values of origin_departures (as of 2013-01-08T00:00:00+00:00)",
        }
    ]
    refuse_past_events(timing[:1], stamps[:1])  # nothing from after the event: no refusal


def test_drop_views_makes_a_views_features_missing_row_by_row() -> None:
    online: dict[str, list[Any]] = {
        "origin": ["EWR", "JFK"],
        "origin_departures__dep_delay_mean_1h": [5.0, 7.0],
        "origin_departures__dep_delay_mean_1h__ts": [1, 2],
        "carrier_delays__share_1d": [0.1, 0.2],
    }
    drop_views(online, [["origin_departures"], []])
    assert online["origin_departures__dep_delay_mean_1h"] == [None, 7.0]
    assert online["origin_departures__dep_delay_mean_1h__ts"] == [1, 2]
    assert online["carrier_delays__share_1d"] == [0.1, 0.2] and online["origin"] == ["EWR", "JFK"]


# -- the prediction path, with a store and a model that answer from memory ----------------------


class Store:
    """Feast's online answer for one entity: each view's row stamped as given."""

    def __init__(self, stamps: dict[str, datetime]) -> None:
        self.stamps = stamps

    def get_online_features(self, features: Any, entity_rows: list[Any], **_: Any) -> Any:
        n = len(entity_rows)
        out: dict[str, list[Any]] = {}
        for view, when in self.stamps.items():
            out[f"{view}__x"] = [1.0] * n
            out[f"{view}__x__ts"] = [stamp(when)] * n
        return type(
            "Response", (), {"to_dict": lambda self, **_: {k: list(v) for k, v in out.items()}}
        )()


class Model:
    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.tile([0.3, 0.7], (len(frame), 1))


def predictor(flights: UseCase, serving: ServingSpec, stamps: dict[str, datetime]) -> Predictor:
    columns = ["carrier", "carrier_delays__x", "origin_departures__x"]
    loaded = LoadedModel("flight_delay", "3", None, Model(), columns, frozenset(columns[1:]))
    holder = type("Holder", (), {"current": loaded, "model_name": "flight_delay"})()
    usecase = flights.model_copy(update={"serving": serving})
    return Predictor(usecase=usecase, holder=holder, metrics=Metrics(), store=Store(stamps))


def instance(event_time: datetime | None) -> dict[str, Any]:
    return {"carrier": "UA", "origin": "EWR", "event_id": None, "event_time": event_time}


STAMPS = {"carrier_delays": D, "origin_departures": D + timedelta(hours=23)}


STALE_STAMPS = {"carrier_delays": D, "origin_departures": D + timedelta(hours=21)}


def test_stale_views_are_flagged_served_and_counted(flights: UseCase) -> None:
    service = predictor(flights, ServingSpec(), STALE_STAMPS)
    answer = service.predict([instance(D + timedelta(hours=23))], "r")
    item = answer["predictions"][0]
    assert item["stale_views"] == ["origin_departures"]  # 2 h old, due every hour
    assert item["feature_age_seconds"] == {
        "carrier_delays": 23 * 3600.0,  # the day's snapshot: fresh all day
        "origin_departures": 7200.0,
    }
    assert item["missing_features"] == [] and item["future_views"] == []
    text = service.metrics.exposition().decode()
    assert 'airloop_stale_features_total{view="origin_departures"} 1.0' in text
    assert 'view="carrier_delays"' not in text
    # The next day, before its feature run: yesterday's snapshot of labels is stale too.
    later = service.predict([instance(D + timedelta(days=1, hours=1))], "r")
    assert later["predictions"][0]["stale_views"] == ["carrier_delays", "origin_departures"]


def test_stale_views_become_missing_when_the_use_case_says_so(flights: UseCase) -> None:
    service = predictor(flights, ServingSpec(stale="missing"), STALE_STAMPS)
    item = service.predict([instance(D + timedelta(hours=23))], None)["predictions"][0]
    assert item["stale_views"] == ["origin_departures"]
    assert item["missing_features"] == ["origin_departures__x"]


def test_an_event_before_the_online_values_is_refused_or_flagged(flights: UseCase) -> None:
    past = [instance(D + timedelta(hours=22)), instance(D + timedelta(hours=23))]
    with pytest.raises(ApiError) as caught:
        predictor(flights, ServingSpec(), STAMPS).predict(past, None)
    assert [f["field"] for f in caught.value.fields] == ["instances.0.event_time"]
    flagged = predictor(flights, ServingSpec(past_events="flag"), STAMPS).predict(past, None)
    assert [p["future_views"] for p in flagged["predictions"]] == [["origin_departures"], []]
    # Without an event time the event is now: served, and the 2013 values flagged stale.
    now = predictor(flights, ServingSpec(), STAMPS).predict([instance(None)], None)
    assert now["predictions"][0]["stale_views"] == ["carrier_delays", "origin_departures"]


# -- /invocations -------------------------------------------------------------------------------


COLUMNS = ["origin_weather__temp", "carrier", "origin", "distance", "hour", "month"]


def table(**changes: list[Any]) -> pd.DataFrame:
    base: dict[str, list[Any]] = {
        "origin_weather__temp": [40.0, None],
        "carrier": ["UA", "AA"],
        "origin": ["EWR", "JFK"],
        "distance": [1400.0, 2475.0],
        "hour": [5.0, 9.0],
        "month": [1.0, 12.0],
    }
    return pd.DataFrame({**base, **changes})


def test_a_valid_table_has_no_problems(flights: UseCase) -> None:
    assert table_problems(request_rules(flights), COLUMNS, table()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"zz_debug": [1, 2]}, {"field": "zz_debug", "problem": "not an input of the model"}),
        (
            {"carrier": ["UA", "ZZ"]},
            {
                "field": "carrier",
                "problem": "must be one of: 9E, AA, AS, B6, DL, EV, F9, FL, HA, MQ, OO, UA, US, VX, WN, YV (row 1)",
            },
        ),
        ({"origin": [None, "JFK"]}, {"field": "origin", "problem": "must not be empty (row 0)"}),
        ({"month": [13.0, 0.0]}, {"field": "month", "problem": "must be at most 12 (row 0)"}),
        ({"hour": [5.5, 9.0]}, {"field": "hour", "problem": "must be a whole number (row 0)"}),
        (
            {"distance": ["far", True]},
            {"field": "distance", "problem": "must be a number (row 0 and 1 more)"},
        ),
        (
            {"distance": [float("inf"), 1.0]},
            {"field": "distance", "problem": "must be a finite number (row 0)"},
        ),
    ],
)
def test_invocations_refuse_what_predict_refuses(
    flights: UseCase, changes: dict[str, list[Any]], expected: dict[str, str]
) -> None:
    problems = table_problems(request_rules(flights), COLUMNS, table(**changes))
    assert expected in problems, problems


def test_a_missing_required_column_is_named(flights: UseCase) -> None:
    frame = table().drop(columns=["carrier"])
    assert table_problems(request_rules(flights), COLUMNS, frame) == [
        {"field": "carrier", "problem": "missing"}
    ]


def test_the_checked_model_refuses_before_the_model_and_scores_a_good_table(
    flights: UseCase,
) -> None:
    calls: list[int] = []

    class PyFunc:
        metadata = None

        def predict(self, data: pd.DataFrame, params: Any = None) -> list[float]:
            calls.append(len(data))
            return [0.5] * len(data)

    pyfunc = PyFunc()
    bad = CheckedModel(pyfunc, COLUMNS, request_rules(flights))
    with pytest.raises(ValueError):
        bad.predict(table(carrier=["UA", "ZZ"]))
    assert bad.refusal is not None and bad.refusal.status == 400 and calls == []
    good = CheckedModel(pyfunc, COLUMNS, request_rules(flights))
    assert good.predict(table().to_dict(orient="list")) == [
        0.5,
        0.5,
    ]  # columns as MLflow's "inputs"
    assert good.refusal is None and calls == [2]
    rows = CheckedModel(pyfunc, COLUMNS, request_rules(flights))
    with pytest.raises(ValueError):
        rows.predict(np.array([[1.0] * 6]))
    assert rows.refusal is not None and rows.refusal.status == 400
    assert "named columns" in rows.refusal.message
