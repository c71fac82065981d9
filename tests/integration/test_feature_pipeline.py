"""The feature pipeline as Airflow runs it, on real flights, into real Feast stores."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.integration.conftest import (
    day,
    last_landed_temp,
    online_values_for,
    run_interval,
    store_snapshot,
    task_states,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_days(feature_dag, landed, flights):
    runs = [run_interval(feature_dag, d) for d in (1, 2)]
    return runs


def test_runs_succeed_and_fill_the_offline_store(two_days, landed, flights) -> None:
    from airloop.features.offline import partition_file

    for run in two_days:
        assert str(run.state) == "success", task_states(run)
    for table in ["_events", "_labels", *[v.name for v in flights.feature_views]]:
        assert partition_file(landed, flights, table, day(2)).exists(), table


def test_historical_features_are_point_in_time_correct(two_days, landed, flights) -> None:
    from airloop.features.offline import read_partitions
    from airloop.features.store import feature_store

    store = feature_store(landed, flights)
    events = read_partitions(landed, flights, "_events", day(2), day(3))
    assert events is not None and len(events) > 500
    frame = store.get_historical_features(
        entity_df=events,
        features=store.get_feature_service("flight_delay_v1"),
        full_feature_names=True,
    ).to_df()
    assert len(frame) == len(events)
    # Weather at the origin in the departure hour equals the raw observation.
    raw = pd.read_csv(landed.landing_root("flights") / "weather" / "2013-01-02.csv")
    raw["time_hour"] = pd.to_datetime(raw["time_hour"], utc=True)
    row = frame.sort_values("event_id").iloc[100]
    expected = raw[(raw["origin"] == row["origin"]) & (raw["time_hour"] == row["event_timestamp"])][
        "temp"
    ].iloc[0]
    assert row["origin_weather__temp"] == pytest.approx(expected)
    # Rolling delay shares on day 2 were computed from labels that had arrived by midnight
    # (at midnight included: the boundary rule).
    assert frame["carrier_delays__count_1d"].notna().mean() > 0.9
    labels = read_partitions(landed, flights, "_labels", day(1), day(2))
    known = labels[labels["available_at"] <= pd.Timestamp(day(2))]
    ua = known.merge(read_partitions(landed, flights, "_events", day(1), day(2)), on="event_id")
    ua = ua[ua["carrier"] == "UA"]
    got = frame[frame["carrier"] == "UA"]["carrier_delays__share_1d"].iloc[0]
    assert got == pytest.approx(ua["label"].mean())


def test_online_store_serves_the_latest_values(two_days, landed, flights) -> None:
    online = online_values_for(landed, flights)
    assert online["origin_weather__temp"][0] == pytest.approx(
        last_landed_temp(landed, "2013-01-02.csv")
    )
    assert online["carrier_delays__count_1d"][0] > 0
    assert online["plane_attributes__seats"][0] > 0


def test_rerun_leaves_identical_stores(two_days, feature_dag, landed, flights) -> None:
    before = store_snapshot(landed, flights)
    rerun = run_interval(feature_dag, 2)
    assert str(rerun.state) == "success"
    assert store_snapshot(landed, flights) == before


def test_rerunning_an_older_interval_keeps_the_newest_online_values(
    two_days, feature_dag, landed, flights
) -> None:
    before = store_snapshot(landed, flights)
    assert str(run_interval(feature_dag, 1).state) == "success"
    assert store_snapshot(landed, flights) == before


def test_validation_report_is_written(two_days, landed) -> None:
    report = json.loads(
        (landed.reports_root("flights") / "validation" / "2013-01-02.json").read_text()
    )
    assert report["success"] is True and report["rows"]["flights"] > 500


def test_the_replay_clock_serves_what_was_known_at_its_moment(features, flights) -> None:
    """The demo's replay clock (all views at the interval's start, then only the views that
    move within it at each step) serves what the offline store's point-in-time join gives:
    the weather of the hour, and the airport's departures of the last hours as they were at
    that hour, not at the day's end."""
    from datetime import timedelta

    from airloop.data.landing import landing_path
    from airloop.demo.traffic import ReplayClock
    from airloop.features.store import feature_store

    store = feature_store(features, flights)
    service = store.get_feature_service("flight_delay_v1")
    # The aircraft that left most often that day: one that flies (an online store keeps an
    # aircraft's last row past the view's ttl, which a point-in-time join then ignores).
    departures = pd.read_csv(landing_path(features, flights, "departures", day(5)))
    tailnum = str(departures["tailnum"].value_counts().index[0])
    entity = {"carrier": "UA", "origin": "EWR", "route": "EWR-IAH", "tailnum": tailnum}
    temps, delays = [], []
    try:
        # A replay's store only moves forward; this one holds 8 January's rows, which no
        # materialisation of an older window takes back for an aircraft that did not fly in
        # it. Set it as a replay arriving at 5 January would have left it.
        store.materialize(start_date=day(1), end_date=day(5))
        clock = ReplayClock(features, flights, store, day(5), day(6))
        for hours in (7, 13):
            when = day(5) + timedelta(hours=hours)
            clock.advance(when)
            online = online_values_for(features, flights, entity)
            offline = (
                store.get_historical_features(
                    entity_df=pd.DataFrame([{**entity, "event_timestamp": when}]),
                    features=service,
                    full_feature_names=True,
                )
                .to_df()
                .iloc[0]
            )
            for name, values in online.items():
                if name in entity:
                    continue
                got = float("nan") if values[0] is None else values[0]
                assert got == pytest.approx(offline[name], nan_ok=True), (hours, name)
            temps.append(online["origin_weather__temp"][0])
            delays.append(online["origin_departures__dep_delay_mean_3h"][0])
        # The weather and the departures moved between the steps, and so did the store.
        assert temps[0] != temps[1] and delays[0] != delays[1]
    finally:  # the online store as the pipeline left it, for the tests after this one
        store.materialize(start_date=day(1), end_date=day(9))


def test_an_events_airport_state_holds_only_departures_before_its_own_time(
    features, flights
) -> None:
    """The near-real-time features of a flight (its airport's departures of the last hours)
    are recomputed here from the raw departures, leaving at or after the flight's own time
    out: through Feast's point-in-time join they must agree, for every flight of a day."""
    from airloop.data.landing import landing_path
    from airloop.features.offline import read_partitions
    from airloop.features.store import historical_features

    raw = pd.concat(
        pd.read_csv(landing_path(features, flights, "departures", day(d))) for d in (4, 5)
    )
    raw["left"] = pd.to_datetime(raw["time_hour"], utc=True) + pd.to_timedelta(
        raw["minute"] + raw["dep_delay"], unit="min"
    )
    events = read_partitions(features, flights, "_events", day(5), day(6))
    served = historical_features(features, flights, events)
    served["event_timestamp"] = pd.to_datetime(served["event_timestamp"], utc=True)
    checked = 0
    for (origin, at), rows in served.groupby(["origin", "event_timestamp"]):
        for hours in (1, 3):
            earlier = raw[
                (raw["origin"] == origin)
                & (raw["left"] >= at - pd.Timedelta(hours=hours))
                & (raw["left"] < at)  # at the flight's own time or after: not yet known
            ]
            count = rows[f"origin_departures__dep_delay_count_{hours}h"]
            mean = rows[f"origin_departures__dep_delay_mean_{hours}h"]
            assert (count.fillna(0) == len(earlier)).all(), (origin, at, hours)
            if len(earlier):
                assert mean.to_numpy() == pytest.approx(earlier["dep_delay"].mean()), (origin, at)
                checked += len(rows)
    assert checked > 1000  # most of a day's flights, both windows
