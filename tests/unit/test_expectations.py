"""The validation suite built from a use case rejects each kind of bad data, and only that."""

from __future__ import annotations

import pandas as pd
import pytest

from airloop.quality.expectations import validate_frame


@pytest.fixture(scope="module")
def spec(flights):
    return flights.sources["flights"]


@pytest.fixture(scope="module")
def good(flights) -> pd.DataFrame:
    from airloop.data.replay import load_replay_frame

    assert flights.replay is not None
    df = load_replay_frame(flights.replay.sources["flights"])
    return df[df["time_hour"].str.startswith("2013-01-02")].reset_index(drop=True)


def _reasons(df: pd.DataFrame, spec) -> list[str]:
    failures, _ = validate_frame(df, spec, "flights")
    return [f.reason for f in failures]


def test_real_partition_passes(good: pd.DataFrame, spec) -> None:
    assert _reasons(good, spec) == []


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (
            lambda d: d.assign(carrier=d["carrier"].where(d.index > 3, None)),
            "column 'carrier' has 4 null values",
        ),
        (lambda d: d.assign(distance=-d["distance"]), "column 'distance' has"),
        (lambda d: d.drop(columns=["origin"]), "column 'origin' is missing"),
        (lambda d: d.assign(distance="far"), "column 'distance' has the wrong type"),
        (lambda d: d.assign(origin="XXX"), "column 'origin' has"),
        (lambda d: d.assign(time_hour="not a time"), "column 'time_hour' has"),
        (lambda d: pd.concat([d, d.head(3)], ignore_index=True), "duplicate rows"),
        (lambda d: d.head(10), "row count 10 outside"),
    ],
    ids=[
        "null-key",
        "negative-distance",
        "missing-column",
        "wrong-type",
        "value-set",
        "bad-timestamp",
        "duplicates",
        "row-count",
    ],
)
def test_each_kind_of_bad_data_is_rejected(
    good: pd.DataFrame, spec, corrupt, expected: str
) -> None:
    reasons = _reasons(corrupt(good.copy()), spec)
    assert any(expected in r for r in reasons), reasons


def test_a_missing_column_is_reported_once(good: pd.DataFrame, spec) -> None:
    reasons = _reasons(good.drop(columns=["distance"]), spec)
    assert [r for r in reasons if "distance" in r] == ["column 'distance' is missing"]


def test_mostly_tolerates_a_rare_outlier(flights) -> None:
    weather = flights.sources["weather"]
    df = pd.DataFrame(
        {
            "origin": ["EWR"] * 60,
            "time_hour": [f"2013-01-01T{h % 24:02d}:00:00Z" for h in range(60)],
            "wind_speed": [10.0] * 59 + [1048.0],
        }
    )
    df["time_hour"] = [f"2013-01-{1 + i // 24:02d}T{i % 24:02d}:00:00Z" for i in range(60)]
    for col in ("temp", "dewp", "humid", "wind_dir", "wind_gust", "precip", "pressure", "visib"):
        df[col] = None if col == "wind_gust" else 10.0 if col != "pressure" else 1010.0
    failures, _ = validate_frame(df, weather, "weather")
    assert failures == []


def test_a_true_false_column_with_gaps_passes_and_text_in_it_does_not(tmp_path) -> None:
    from airloop.data.landing import read_raw
    from airloop.usecase import SourceSpec

    spec = SourceSpec.model_validate(
        {
            "partition_by": "at",
            "columns": [
                {"name": "at", "type": "timestamp", "nullable": False},
                {"name": "holiday", "type": "bool"},
            ],
        }
    )
    path = tmp_path / "part.csv"
    for rows in ("True\n2013-01-02T00:00:00Z,", "\n2013-01-02T00:00:00Z,"):  # gaps; all empty
        path.write_text(f"at,holiday\n2013-01-01T00:00:00Z,{rows}\n")
        frame, problems = read_raw(path, spec)
        failures, _ = validate_frame(frame, spec, "days")
        assert failures == [] and problems == [], rows
    path.write_text("at,holiday\n2013-01-01T00:00:00Z,True\n2013-01-02T00:00:00Z,maybe\n")
    _, [problem] = read_raw(path, spec)
    assert (problem.column, problem.count, problem.examples) == ("holiday", 1, ["maybe"])


def test_a_timestamp_the_pipeline_cannot_read_is_rejected(good: pd.DataFrame, spec) -> None:
    """The gate reads timestamps by the pipeline's rule (ISO 8601): a US-style date that
    dateutil would take, or a day that does not exist, is named with the column."""
    bad = good.copy()
    bad.loc[0, "time_hour"] = "01/02/2013 5pm"
    bad.loc[1, "time_hour"] = "2013-02-30T05:00:00Z"
    failures, _ = validate_frame(bad, spec, "flights")
    [failure] = [f for f in failures if f.column == "time_hour"]
    assert failure.reason == "column 'time_hour' has 2 values that are not ISO 8601 timestamps"
    assert set(failure.examples) == {"01/02/2013 5pm", "2013-02-30T05:00:00Z"}


def test_timestamps_typed_by_the_file_format_pass_as_they_are(good: pd.DataFrame, spec) -> None:
    typed = good.assign(time_hour=pd.to_datetime(good["time_hour"], utc=True))
    assert _reasons(typed, spec) == []
