"""The flights data xN for ``make bench-scale`` (benchmarks/scale_data.py): copies of each day
with distinct entity keys, the same moments, each copy's weather at its own origins."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from benchmarks.scale_data import (
    demo_variant,
    multiply,
    multiply_flights,
    multiply_weather,
    prepare_demo,
    scaled_usecase,
    within_days,
)

FLIGHTS = pd.DataFrame(
    {
        "carrier": ["UA", "AA", "UA", "B6"],
        "flight": [1545, 1141, 1696, 725],
        "tailnum": ["N14228", None, "N39463", "N804JB"],
        "origin": ["EWR", "JFK", "EWR", "JFK"],
        "dest": ["IAH", "MIA", "ORD", "BQN"],
        "dep_delay": [2.0, -1.0, 30.0, None],
        "time_hour": [
            "2013-01-01T10:00:00Z",
            "2013-01-01T10:00:00Z",
            "2013-01-01T11:00:00Z",
            "2013-01-02T05:00:00Z",
        ],
    }
)
WEATHER = pd.DataFrame(
    {
        "origin": ["EWR", "JFK", "EWR", "JFK"],
        "temp": [39.0, 39.9, 37.9, 30.0],
        "time_hour": [
            "2013-01-01T10:00:00Z",
            "2013-01-01T10:00:00Z",
            "2013-01-01T11:00:00Z",
            "2013-01-02T05:00:00Z",
        ],
    }
)
PLANES = pd.DataFrame({"tailnum": ["N14228", "N39463", "N804JB"], "seats": [149, 191, 200]})
AIRLINES = pd.DataFrame({"carrier": ["UA", "AA", "B6"], "name": ["United", "American", "JetBlue"]})
RAW = {"flights": FLIGHTS, "weather": WEATHER, "planes": PLANES, "airlines": AIRLINES}


def flight_ids(flights: pd.DataFrame) -> pd.Series:
    """The use case's event key (``flight_id``: carrier, flight, origin, hour)."""
    return (
        flights.carrier + "_" + flights.flight.astype(str) + "_" + flights.origin
        + "_" + flights.time_hour
    )  # fmt: skip


def test_the_same_arguments_give_the_same_tables() -> None:
    first = multiply(RAW, 4, date(2013, 1, 1), 2)
    again = multiply({k: v.copy() for k, v in RAW.items()}, 4, date(2013, 1, 1), 2)
    for name, table in first.items():
        pd.testing.assert_frame_equal(table, again[name])


def test_every_table_has_n_times_the_rows_and_copy_0_is_the_original() -> None:
    out = multiply(RAW, 3, date(2013, 1, 1), 2)
    for name, table in RAW.items():
        assert len(out[name]) == 3 * len(table), name
    # Each original row comes first among its copies: x1 is the original data, row for row.
    pd.testing.assert_frame_equal(out["flights"].iloc[::3].reset_index(drop=True), FLIGHTS)
    pd.testing.assert_frame_equal(multiply_flights(FLIGHTS, 1), FLIGHTS)


def test_each_copy_has_keys_of_its_own_and_the_same_moments_and_values() -> None:
    out = multiply_flights(FLIGHTS, 3)
    assert flight_ids(out).is_unique
    copy = pd.Series(range(len(out))) % 3
    for key in ("carrier", "origin", "dest"):
        seen = [set(out.loc[copy == k, key]) for k in range(3)]
        assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert set(out.loc[copy == 2, "carrier"]) == {"UA.2", "AA.2", "B6.2"}
    tails = out.loc[copy == 1, "tailnum"]
    assert tails.isna().sum() == 1 and set(tails.dropna()) == {"N14228.1", "N39463.1", "N804JB.1"}
    # Times, flight numbers and measures are those of the original flight, in every copy.
    for column in ("time_hour", "flight", "dep_delay"):
        for k in range(3):
            pd.testing.assert_series_equal(
                out.loc[copy == k, column].reset_index(drop=True),
                FLIGHTS[column],
                check_names=False,
            )


def test_each_copy_finds_its_originals_weather_at_its_own_origins() -> None:
    flights, weather = multiply_flights(FLIGHTS, 3), multiply_weather(WEATHER, 3)
    assert len(weather) == 3 * len(WEATHER)
    assert not weather.duplicated(["origin", "time_hour"]).any()  # the source's unique key
    joined = flights.merge(weather, on=["origin", "time_hour"], how="left", validate="m:1")
    original = FLIGHTS.merge(WEATHER, on=["origin", "time_hour"], how="left")
    copy = pd.Series(range(len(joined))) % 3
    for k in range(3):
        pd.testing.assert_series_equal(
            joined.loc[copy == k, "temp"].reset_index(drop=True), original["temp"]
        )


def test_only_the_days_asked_for_are_kept() -> None:
    assert len(within_days(FLIGHTS, date(2013, 1, 1), 1)) == 3
    assert len(multiply(RAW, 2, date(2013, 1, 2), 1)["flights"]) == 2


def test_the_scaled_use_case_accepts_the_copies_and_leaves_the_shipped_one_alone(
    tmp_path: Path,
) -> None:
    from airloop.usecase.model import load_usecase, resolve_usecase_path

    shipped = resolve_usecase_path("flights")
    before = shipped.read_text()
    spec = yaml.safe_load(before)
    files = {t: tmp_path / f"{t}.parquet" for t in RAW}
    path = tmp_path / "usecase.yaml"
    path.write_text(yaml.safe_dump(scaled_usecase(spec, 3, files, date(2013, 1, 1), 2)))
    usecase = load_usecase(str(path))
    assert usecase.name == "flights_x3"
    assert usecase.sources["flights"].max_rows == 3 * spec["sources"]["flights"]["max_rows"]
    assert usecase.sources["weather"].max_rows == 3 * spec["sources"]["weather"]["max_rows"]
    origin = usecase.sources["flights"].column("origin")
    assert origin is not None and set(origin.values or []) == {
        f"{o}{s}" for o in ("EWR", "JFK", "LGA") for s in ("", ".1", ".2")
    }
    assert usecase.replay is not None
    assert usecase.replay.sources["departures"].path == str(files["flights"])
    assert shipped.read_text() == before


def test_a_scale_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="1 or more"):
        multiply_flights(FLIGHTS, 0)
    with pytest.raises(ValueError, match="not in the frame"):
        multiply_weather(FLIGHTS.drop(columns="origin"), 2)


def test_the_demos_use_case_monitors_and_serves_as_shipped_on_the_copies(tmp_path: Path) -> None:
    from airloop.usecase.model import load_usecase, resolve_usecase_path

    shipped = yaml.safe_load(resolve_usecase_path("flights").read_text())
    files = {t: tmp_path / f"{t}.parquet" for t in RAW}
    scaled = scaled_usecase(shipped, 3, files, date(2013, 1, 1), 35)
    demo = demo_variant(scaled, shipped)
    assert demo["monitoring"] == shipped["monitoring"]
    assert ("serving" in demo) == ("serving" in shipped)
    assert list(demo) == [k for k in scaled if k in demo]  # the sections keep their order
    for kept in ("name", "sources", "replay"):
        assert demo[kept] == scaled[kept]
    assert scaled["monitoring"]["min_rows"] == 500  # the stage benchmark's, left alone
    path = tmp_path / "usecase-demo.yaml"
    path.write_text(yaml.safe_dump(demo, sort_keys=False))
    usecase = load_usecase(str(path))
    assert usecase.name == "flights_x3"
    assert usecase.monitoring.min_rows == shipped["monitoring"]["min_rows"]


def test_the_demos_use_case_is_written_beside_the_copies_once(tmp_path: Path) -> None:
    path = prepare_demo(2, date(2013, 1, 1), 2, cache=tmp_path, raw=RAW)
    assert path.name == "usecase-demo.yaml"
    assert (path.parent / "usecase.yaml").is_file()
    assert (path.parent / "flights.parquet").is_file()
    spec = yaml.safe_load(path.read_text())
    assert spec["replay"]["end"] == "2013-01-03"
    written = path.stat().st_mtime_ns
    assert prepare_demo(2, date(2013, 1, 1), 2, cache=tmp_path, raw=RAW) == path
    assert path.stat().st_mtime_ns == written
