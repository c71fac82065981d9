"""Partitions are read with the use case's declared schema, never re-inferred per file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from airloop.data.landing import read_raw
from airloop.usecase import SourceSpec


def spec(**rain: object) -> SourceSpec:
    return SourceSpec.model_validate(
        {
            "partition_by": "day",
            "columns": [
                {"name": "day", "type": "timestamp", "nullable": False},
                {"name": "station", "type": "string"},
                {"name": "rain", "type": "number", **rain},
                {"name": "count", "type": "integer"},
            ],
        }
    )


def land(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "part.csv"
    path.write_text("day,station,rain,count\n" + "\n".join(rows) + "\n")
    return path


def test_a_day_of_whole_numbers_in_a_number_column_is_read_as_numbers(tmp_path: Path) -> None:
    path = land(tmp_path, ["2020-01-02,007,0,3", "2020-01-02,008,0,4"])
    frame, problems = read_raw(path, spec())
    assert problems == []
    assert frame["rain"].dtype == "float64" and frame["count"].dtype == "int64"
    assert list(frame["station"]) == ["007", "008"]  # text stays text: leading zeros kept
    assert frame["day"].iloc[0] == pd.Timestamp("2020-01-02", tz="UTC")


def test_a_marker_declared_as_missing_is_missing_and_an_undeclared_one_is_a_problem(
    tmp_path: Path,
) -> None:
    path = land(tmp_path, ["2020-01-02,a,T,1", "2020-01-02,b,0.3,", "2020-01-02,c,T,2"])
    frame, problems = read_raw(path, spec(na_values=["T"]))
    assert problems == [] and frame["rain"].isna().tolist() == [True, False, True]
    assert frame["count"].dtype == "float64"  # a whole-number column with a gap

    frame, [problem] = read_raw(path, spec())
    assert (problem.column, problem.count, problem.examples) == ("rain", 2, ["T"])
    assert "'rain' has 2 values that are not numbers ('T')" in problem.reason
    assert "na_values" in problem.reason


def test_replace_reads_a_marker_as_the_value_it_stands_for(tmp_path: Path) -> None:
    path = land(tmp_path, ["2020-01-02,a,<0.1,1", "2020-01-02,b,0.3,1"])
    frame, problems = read_raw(path, spec(replace={"<0.1": 0.05}))
    assert problems == [] and frame["rain"].tolist() == [0.05, 0.3]


def test_a_declared_timestamp_format_reads_non_iso_times(tmp_path: Path) -> None:
    source = SourceSpec.model_validate(
        {
            "partition_by": "day",
            "columns": [{"name": "day", "type": "timestamp", "format": "%m/%d/%Y"}],
        }
    )
    path = tmp_path / "part.csv"
    path.write_text("day\n03/01/2013\n13/01/2013\n")
    frame, [problem] = read_raw(path, source)
    assert frame["day"].iloc[0] == pd.Timestamp("2013-03-01", tz="UTC")
    assert problem.examples == ["13/01/2013"] and "in the form %m/%d/%Y" in problem.reason


def test_reading_rules_belong_to_their_types() -> None:
    with pytest.raises(ValueError, match="format is for timestamp columns"):
        spec(format="%Y")
    with pytest.raises(ValueError, match="replace is for number and integer"):
        SourceSpec.model_validate(
            {
                "partition_by": "day",
                "columns": [
                    {"name": "day", "type": "timestamp"},
                    {"name": "s", "type": "string", "replace": {"x": 1}},
                ],
            }
        )
