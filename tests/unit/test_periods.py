"""Spans that count calendar months, and cadences that cut intervals as Airflow's timetable."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from pydantic import BaseModel

from airloop.core.periods import Cadence, Span


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("30m", Span(delta=timedelta(minutes=30))),
        ("6h", Span(delta=timedelta(hours=6))),
        ("7d", Span(delta=timedelta(days=7))),
        ("2w", Span(delta=timedelta(weeks=2))),
        ("3mo", Span(months=3)),
        (" 12 mo ", Span(months=12)),
    ],
)
def test_a_span_is_written_in_units_people_use(text: str, span: Span) -> None:
    assert Span.parse(text) == span


@pytest.mark.parametrize("text", ["3 months", "1y", "-2d", "d", ""])
def test_an_unknown_unit_names_the_accepted_ones(text: str) -> None:
    with pytest.raises(ValueError, match="'30m', '6h', '7d', '2w' or '3mo'"):
        Span.parse(text)


def test_a_month_is_a_calendar_month_not_thirty_days() -> None:
    month = Span.parse("1mo")
    assert utc(2003, 3, 31) - month == utc(2003, 2, 28)
    assert utc(2003, 1, 31) + month == utc(2003, 2, 28)
    assert pd.Timestamp("2004-03-01", tz="UTC") - Span.parse("12mo") == pd.Timestamp(
        "2003-03-01", tz="UTC"
    )
    assert date(2003, 1, 15) + month == date(2003, 2, 15)
    series = pd.Series(pd.to_datetime(["2003-01-01", "2003-02-01"], utc=True))
    assert list(month.after(series)) == list(pd.to_datetime(["2003-02-01", "2003-03-01"], utc=True))


def test_spans_order_add_and_name_themselves() -> None:
    windows = [Span.parse("12mo"), Span.parse("7d"), Span.parse("3mo")]
    assert max(windows) == Span.parse("12mo")
    assert [w.suffix() for w in sorted(windows)] == ["7d", "3mo", "12mo"]
    assert Span.parse("3mo") + Span.parse("1mo") == Span.parse("4mo")
    assert Span.parse("1d") + timedelta(hours=6) == Span(delta=timedelta(hours=30))
    assert str(Span(delta=timedelta(hours=30))) == "30h"
    assert Span.parse("2mo").longest == timedelta(days=62)
    with pytest.raises(ValueError, match="not months"):
        Span.parse("2mo").exact("gates.approval_timeout")


def test_a_span_validates_and_serialises_in_a_pydantic_model() -> None:
    class Spec(BaseModel):
        window: Span

    spec = Spec.model_validate({"window": "3mo"})
    assert spec.window == Span(months=3)
    assert spec.model_dump(mode="json") == {"window": "3mo"}
    assert Spec(window=timedelta(days=2)).window == Span.parse("2d")  # type: ignore[arg-type]


def test_a_monthly_cadence_cuts_calendar_months() -> None:
    monthly = Cadence.of("@monthly")
    assert monthly.intervals("2003-01-15", "2003-04-01") == [
        (utc(2003, 1, 1), utc(2003, 2, 1)),
        (utc(2003, 2, 1), utc(2003, 3, 1)),
        (utc(2003, 3, 1), utc(2003, 4, 1)),
    ]
    assert monthly.count("2003-12", 2) == [
        (utc(2003, 12, 1), utc(2004, 1, 1)),
        (utc(2004, 1, 1), utc(2004, 2, 1)),
    ]
    assert monthly.step == Span.parse("1mo")
    assert monthly.label(utc(2003, 2, 1)) == "2003-02"


def test_daily_hourly_weekly_and_cron_cadences_hold_any_moment() -> None:
    assert Cadence.of("@daily").interval_at(utc(2013, 1, 5, 13)) == (
        utc(2013, 1, 5),
        utc(2013, 1, 6),
    )
    assert Cadence.of("@hourly").interval_at("2013-01-05T13:20") == (
        utc(2013, 1, 5, 13),
        utc(2013, 1, 5, 14),
    )
    # Airflow's @weekly is Sunday midnight
    assert Cadence.of("@weekly").interval_at("2013-01-02") == (utc(2012, 12, 30), utc(2013, 1, 6))
    six_hourly = Cadence.of("0 */6 * * *")
    assert six_hourly.step == Span.parse("6h")
    assert len(six_hourly.intervals("2013-01-01", "2013-01-02")) == 4


def test_a_schedule_that_is_no_cadence_says_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="@hourly, @daily, @weekly, @monthly or a cron"):
        Cadence.of("every tuesday")


def test_a_span_without_months_equals_its_timedelta() -> None:
    assert Span.parse("6h") == timedelta(hours=6)
    assert hash(Span.parse("6h")) == hash(timedelta(hours=6))
    assert Span.parse("1mo") != timedelta(days=30)


def test_the_interval_a_scheduler_runs_within_a_stretch_of_time_is_its_last_to_end() -> None:
    twice_a_month = Cadence.of("0 0 1,15 * *")
    # A day whose end is the 1st: the interval from the 15th ends there.
    assert twice_a_month.ending_within(utc(2013, 1, 31), utc(2013, 2, 1)) == (
        utc(2013, 1, 15),
        utc(2013, 2, 1),
    )
    # The next day holds no end; an end at the stretch's start belongs to the stretch before.
    assert twice_a_month.ending_within(utc(2013, 2, 1), utc(2013, 2, 2)) is None
    # A month holds two ends: the later one is the run to make.
    assert twice_a_month.ending_within(utc(2013, 1, 1), utc(2013, 2, 1)) == (
        utc(2013, 1, 15),
        utc(2013, 2, 1),
    )
    weekly = Cadence.of("@weekly")  # Sundays, 00:00 UTC
    assert weekly.ending_within(utc(2013, 1, 26), utc(2013, 1, 27)) == (
        utc(2013, 1, 20),
        utc(2013, 1, 27),
    )
    assert weekly.ending_within(utc(2013, 1, 27), utc(2013, 1, 28)) is None
    monthly = Cadence.of("@monthly")
    assert monthly.ending_within(utc(2013, 3, 1), utc(2013, 4, 1)) == (
        utc(2013, 3, 1),
        utc(2013, 4, 1),
    )
