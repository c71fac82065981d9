"""``airloop init`` on tables of the shapes exports have: text markers in numbers, calendar
columns, non-ISO times, a date and a time of day; a proposal that holds for its own file,
partition by partition, and features ranked as the model will see them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airloop.initiation import InitError, InitOptions, init_usecase
from airloop.initiation.times import time_parts
from airloop.usecase import UseCase, load_usecase
from tests.builders import replay_through_the_gate


def daily_panel(days: int = 120, seed: int = 0) -> pd.DataFrame:
    """A daily panel of three stations: calendar columns, a rain column with a trace marker
    ('T') on some rows and a whole 0 on others, and a target that yesterday's signal drives."""
    rng = np.random.default_rng(seed)
    rows = []
    for s, station in enumerate(["north", "south", "west"]):
        signal = rng.normal(0, 1, days + 1)
        for i, day in enumerate(pd.date_range("2020-01-01", periods=days, freq="D")):
            rain: Any = 0 if i % 10 < 5 else round(float(rng.gamma(1, 2)), 1)
            if i % 10 == 7:
                rain = "T"
            rows.append(
                {
                    "station": station,
                    "date": day.strftime("%Y-%m-%d"),
                    "year": day.year,
                    "month": day.month,
                    "day": day.day,
                    "signal": round(float(signal[i]), 3),
                    "noise": round(float(rng.normal(0, 1)), 3),
                    "now": 0.0,  # set below: moves with the row's own target
                    "rain": rain,
                    "wet": bool(signal[i - 1] > 0.2) if i else bool(s % 2),
                }
            )
    df = pd.DataFrame(rows)
    df["now"] = df["wet"].astype(float) + rng.normal(0, 0.8, len(df)).round(3)
    return df


def init(tmp_path: Path, df: pd.DataFrame, **kw: Any) -> UseCase:
    data = tmp_path / "data.csv"
    df.to_csv(data, index=False)
    args: dict[str, Any] = {
        "name": "stations",
        "data": data,
        "entity": ["station"],
        "timestamp": "date",
        "target": "wet",
        "into": tmp_path / "case",
    }
    init_usecase(InitOptions(**{**args, **kw}))
    return load_usecase(str(tmp_path / "case"))


def test_a_numeric_column_with_a_text_marker_stays_a_number(tmp_path: Path) -> None:
    usecase = init(tmp_path, daily_panel())
    rain = usecase.sources["data"].column("rain")
    assert rain is not None and rain.type == "number" and rain.na_values == ["T"]
    profile = json.loads((tmp_path / "case" / "profile.json").read_text())
    [column] = [c for c in profile["columns"] if c["name"] == "rain"]
    assert column["markers"] == [["T", 36]] and column["role"] == "measurement"
    readme = (tmp_path / "case" / "usecase.yaml").read_text()
    assert "Column 'rain' holds numbers and, on 36 rows" in readme.replace("\n#     ", " ")


def test_replaying_the_file_init_was_built_from_quarantines_nothing(tmp_path: Path) -> None:
    """Days of plain zeros and days with the marker, each read as a partition of its own."""
    usecase = init(tmp_path, daily_panel(days=30))
    assert replay_through_the_gate(usecase, tmp_path / "home") == []


def test_calendar_columns_are_time_encodings_not_features(tmp_path: Path) -> None:
    usecase = init(tmp_path, daily_panel())
    profile = json.loads((tmp_path / "case" / "profile.json").read_text())
    columns = {c["name"]: c for c in profile["columns"]}
    assert columns["year"]["role"] == "constant"  # 2020 only
    assert (
        columns["month"]["follows"] == "month" and columns["day"]["follows"] == "day of the month"
    )
    assert {columns[c]["role"] for c in ("month", "day")} == {"time_encoding"}
    findings = {f["column"]: f["message"] for f in profile["findings"] if f["column"]}
    assert "it follows the day of the month" in findings["day"]
    inputs = [c.split("__")[-1] for c in usecase.model_inputs]
    assert not {"year", "month", "day"} & set(inputs)
    assert not [c for c in inputs if c.startswith(("month_", "day_", "year_"))]
    # the calendar of the event's time is what the model gets instead
    assert set(usecase.events.calendar_features) <= set(usecase.model_inputs)
    lags = next(v for v in usecase.feature_views if v.name == "station_lags")
    assert set(lags.columns) == {"signal", "noise", "now", "rain"}  # type: ignore[attr-defined]


def test_relevance_is_measured_on_what_a_lag_knows(tmp_path: Path) -> None:
    """``now`` moves with the row's own target (a lag of it knows nothing); yesterday's
    ``signal`` drives today's target: the ranking puts signal first, and windows it."""
    usecase = init(tmp_path, daily_panel(days=200))
    profile = json.loads((tmp_path / "case" / "profile.json").read_text())
    ranked = [r["column"] for r in profile["relevance"]]
    assert ranked[0] == "signal" and ranked.index("now") > 0
    stats = next(v for v in usecase.feature_views if v.kind == "aggregate")
    assert stats.aggregates[0].column == "signal"  # type: ignore[attr-defined]


def test_time_parts_tell_a_date_and_a_time_from_a_year_and_a_month() -> None:
    frame = pd.DataFrame({"y": [2020, 2021], "m": [1, 2], "d": ["2020-01-01", "x"]})
    assert time_parts(frame, {"year": "y", "month": "m"}) == {"year": "y", "month": "m"}
    assert time_parts(frame, {"year": "d", "month": "m"}) == {"date": "d", "time": "m"}


def test_a_date_and_a_time_of_day_make_the_timestamp(tmp_path: Path) -> None:
    df = daily_panel(days=20)
    stamps = pd.to_datetime(df["date"]) + pd.to_timedelta(np.arange(len(df)) % 3 * 8, unit="h")
    df = df.assign(day_of=stamps.dt.strftime("%d/%m/%Y"), clock=stamps.dt.strftime("%-H:%M"))
    df = df.drop(columns=["date"])
    usecase = init(tmp_path, df, timestamp="day_of+clock")
    [derived] = [d for d in usecase.sources["data"].derive if d.key == "date_time"]
    assert derived.date_time.date_format == "%d/%m/%Y"  # type: ignore[attr-defined]
    assert usecase.events.timestamp == derived.name
    assert replay_through_the_gate(usecase, tmp_path / "home") == []


def test_a_non_iso_timestamp_is_read_in_the_one_form_that_fits(tmp_path: Path) -> None:
    df = daily_panel(days=20)
    df["date"] = pd.to_datetime(df["date"]).dt.strftime("%d/%m/%Y")  # days past 12: one form
    usecase = init(tmp_path, df)
    column = usecase.sources["data"].column("date")
    assert column is not None and column.format == "%d/%m/%Y"
    assert replay_through_the_gate(usecase, tmp_path / "home") == []


def test_an_ambiguous_form_is_chosen_with_timestamp_format(tmp_path: Path) -> None:
    df = daily_panel(days=12)
    df["date"] = pd.to_datetime(df["date"]).dt.strftime("%m/%d/%Y")  # Jan 1-12: both read
    with pytest.raises(InitError, match="read differently as %d/%m/%Y or %m/%d/%Y"):
        init(tmp_path, df)
    usecase = init(tmp_path, df, timestamp_format="%m/%d/%Y")
    column = usecase.sources["data"].column("date")
    assert column is not None and column.format == "%m/%d/%Y"
    assert usecase.replay is not None and str(usecase.replay.start) == "2020-01-01"


def test_a_label_delay_of_zero_is_refused_as_the_users(tmp_path: Path) -> None:
    with pytest.raises(InitError, match=r"--label-delay '0d': .* longer than 0") as caught:
        init(tmp_path, daily_panel(days=30), label_delay="0d")
    assert "bug" not in str(caught.value)


@pytest.mark.parametrize(
    ("written", "form", "first"),
    [
        (lambda d: d.strftime("%Y %b"), "%Y %b", "2020-01-01"),  # months as 1939 Jan
        # ISO weeks, read as their Monday (30 Dec 2019); weekly intervals start on Sundays
        (lambda d: d.strftime("%G W%V"), "%G W%V", "2019-12-29"),
        (lambda d: d.strftime("%b %d %Y"), "%b %d %Y", "2020-01-01"),  # Jan 01 2020
        (lambda d: d.strftime("%y%m%d").lstrip("0"), "%y%m%d", "2020-01-01"),  # numbers
    ],
    ids=["months", "iso-weeks", "month-names", "yymmdd-numbers"],
)
def test_common_time_forms_are_recognised_and_declared(
    tmp_path: Path, written: Any, form: str, first: str
) -> None:
    frame = daily_panel(days=400)
    stamps = pd.to_datetime(frame["date"])
    frame = frame.assign(date=stamps.map(written))
    if form == "%y%m%d":
        frame["date"] = frame["date"].astype(int)
    frame = frame.drop_duplicates(["station", "date"]).drop(columns=["year", "month", "day"])
    usecase = init(tmp_path, frame)
    column = usecase.sources["data"].column("date")
    assert column is not None and column.format == form
    assert usecase.replay is not None and str(usecase.replay.start) == first


def test_a_timestamp_format_that_is_no_format_is_refused_as_the_users(tmp_path: Path) -> None:
    with pytest.raises(InitError, match=r"--timestamp-format: timestamp format '%Q'"):
        init(tmp_path, daily_panel(days=20), timestamp_format="%Q")


def test_a_text_column_observed_with_the_outcome_is_not_a_request_field(tmp_path: Path) -> None:
    """``sky`` is written on the day it rains (within a station, it tells the day's outcome):
    not known before, so neither a request field nor a model input; ``kind`` (random) is."""
    frame = daily_panel(days=120)
    rng = np.random.default_rng(5)
    frame["sky"] = np.where(frame["wet"], "Rain", None)
    frame["kind"] = rng.choice(["a", "b", "c"], len(frame))
    usecase = init(tmp_path, frame)
    assert "sky" not in usecase.events.request_fields and "kind" in usecase.events.request_fields
    profile = json.loads((tmp_path / "case" / "profile.json").read_text())
    [sky] = [c for c in profile["columns"] if c["name"] == "sky"]
    assert sky["role"] == "leak"


def test_a_numeric_target_is_learnt_relative_to_its_last_value(tmp_path: Path) -> None:
    frame = daily_panel(days=60)
    usecase = init(tmp_path, frame, target="signal", task="regression")
    assert usecase.training.relative_to == "station_lags__signal_lag_1d"
    assert usecase.training.relative_to in usecase.model_inputs
    plain, baseline = usecase.training.candidates
    assert (plain.family, plain.views) == ("linear", [])
    assert (baseline.family, baseline.views) == ("linear", ["station_lags"])


def test_a_spread_needs_two_known_rows_in_its_window(tmp_path: Path) -> None:
    """One row a week, known a week late: a two-week window holds one known row, whose
    spread is always missing (the training-set gate would refuse the feature)."""
    frame = daily_panel(days=700)
    weekly = frame[pd.to_datetime(frame["date"]).dt.dayofweek == 0]
    weekly = weekly[weekly["station"] == "north"].drop(columns=["year", "month", "day"])
    usecase = init(tmp_path, weekly, target="signal", task="regression")
    labels = next(v for v in usecase.feature_views if v.kind == "label_rate")
    assert [str(w) for w in labels.windows] == ["28d", "91d"]  # type: ignore[attr-defined]
