"""Where the demo's time went: the phase stopwatch, the profile written as ``profile.json`` (the
benchmarks read it) and its lines in the summary; the traffic counted per model version.
Seconds are given to the stopwatch, never measured: no test here depends on a clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airloop.core.files import write_json
from airloop.core.stopwatch import Stopwatch
from airloop.demo.growth import tree_bytes
from airloop.demo.lifecycle import CALLS
from airloop.demo.main import DemoWindow, processor_seconds, profile_lines, profile_of
from airloop.demo.traffic import Traffic
from airloop.runtime.services import Services
from airloop.settings import Settings


def days(first: int, n: int) -> list[tuple[datetime, datetime]]:
    start = datetime(2013, 1, first, tzinfo=UTC)
    return [(start + timedelta(days=i), start + timedelta(days=i + 1)) for i in range(n)]


WINDOW = DemoWindow(days(1, 3), days(4, 2))


# -- the stopwatch ----------------------------------------------------------------------------
def test_a_phase_adds_up_its_entries_and_keeps_the_order_phases_first_ran() -> None:
    watch = Stopwatch()
    watch.add("starting the servers", 4.0)
    watch.add("bootstrap: feature pipeline", 1.0)
    watch.add("starting the servers", 2.0)
    assert watch.as_dict() == {
        "starting the servers": {"seconds": 6.0, "count": 2, "mean": 3.0},
        "bootstrap: feature pipeline": {"seconds": 1.0, "count": 1, "mean": 1.0},
    }
    assert list(watch.as_dict()) == ["starting the servers", "bootstrap: feature pipeline"]


def test_a_block_that_raises_is_still_counted() -> None:
    watch = Stopwatch()
    with pytest.raises(RuntimeError), watch.phase("monitored: retraining run"):
        raise RuntimeError("model_training failed")
    with watch.phase("monitored: retraining run"):
        pass
    assert list(watch.as_dict()) == ["monitored: retraining run"]
    assert watch.counts == {"monitored: retraining run": 2}


def test_the_figures_are_rounded_for_people_and_files() -> None:
    watch = Stopwatch()
    watch.add("x", 1.23456)
    watch.add("x", 1.0)
    assert watch.as_dict()["x"] == {"seconds": 2.23, "count": 2, "mean": 1.117}


# -- the profile ------------------------------------------------------------------------------
def test_the_profile_says_the_window_it_was_measured_on() -> None:
    watch = Stopwatch()
    watch.add("bootstrap: first champion", 30.0)
    served = Traffic(sent=10, predicted=9, refused=1, versions={"1": 9}, refusal="422: bad")
    stores = {"start": {"online_lookup_ms": 1.5}}
    profile = profile_of(watch, WINDOW, stores, served, seconds=123.456)
    assert profile == {
        "seconds": 123.5,
        "bootstrap_intervals": 3,
        "monitored_intervals": 2,
        "first": "2013-01-01T00:00:00+00:00",
        "last": "2013-01-06T00:00:00+00:00",
        "phases": {"bootstrap: first champion": {"seconds": 30.0, "count": 1, "mean": 30.0}},
        "stores": stores,
        "served": {
            "sent": 10,
            "predicted": 9,
            "refused": 1,
            "versions": {"1": 9},
            "refusal": "422: bad",
        },
    }


def test_a_profile_of_a_replay_that_stopped_early_has_empty_figures_not_missing_ones() -> None:
    """The profile is written whichever way the demo ends, before the stores were measured."""
    profile = profile_of(Stopwatch(), WINDOW)
    assert profile["seconds"] is None
    assert profile["stores"] == {} and profile["phases"] == {}
    assert profile["served"] == {
        "sent": 0,
        "predicted": 0,
        "refused": 0,
        "versions": {},
        "refusal": None,
    }


def test_the_profile_is_json_as_the_benchmarks_read_it(tmp_path: Path) -> None:
    watch = Stopwatch()
    watch.add(CALLS, 0.5)
    profile = profile_of(watch, WINDOW, None, Traffic(sent=1, predicted=1, versions={"2": 1}), 9.0)
    profile["processes"] = {"scheduler": {"own": 1.0, "started": 2.0}}
    back = json.loads(write_json(tmp_path / "profile.json", profile).read_text())
    assert back == profile
    assert back["phases"][CALLS]["count"] == 1


def test_the_process_times_include_the_demo_itself(tmp_path: Path) -> None:
    spent = processor_seconds(Services(Settings(home=tmp_path), components=[]))
    assert list(spent) == ["airloop demo"]
    assert set(spent["airloop demo"]) == {"own", "started"}
    assert spent["airloop demo"]["own"] >= 0 and spent["airloop demo"]["started"] >= 0


def test_a_stores_size_is_the_bytes_of_its_files_and_none_when_it_is_not_there(
    tmp_path: Path,
) -> None:
    assert tree_bytes(tmp_path / "absent") is None
    (tmp_path / "registry.db").write_bytes(b"x" * 10)
    partition = tmp_path / "log" / "2013-01-01"
    partition.mkdir(parents=True)
    (partition / "part-0.parquet").write_bytes(b"y" * 7)
    (tmp_path / "log" / "index").write_bytes(b"z" * 5)
    (tmp_path / "empty").mkdir()
    assert tree_bytes(tmp_path / "registry.db") == 10
    assert tree_bytes(tmp_path / "log") == 12  # nested partitions counted
    assert tree_bytes(tmp_path / "empty") == 0


# -- the summary's lines ----------------------------------------------------------------------
def test_monitored_phases_are_also_said_per_interval() -> None:
    watch = Stopwatch()
    watch.add("bootstrap: feature pipeline", 12.0)
    watch.add("monitored: serving the interval's events", 30.0)
    watch.add("monitored: serving the interval's events", 10.0)
    assert profile_lines(watch, monitored=4) == [
        f"{'bootstrap: feature pipeline':<48}    12.0 s",
        f"{'monitored: serving the interval' + chr(39) + 's events':<48}    40.0 s"
        "  (10.0 s per interval)",
    ]


def test_no_monitored_interval_is_no_division() -> None:
    watch = Stopwatch()
    watch.add("monitored: monitoring decision", 3.0)
    assert profile_lines(watch, monitored=0) == [
        f"{'monitored: monitoring decision':<48}     3.0 s"
    ]


# -- traffic ----------------------------------------------------------------------------------
def test_answers_are_counted_under_the_version_that_made_them() -> None:
    traffic = Traffic()
    traffic.answered({"predictions": [{"score": 0.1}] * 3, "model": {"version": 1}})
    traffic.answered({"predictions": [{"score": 0.2}] * 2, "model": {"version": "2"}})
    traffic.answered({"predictions": [{"score": 0.3}], "model": {"version": 1}})
    assert traffic.predicted == 6
    assert traffic.versions == {"1": 4, "2": 2}


def test_intervals_add_up_and_the_first_refusal_is_kept() -> None:
    total = Traffic()
    total.add(Traffic(sent=5, predicted=5, versions={"1": 5}))
    total.add(Traffic(sent=4, predicted=3, refused=1, versions={"1": 1, "2": 2}, refusal="422: a"))
    total.add(Traffic(sent=2, predicted=1, refused=1, versions={"2": 1}, refusal="422: b"))
    assert total == Traffic(
        sent=11, predicted=9, refused=2, versions={"1": 6, "2": 3}, refusal="422: a"
    )
