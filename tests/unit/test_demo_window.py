"""``airloop demo``'s window: which intervals train the first champion and which are served and
monitored, for a daily and a monthly use case; the command's options; how a stopped replay is
said. No Airflow: the window is arithmetic, and the replay itself is stood in for by a recorder
that stops it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from airloop.cli import app
from airloop.cli.stack import demo_window
from airloop.core.periods import Interval
from airloop.demo.main import DemoStopped, DemoWindow
from airloop.usecase import UseCase


def utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def contiguous(intervals: list[Interval]) -> bool:
    return all(a[1] == b[0] for a, b in pairwise(intervals))


@pytest.fixture
def monthly(flights: UseCase) -> UseCase:
    """The flights use case cut into months (its replay: 2013-01-01 .. 2013-12-31)."""
    return flights.model_copy(update={"schedule": "@monthly"})


# -- daily ------------------------------------------------------------------------------------
def test_a_daily_window_trains_on_the_first_window_then_monitors_the_days_after(
    flights: UseCase,
) -> None:
    window = demo_window(flights, None, None, 3, year=False)
    assert window.bootstrap[0] == (utc(2013, 1, 1), utc(2013, 1, 2))
    assert window.bootstrap[-1] == (utc(2013, 1, 21), utc(2013, 1, 22))
    assert contiguous(window.bootstrap) and len(window.bootstrap) == 21
    # Serving starts where training ends: no day both trains the champion and is monitored.
    assert window.monitored == [
        (utc(2013, 1, 22), utc(2013, 1, 23)),
        (utc(2013, 1, 23), utc(2013, 1, 24)),
        (utc(2013, 1, 24), utc(2013, 1, 25)),
    ]
    assert (window.first, window.split, window.last) == (
        utc(2013, 1, 1),
        utc(2013, 1, 22),
        utc(2013, 1, 25),
    )


def test_start_is_a_moment_within_the_first_interval(flights: UseCase) -> None:
    window = demo_window(flights, "2013-03-05T06:30", 2, 1, year=False)
    assert window.bootstrap == [
        (utc(2013, 3, 5), utc(2013, 3, 6)),
        (utc(2013, 3, 6), utc(2013, 3, 7)),
    ]
    assert window.monitored == [(utc(2013, 3, 7), utc(2013, 3, 8))]


def test_year_monitors_to_the_replays_end_whatever_the_count(flights: UseCase) -> None:
    window = demo_window(flights, "2013-12-01", 7, 1, year=True)
    assert window.split == utc(2013, 12, 8)
    assert window.monitored[0] == (utc(2013, 12, 8), utc(2013, 12, 9))
    assert window.monitored[-1] == (utc(2013, 12, 30), utc(2013, 12, 31))  # end exclusive
    assert contiguous(window.monitored) and len(window.monitored) == 23


@pytest.mark.parametrize(
    ("start", "count", "year"),
    [
        (None, 0, False),  # -n 0
        ("2013-12-20", 14, True),  # the first champion's window already reaches past the end
    ],
)
def test_a_window_with_nothing_to_monitor_is_refused_naming_where(
    flights: UseCase, start: str | None, count: int, year: bool
) -> None:
    with pytest.raises(typer.BadParameter, match=r"nothing to monitor after \d{4}-\d\d-\d\d"):
        demo_window(flights, start, None, count, year=year)


def test_a_start_that_is_not_a_moment_is_refused_naming_the_option(flights: UseCase) -> None:
    with pytest.raises(typer.BadParameter, match="--start 'last tuesday'"):
        demo_window(flights, "last tuesday", None, 3, year=False)


# -- monthly ----------------------------------------------------------------------------------
def test_a_monthly_window_counts_months(monthly: UseCase) -> None:
    # The first window (21 days from 1 January) lies within January: one month to train on.
    window = demo_window(monthly, None, None, 3, year=False)
    assert window.bootstrap == [(utc(2013, 1, 1), utc(2013, 2, 1))]
    assert window.monitored == [
        (utc(2013, 2, 1), utc(2013, 3, 1)),
        (utc(2013, 3, 1), utc(2013, 4, 1)),
        (utc(2013, 4, 1), utc(2013, 5, 1)),
    ]
    assert [monthly.cadence.label(lo) for lo, _ in window.monitored] == [
        "2013-02",
        "2013-03",
        "2013-04",
    ]


def test_a_monthly_start_mid_month_takes_the_whole_month_and_the_one_the_window_reaches(
    monthly: UseCase,
) -> None:
    # 15 January + 21 days reaches into February: both months train the first champion.
    window = demo_window(monthly, "2013-01-15", None, 1, year=False)
    assert window.bootstrap == [
        (utc(2013, 1, 1), utc(2013, 2, 1)),
        (utc(2013, 2, 1), utc(2013, 3, 1)),
    ]
    assert window.monitored == [(utc(2013, 3, 1), utc(2013, 4, 1))]


def test_a_monthly_year_ends_with_the_month_that_holds_the_replays_end(monthly: UseCase) -> None:
    window = demo_window(monthly, None, 2, 1, year=True)
    assert window.split == utc(2013, 3, 1)
    assert [lo.month for lo, _ in window.monitored] == list(range(3, 13))
    assert window.last == utc(2014, 1, 1)


def test_a_window_without_monitored_intervals_ends_where_training_does() -> None:
    window = DemoWindow([(utc(2013, 1, 1), utc(2013, 1, 2))], [])
    assert window.last == window.split == utc(2013, 1, 2)


# -- the command ------------------------------------------------------------------------------
@pytest.fixture
def stopped(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``run_demo`` was asked to replay; the replay then stops as a failed run stops it."""
    asked: list[dict[str, Any]] = []

    def record(settings: Any, usecase: Any, window: DemoWindow, trials: int, echo: Any) -> None:
        asked.append({"window": window, "trials": trials, "replay_end": settings.replay_end})
        raise DemoStopped("feature_pipeline run manual__x failed\n  validate_partition failed")

    monkeypatch.setattr("airloop.demo.main.run_demo", record)
    return asked


def test_the_options_make_the_window_and_a_stopped_replay_is_said_with_exit_1(
    home: Path, stopped: list[dict[str, Any]]
) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--start", "2013-02-10", "--train-days", "5", "--days", "4", "--trials", "0"]
    )
    assert result.exit_code == 1, result.output
    [asked] = stopped
    window = asked["window"]
    assert window.bootstrap == [(utc(2013, 2, d), utc(2013, 2, d + 1)) for d in range(10, 15)]
    assert window.monitored == [(utc(2013, 2, d), utc(2013, 2, d + 1)) for d in range(15, 19)]
    assert asked["trials"] == 0
    assert asked["replay_end"] is None  # within the replay: the DAGs' end stays
    assert (
        "airloop demo: use case 'flights', first champion on 2013-02-10 .. 2013-02-15, then 4"
        " daily intervals served and monitored to 2013-02-19" in result.stdout
    )
    assert result.stderr == (
        "the replay stopped: feature_pipeline run manual__x failed\n  validate_partition failed\n"
    )


def test_the_short_option_names_and_defaults(home: Path, stopped: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["demo", "-n", "2", "--train-intervals", "3"])
    assert result.exit_code == 1, result.output
    [asked] = stopped
    assert [lo.day for lo, _ in asked["window"].bootstrap] == [1, 2, 3]
    assert [lo.day for lo, _ in asked["window"].monitored] == [4, 5]
    assert asked["trials"] == 3  # the default experiment


def test_a_window_past_the_replays_end_moves_the_dags_end_with_it(
    home: Path, stopped: list[dict[str, Any]]
) -> None:
    """The DAGs stop at the replay's end: a window beyond it must carry the end along, or its
    runs would never be scheduled."""
    result = CliRunner().invoke(app, ["demo", "--start", "2013-12-25", "-n", "3", "--trials", "0"])
    assert result.exit_code == 1, result.output
    [asked] = stopped
    assert asked["window"].last == utc(2014, 1, 18)
    assert asked["replay_end"] == date(2014, 1, 18)
