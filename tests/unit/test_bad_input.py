"""Bad input is refused before it is used, with a report that names the file or the field.

Raw files that cannot be read whole (truncated, garbled, in another encoding), a schema that
changed in the middle of the year, a partition landed twice with other contents, and run
parameters that Airflow's Param schemas cannot refuse (a window in the future, a key no Param
declares). The gate and the pipeline stages that act on these refusals are run for real in
``tests/integration/test_bad_raw_data.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from airloop.data.landing import RawDataError, read_raw, record_used, relanded, used_record_path
from airloop.settings import Settings
from airloop.usecase import SourceSpec
from airloop.usecase.run_params import (
    RunParamsError,
    check_experiment_params,
    check_training_params,
)

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def spec(**options: Any) -> SourceSpec:
    return SourceSpec.model_validate(
        {
            "partition_by": "day",
            "columns": [
                {"name": "day", "type": "timestamp", "nullable": False},
                {"name": "station", "type": "string"},
                {"name": "rain", "type": "number"},
            ],
            **options,
        }
    )


ROWS = "day,station,rain\n2020-01-02,Zürich,0.5\n2020-01-02,Besançon,1.5\n"


# --- raw files that cannot be read whole ---------------------------------------------------


def test_a_truncated_parquet_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "2020-01-02.parquet"
    frame = pd.DataFrame({"day": ["2020-01-02"] * 50, "station": ["a"] * 50, "rain": [0.5] * 50})
    frame.to_parquet(path, index=False)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(RawDataError) as refused:
        read_raw(path, spec(format="parquet"))
    assert str(path) in str(refused.value)
    assert "unreadable Parquet file" in str(refused.value)
    assert "truncated" in str(refused.value)


def test_a_csv_cut_off_in_the_middle_of_a_row_is_refused_not_read_with_gaps(
    tmp_path: Path,
) -> None:
    path = tmp_path / "part.csv"
    path.write_text(ROWS + "2020-01-02,Ly")  # the writer died mid-row: no final line break

    with pytest.raises(
        RawDataError, match=r"truncated file: .*part\.csv ends in the middle of row 3"
    ):
        read_raw(path, spec())


def test_a_whole_csv_without_a_final_line_break_is_read(tmp_path: Path) -> None:
    path = tmp_path / "part.csv"
    path.write_text(ROWS.rstrip("\n"))
    frame, problems = read_raw(path, spec())
    assert problems == [] and len(frame) == 2


def test_a_garbled_csv_is_refused_naming_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "part.csv"
    path.write_text(ROWS + "2020-01-02,x,1,2,3\n")
    with pytest.raises(RawDataError, match=r"malformed CSV: .*part\.csv.*line 4"):
        read_raw(path, spec())


def test_latin1_bytes_where_utf8_is_expected_are_refused_naming_the_byte_and_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "part.csv"
    path.write_bytes(ROWS.encode("latin-1"))
    with pytest.raises(RawDataError) as refused:
        read_raw(path, spec())
    message = str(refused.value)
    assert f"wrong encoding: {path} is not utf-8 text: byte 0xfc on line 2" in message
    assert "encoding: latin-1" in message  # what to do about it


def test_a_source_that_declares_its_encoding_is_read_correctly(tmp_path: Path) -> None:
    path = tmp_path / "part.csv"
    path.write_bytes(ROWS.encode("latin-1"))
    frame, problems = read_raw(path, spec(encoding="latin-1"))
    assert problems == [] and list(frame["station"]) == ["Zürich", "Besançon"]


def test_an_encoding_must_exist_and_belongs_to_csv_sources() -> None:
    with pytest.raises(ValueError, match="encoding 'utf-9' is not a text encoding"):
        spec(encoding="utf-9")
    with pytest.raises(ValueError, match="encoding is for csv sources"):
        spec(format="parquet", encoding="latin-1")


# --- a schema that changes in the middle of the year ---------------------------------------


def _failures(frame: pd.DataFrame, source: SourceSpec) -> tuple[list[Any], dict[str, Any]]:
    from airloop.quality.expectations import validate_frame

    return validate_frame(frame, source, "weather")


def test_a_new_column_is_ignored_and_listed_or_refused_as_the_source_declares() -> None:
    frame = pd.DataFrame({"day": ["2020-01-02"], "station": ["a"], "rain": [0.5], "snow": [1.0]})
    failures, raw = _failures(frame, spec())
    assert failures == [] and raw["ignored_columns"] == ["snow"]

    failures, _ = _failures(frame, spec(extra_columns="refuse"))
    assert [(f.check, f.column) for f in failures] == [("no_extra_columns", "snow")]
    assert "extra_columns: refuse" in failures[0].reason


def test_a_renamed_column_is_refused_naming_the_missing_and_the_unexpected_column() -> None:
    frame = pd.DataFrame({"day": ["2020-01-02"], "station_id": ["a"], "rain": [0.5]})
    failures, _ = _failures(frame, spec())
    [missing] = failures
    assert missing.check == "column_to_exist" and missing.column == "station"
    assert "column 'station' is missing" in missing.reason
    assert "columns the use case does not declare: ['station_id'] (renamed?)" in missing.reason


# --- a partition landed twice with other contents ------------------------------------------


def _staged(tmp_path: Path, text: str) -> dict[str, Any]:
    import hashlib

    staged = tmp_path / "staging" / "weather.csv"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_text(text)
    return {
        "uri": str(staged),
        "landed": "/landing/flights/weather/2013-01-03.csv",
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "bytes": len(text),
    }


def test_the_record_says_which_files_were_used_and_keeps_each_partition(
    tmp_path: Path, flights
) -> None:
    settings = Settings(home=tmp_path)
    start, end = datetime(2013, 1, 3, tzinfo=UTC), datetime(2013, 1, 4, tzinfo=UTC)
    used = _staged(tmp_path, "origin,temp\nEWR,1.0\n")
    path = record_used(settings, flights, start, end, {"weather": used}, {"run_id": "r1"})

    assert path == used_record_path(settings, flights, start)
    import json

    record = json.loads(path.read_text())
    assert record["partition"] == "2013-01-03" and record["run"]["run_id"] == "r1"
    assert record["files"]["weather"]["sha256"] == used["sha256"]
    kept = Path(record["files"]["weather"]["kept"])
    Path(used["uri"]).unlink()  # staging is rewritten by the next snapshot: the copy stays
    assert kept.read_text() == "origin,temp\nEWR,1.0\n"

    assert relanded(settings, flights, start, {"weather": used}) == []
    other = _staged(tmp_path, "origin,temp\nEWR,9.0\n")
    [found] = relanded(settings, flights, start, {"weather": other})
    assert (found.sha256, found.used_sha256, found.kept) == (
        other["sha256"],
        used["sha256"],
        str(kept),
    )
    assert str(kept) in found.reason and other["landed"] in found.reason
    # a file that was missing when the interval ran is late, not landed twice
    assert relanded(settings, flights, start, {"weather": {"missing": "x"}}) == []


def test_without_a_record_nothing_counts_as_landed_twice(tmp_path: Path, flights) -> None:
    settings = Settings(home=tmp_path)
    start = datetime(2013, 1, 3, tzinfo=UTC)
    assert relanded(settings, flights, start, {"weather": _staged(tmp_path, "a\n1\n")}) == []


# --- run parameters ---------------------------------------------------------------------------


GOOD_EXPERIMENT = {
    "window_start": "2013-01-01",
    "window_end": "2013-02-01",
    "model_family": "hist_gradient_boosting",
    "search_space": {"max_depth": [3, 5]},
    "n_trials": 3,
    "metric": "roc_auc",
    "seed": 7,
}


def test_good_parameters_pass(flights) -> None:
    check_experiment_params(GOOD_EXPERIMENT, flights, NOW)
    check_training_params({"window_start": None, "window_end": None, "config": {}}, flights, NOW)
    check_training_params(
        {
            "window_start": "2013-01-01",
            "window_end": "2013-02-01",
            "config": {"family": "logistic", "params": {"C": 1.0}},
        },
        flights,
        NOW,
    )


EXPERIMENT_CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "wrong type": ({"n_trials": "3"}, "n_trials", "whole number from 1 to 50, not '3' (str)"),
    "negative trial count": ({"n_trials": -2}, "n_trials", "-2 is outside 1..50"),
    "a bool is no count": ({"n_trials": True}, "n_trials", "not True (bool)"),
    "unknown family": ({"model_family": "xgboost"}, "model_family", "'xgboost' (str) is not one"),
    "unknown metric": ({"metric": "rmse"}, "metric", "'rmse' (str) is not one of"),
    "window in the future": (
        {"window_end": "2027-01-01"},
        "window_end",
        "2027-01-01 is in the future (now 2026-12-06 12:00 UTC)",
    ),
    "window start after end": (
        {"window_start": "2013-03-01", "window_end": "2013-02-01"},
        "window_end",
        "must be after window_start (2013-03-01)",
    ),
    "not a date": ({"window_start": "01/03/2013"}, "window_start", "must be a date like"),
    "window as a number": ({"window_start": 20130301}, "window_start", "20130301 (int)"),
    "empty search list": (
        {"search_space": {"max_depth": []}},
        "search_space.max_depth",
        "non-empty list",
    ),
    "negative seed": ({"seed": -1}, "seed", "-1 is outside 0..4294967295"),
    "a typo in --conf": ({"n_trial": 5}, "n_trial", "not a parameter of this DAG"),
}


@pytest.mark.parametrize("case", EXPERIMENT_CASES)
def test_bad_experiment_parameters_are_refused_naming_the_field(case: str, flights) -> None:
    change, field, why = EXPERIMENT_CASES[case]
    with pytest.raises(RunParamsError) as refused:
        check_experiment_params({**GOOD_EXPERIMENT, **change}, flights, NOW)
    assert list(refused.value.problems) == [field]
    assert why in refused.value.problems[field]
    assert f"  - {field}: " in str(refused.value) and "nothing was started" in str(refused.value)


TRAINING_CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "unknown family": ({"config": {"family": "xgboost"}}, "config.family", "is not one of"),
    "config not an object": ({"config": "fast"}, "config", "must be an object"),
    "unknown config key": ({"config": {"famly": "x"}}, "config", "unknown keys ['famly']"),
    "params not an object": ({"config": {"params": [1]}}, "config.params", "must be an object"),
    "window in the future": ({"window_start": "2030-01-01"}, "window_start", "in the future"),
    "a typo in --conf": ({"window": "2013-01"}, "window", "not a parameter of this DAG"),
}


@pytest.mark.parametrize("case", TRAINING_CASES)
def test_bad_training_parameters_are_refused_naming_the_field(case: str, flights) -> None:
    change, field, why = TRAINING_CASES[case]
    with pytest.raises(RunParamsError) as refused:
        check_training_params(change, flights, NOW)
    assert list(refused.value.problems) == [field] and why in refused.value.problems[field]


def test_every_problem_is_named_at_once(flights) -> None:
    bad = {**GOOD_EXPERIMENT, "n_trials": 0, "model_family": "?", "window_end": "2099-01-01"}
    with pytest.raises(RunParamsError) as refused:
        check_experiment_params(bad, flights, NOW)
    assert set(refused.value.problems) == {"n_trials", "model_family", "window_end"}


@given(
    value=st.one_of(
        st.text(),
        st.floats(allow_nan=True).filter(lambda v: not float(v).is_integer()),
        st.booleans(),
        st.lists(st.integers()),
        st.dictionaries(st.text(), st.integers()),
        st.integers(max_value=0),
        st.integers(min_value=51),
    )
)
def test_no_trial_count_but_a_whole_number_from_1_to_50_passes(value: Any, flights) -> None:
    with pytest.raises(RunParamsError) as refused:
        check_experiment_params({"n_trials": value}, flights, NOW)
    assert list(refused.value.problems) == ["n_trials"]


@given(value=st.integers(min_value=1, max_value=50) | st.integers(1, 50).map(float))
def test_every_whole_number_from_1_to_50_passes(value: Any, flights) -> None:
    check_experiment_params({"n_trials": value}, flights, NOW)
