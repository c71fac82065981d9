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
    from airloop.features.offline import table_dir

    online = online_values_for(landed, flights)
    # The latest day the pipeline ran: day 2 here, later if other tests ran later days first.
    latest = max(p.stem for p in table_dir(landed, flights, "origin_weather").glob("*.parquet"))
    assert latest >= "2013-01-02"
    assert online["origin_weather__temp"][0] == pytest.approx(
        last_landed_temp(landed, f"{latest}.csv")
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
    """Every flight of a day, looked up online as the service does at the replay clock's step
    of its hour (the store taken back to the day's start, then moved hour by hour; rows older
    than their view's ttl at the flight's time count as missing), gets exactly the features
    the offline store's point-in-time join gives it: the weather of the hour, the airport's,
    the airline's and the aircraft's departures as they were then, not at the day's end."""
    from datetime import timedelta

    from airloop.core.columns import EVENT_TS, EVENTS_TABLE
    from airloop.demo.traffic import ReplayClock
    from airloop.features.offline import read_partitions
    from airloop.features.store import feature_store, historical_features
    from airloop.serving.predict import MISSING_KEY, expire_stale

    store = feature_store(features, flights)
    service = store.get_feature_service("flight_delay_v1")
    events = read_partitions(features, flights, EVENTS_TABLE, day(5), day(6))
    events[EVENT_TS] = pd.to_datetime(events[EVENT_TS], utc=True)
    expected = historical_features(features, flights, events).set_index("event_id")
    # The fixture's store holds 8 January's rows. As a replay arriving at 5 January would
    # have left it: materialised to the day (its snapshots), the rest is the clock's. An
    # aircraft with rows after the 5th but none on it keeps a later row no clock takes back:
    # such flights (cancelled ones) are left out.
    later = read_partitions(features, flights, "plane_departures", day(6), day(9))
    that_day = read_partitions(features, flights, "plane_departures", day(5), day(6))
    ahead = set(later["tailnum"]) - set(that_day["tailnum"])
    events = events[~events["tailnum"].isin(ahead)]
    moving = tuple(f"{v.name}__" for v in flights.feature_views if v.moves_within_interval())
    compared, columns, changed = 0, set(), set()
    try:
        store.materialize(start_date=day(1), end_date=day(5))
        clock = ReplayClock(features, flights, store, day(5), day(6))
        for hour in range(24):
            when = day(5) + timedelta(hours=hour)
            part = events[
                (events[EVENT_TS] >= when) & (events[EVENT_TS] < when + timedelta(hours=1))
            ]
            if part.empty:
                continue
            clock.advance(when)
            rows = [  # as the service asks: a missing key finds nothing
                {k: MISSING_KEY if pd.isna(v) else v for k, v in row.items()}
                for row in part[list(flights.entity_keys)].to_dict("records")
            ]
            online = store.get_online_features(
                features=service, entity_rows=rows, full_feature_names=True
            ).to_dict(include_event_timestamps=True)
            expire_stale(flights, online, [t.to_pydatetime() for t in part[EVENT_TS]])
            for name, values in online.items():
                if not name.startswith(moving) or name.endswith("__ts"):
                    continue
                want = expected.loc[part["event_id"], name].to_numpy(dtype=float)
                got = [float("nan") if v is None else v for v in values]
                assert got == pytest.approx(list(want), nan_ok=True), (when, name)
                compared += len(values)
                columns.add(name)
                if hour in (12, 18) and not (pd.isna(want).all()):  # 7 am and 1 pm in New York
                    changed.add((hour, name, float(pd.Series(want).mean())))
    finally:  # the online store as the pipeline left it, for the tests after this one
        store.materialize(start_date=day(1), end_date=day(9))
    assert len(columns) >= 15 and compared == len(columns) * len(events)  # each, of every flight
    # The weather and the departures moved between the hours, and so did the store.
    morning = {name: mean for hour, name, mean in changed if hour == 12}
    noon = {name: mean for hour, name, mean in changed if hour == 18}
    for name in ("origin_weather__temp", "origin_departures__dep_delay_mean_3h"):
        assert morning[name] != noon[name], name


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


def test_an_events_queue_holds_only_departures_before_its_own_time(features, flights) -> None:
    """The queue at a flight's airport (flights due in the last two hours that had not left
    by the hour) is recomputed here from the landed timetable and departures: through Feast's
    point-in-time join it must agree for every flight of a day, so a departure at or after
    the flight's own time never empties the queue it sees."""
    from airloop.data.landing import landing_path
    from airloop.features.offline import read_partitions
    from airloop.features.store import historical_features

    def landed(source: str) -> pd.DataFrame:
        return pd.concat(
            pd.read_csv(landing_path(features, flights, source, day(d))) for d in (4, 5)
        )

    trip = ["carrier", "flight", "origin", "time_hour"]
    timetable, departures = landed("flights"), landed("departures")
    departures["left"] = pd.to_datetime(departures["time_hour"], utc=True) + pd.to_timedelta(
        departures["minute"] + departures["dep_delay"], unit="min"
    )
    timetable = timetable.merge(departures[[*trip, "left"]], on=trip, how="left")
    timetable["due"] = pd.to_datetime(timetable["time_hour"], utc=True) + pd.to_timedelta(
        timetable["minute"], unit="min"
    )
    events = read_partitions(features, flights, "_events", day(5), day(6))
    served = historical_features(features, flights, events)
    served["event_timestamp"] = pd.to_datetime(served["event_timestamp"], utc=True)
    waiting = 0
    for (origin, at), rows in served.groupby(["origin", "event_timestamp"]):
        hour = at.floor("h")  # the snapshot the join hands an event: its hour's
        due = timetable[
            (timetable["origin"] == origin)
            & (timetable["due"] >= hour - pd.Timedelta(hours=2))
            & (timetable["due"] < hour)
        ]
        still = due[~(due["left"] < hour)]  # not left before the snapshot, or never
        assert (rows["origin_queue__planned_2h"].fillna(0) == len(due)).all(), (origin, at)
        assert (rows["origin_queue__pending_2h"].fillna(0) == len(still)).all(), (origin, at)
        waiting += len(still) * len(rows)
    assert waiting > 0  # some flights of the day found others still at the gate


def test_materialising_an_interval_writes_what_feasts_materialize_writes(
    features, flights, monkeypatch
) -> None:
    """airloop reads a window's rows from the partitions that hold it (Feast's offline query
    reads every partition, slower as the store grows): the online store must end up the same,
    row for row, including the window stretched to the watermark of a later run; and so when
    the views are written in two groups (the DAG's writers) and in slices of a few rows."""
    from airloop.features import store as feast_store
    from airloop.features.offline import read_partitions
    from airloop.features.store import feature_store, materialize_interval, materialized_until

    store = feature_store(features, flights)
    lookups = {}
    for view in flights.feature_views:
        key = flights.entity(view.entity).join_key
        rows = read_partitions(features, flights, view.name, day(1), day(9))
        names = [c for c in rows.columns if c not in (key, "event_timestamp")]
        lookups[view.name] = (key, sorted(set(rows[key].dropna())), names)

    def online() -> dict[str, dict[str, list]]:
        return {
            name: store.get_online_features(
                features=[f"{name}:{feature}" for feature in names],
                entity_rows=[{key: k} for k in keys],
            ).to_dict()
            for name, (key, keys, names) in lookups.items()
        }

    before = day(4) - pd.Timedelta(microseconds=1)
    try:
        store.materialize(start_date=day(1), end_date=before)
        store.materialize(start_date=day(4), end_date=day(9))  # Feast's own
        feasts = online()
        store.materialize(start_date=day(1), end_date=before)
        done = materialize_interval(features, flights, day(4), day(5))  # to the watermark
        assert done.end == day(9).isoformat()
        assert online() == feasts

        store.materialize(start_date=day(1), end_date=before)
        monkeypatch.setattr(feast_store, "ONLINE_WRITE_ROWS", 7)
        views = [v.name for v in flights.feature_views]
        for group in (views[0::2], views[1::2]):
            done = materialize_interval(features, flights, day(4), day(5), group)
            assert (done.feature_views, done.end) == (group, day(9).isoformat())
        assert online() == feasts
        # Every view's window is in the registry, not only the last one written.
        fresh = feature_store(features, flights)
        assert {v: materialized_until(fresh, [v]) for v in views} == dict.fromkeys(views, day(9))
        with pytest.raises(ValueError, match="has no feature view no_such_view"):
            materialize_interval(features, flights, day(4), day(5), ["no_such_view"])
    finally:
        store.materialize(start_date=day(1), end_date=day(9))


def test_the_offline_store_joins_as_feasts_duckdb_store_does(features, flights) -> None:
    """The windowed store reads only the rows the join can use (a view's ttl before the first
    event on): the training set is Feast's DuckDB join of the whole tables, row for row."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    from airloop.core.columns import EVENT_TS, EVENTS_TABLE
    from airloop.features.offline import read_partitions
    from airloop.features.store import feature_store, historical_features, store_config

    store = feature_store(features, flights)
    assert type(store._get_provider().offline_store).__name__ == "WindowedDuckDBOfflineStore"
    whole = FeatureStore(
        config=RepoConfig(
            project=flights.name,
            provider="local",
            entity_key_serialization_version=3,
            repo_path=str(features.feast_dir),
            **{**store_config(features), "offline_store": {"type": "duckdb"}},
        )
    )
    # Two days after a week of history: most rows of the 1-day views are left out.
    events = read_partitions(features, flights, EVENTS_TABLE, day(7), day(9))
    events[EVENT_TS] = pd.to_datetime(events[EVENT_TS], utc=True)
    windowed = historical_features(features, flights, events)
    expected = whole.get_historical_features(
        entity_df=events,
        features=whole.get_feature_service("flight_delay_v1"),
        full_feature_names=True,
    ).to_df()
    assert len(windowed) == len(events)
    pd.testing.assert_frame_equal(
        windowed.sort_values("event_id").reset_index(drop=True),
        expected.sort_values("event_id").reset_index(drop=True)[windowed.columns],
    )
