"""What every task and DAG shares: the stage call at the XCom boundary, the header, the bounds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airloop.core.errors import PermanentError
from airloop.core.records import Number, Record
from airloop.orchestration.tasks import (
    TAGS,
    dag_header,
    data_interval,
    run_stage,
    schedule_bounds,
)
from airloop.settings import get_settings
from airloop.usecase import UseCaseError

START = datetime(2013, 1, 5, tzinfo=UTC)
END = datetime(2013, 1, 6, tzinfo=UTC)


class Scored(Record):
    partition: str
    score: Number


class BadBatch(PermanentError):
    """A permanent error of the kind a stage raises."""


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """Settings read again from the (monkeypatched) environment, and again after the test."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# run_stage


def test_run_stage_returns_a_record_as_strict_json() -> None:
    result = run_stage(lambda: Scored(partition="2013-01-05", score=float("nan")))
    assert result == {"partition": "2013-01-05", "score": None}
    assert type(result) is dict


def test_run_stage_passes_arguments_to_the_stage() -> None:
    def stage(partition: str, *, score: float) -> Scored:
        return Scored(partition=partition, score=score)

    assert run_stage(stage, "2013-01-05", score=0.25) == {"partition": "2013-01-05", "score": 0.25}


def test_run_stage_returns_a_list_of_records_as_a_list_of_dicts() -> None:
    records = [
        Scored(partition="2013-01-05", score=0.5),
        Scored(partition="2013-01-06", score=float("inf")),
    ]
    assert run_stage(lambda: records) == [
        {"partition": "2013-01-05", "score": 0.5},
        {"partition": "2013-01-06", "score": None},
    ]


@pytest.mark.parametrize("value", [7, "models:/flight_delay/3", {"rows": 709}, None], ids=repr)
def test_run_stage_returns_plain_values_as_they_are(value: object) -> None:
    assert run_stage(lambda: value) == value


def test_run_stage_turns_a_permanent_error_into_a_fail_exception_with_its_message() -> None:
    def stage() -> None:
        raise BadBatch("partition 2013-01-05 failed validation: fix the data")

    with pytest.raises(AirflowFailException) as caught:
        run_stage(stage)
    assert str(caught.value) == "partition 2013-01-05 failed validation: fix the data"
    assert isinstance(caught.value.__cause__, BadBatch)


def test_run_stage_fails_at_once_on_a_use_case_error_too() -> None:
    # UseCaseError is also a ValueError: being a PermanentError is what counts.
    def stage() -> None:
        raise UseCaseError("usecase.yaml: target: field required")

    with pytest.raises(AirflowFailException, match=r"^usecase\.yaml: target: field required$"):
        run_stage(stage)


@pytest.mark.parametrize("error", [ValueError("bad value"), ConnectionError("MLflow is down")])
def test_run_stage_lets_other_errors_through_unchanged_so_airflow_retries(
    error: Exception,
) -> None:
    def stage() -> None:
        raise error

    with pytest.raises(type(error)) as caught:
        run_stage(stage)
    assert caught.value is error
    assert not isinstance(caught.value, AirflowFailException)


# data_interval


@pytest.mark.parametrize(
    ("start", "end"), [(None, END), (START, None), (None, None)], ids=["no start", "no end", "none"]
)
def test_data_interval_fails_without_both_ends(
    start: datetime | None, end: datetime | None
) -> None:
    with pytest.raises(AirflowFailException, match="needs a data interval"):
        data_interval(start, end)


def test_data_interval_returns_the_pair_it_was_given() -> None:
    assert data_interval(START, END) == (START, END)


# dag_header


def test_dag_header_gives_owner_retries_and_tags_for_the_use_case(flights) -> None:
    header = dag_header(flights, "features")
    assert header["catchup"] is False
    assert header["default_args"]["owner"] == "airloop"
    assert header["default_args"]["retries"] >= 1
    assert header["default_args"]["retry_delay"] == timedelta(seconds=15)
    assert header["tags"] == ["airloop", "features", "usecase:flights"]


def test_dag_header_takes_owner_and_name_from_the_use_case(flights) -> None:
    other = flights.model_copy(update={"name": "churn", "owner": "data-team"})
    header = dag_header(other, "monitoring")
    assert header["default_args"]["owner"] == "data-team"
    assert header["tags"] == ["airloop", "monitoring", "usecase:churn"]
    # The shared defaults are not changed by one DAG's header.
    assert dag_header(flights, "training")["default_args"]["owner"] == "airloop"


@pytest.mark.parametrize("stage", TAGS)
def test_dag_header_accepts_every_known_stage_tag(flights, stage: str) -> None:
    assert dag_header(flights, stage)["tags"][1] == stage


@pytest.mark.parametrize("stage", ["feature", "Training", "", "usecase:flights"])
def test_dag_header_refuses_an_unknown_stage_tag(flights, stage: str) -> None:
    with pytest.raises(ValueError, match=f"unknown stage tag {stage!r}"):
        dag_header(flights, stage)


# schedule_bounds


def test_schedule_bounds_span_the_replay_to_one_second_before_its_end(
    flights, monkeypatch, fresh_settings
) -> None:
    monkeypatch.delenv("AIRLOOP_REPLAY_END", raising=False)
    start, end = schedule_bounds(flights)
    assert start == datetime(2013, 1, 1, tzinfo=UTC)
    assert end == datetime(2013, 12, 30, 23, 59, 59, tzinfo=UTC)  # no weather on 31 December
    assert start == datetime.combine(flights.replay.start, datetime.min.time(), UTC)
    assert end + timedelta(seconds=1) == datetime.combine(
        flights.replay.end, datetime.min.time(), UTC
    )


def test_schedule_bounds_end_moves_with_airloop_replay_end(
    flights, monkeypatch, fresh_settings
) -> None:
    monkeypatch.setenv("AIRLOOP_REPLAY_END", "2014-03-01")
    get_settings.cache_clear()
    assert get_settings().replay_end == date(2014, 3, 1)
    start, end = schedule_bounds(flights)
    assert start == datetime(2013, 1, 1, tzinfo=UTC)
    assert end == datetime(2014, 2, 28, 23, 59, 59, tzinfo=UTC)


def test_schedule_bounds_have_no_end_without_a_replay(flights) -> None:
    live = flights.model_copy(update={"replay": None})
    assert schedule_bounds(live) == (datetime(2024, 1, 1, tzinfo=UTC), None)


def test_a_retrain_reason_tag_always_parses_and_fits_a_tag() -> None:
    """Drift reasons carry per-feature thresholds and counts: whole, they overflowed MLflow's
    tag, cut mid-string, and promotion failed reading it back."""
    import json

    from airloop.orchestration.tasks import REASON_TAG_MAX, reason_tag

    short = [{"check": "data_drift", "share": 0.4}]
    assert json.loads(reason_tag(short)) == short
    features = [{"feature": f"f{i}", "score": 0.1, "threshold": 0.2} for i in range(200)]
    long = [{"check": "data_drift", "share": 0.4, "features": features}, {"check": "x"}]
    tag = reason_tag(long)
    assert len(tag) <= REASON_TAG_MAX
    assert json.loads(tag) == [{"check": "data_drift", "share": 0.4}, {"check": "x"}]
