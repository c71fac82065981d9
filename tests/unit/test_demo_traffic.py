"""The replay client's decisions: what a request instance carries, how a refused batch is sent
again row by row so the good rows are still served, that a server error stops the replay, and
the clock's step. The service is a plain function of the request here: it refuses rows by a
rule, as the serving API's validation does, and answers the others."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airloop.demo import traffic as replay
from airloop.demo.traffic import REPLAY_STEP, Traffic, clock_step, instances_for, send_interval
from airloop.settings import Settings
from airloop.usecase import UseCase


class Service:
    """Answers /v1/predict: 422 for a batch holding a row without a carrier, else predictions
    by model version ``version``; or ``status`` for everything when it is set."""

    def __init__(self, version: str = "1", status: int | None = None) -> None:
        self.version, self.status = version, status
        self.batches: list[list[str]] = []  # the event ids of each request, in order

    def __call__(self, settings: Settings, path: str, body: Any) -> tuple[int, Any]:
        assert path == "/v1/predict"
        rows = body["instances"]
        self.batches.append([r["event_id"] for r in rows])
        if self.status is not None:
            return self.status, {"message": "the database is busy"}
        bad = [r["event_id"] for r in rows if not r.get("carrier")]
        if bad:
            return 422, {"message": f"carrier is required ({bad[0]})"}
        return 200, {
            "predictions": [{"score": 0.5} for _ in rows],
            "model": {"name": "flight_delay", "version": self.version},
        }


def rows(*carriers: str | None) -> list[dict[str, Any]]:
    return [{"event_id": f"e{i}", "carrier": c} for i, c in enumerate(carriers)]


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Service:
    answering = Service()
    monkeypatch.setattr(replay, "post", answering)
    return answering


def test_batches_of_good_rows_are_each_sent_once(service: Service, tmp_path: Path) -> None:
    traffic = Traffic()
    replay._send(Settings(home=tmp_path), rows("UA", "AA", "DL", "B6", "UA"), 2, traffic)
    assert service.batches == [["e0", "e1"], ["e2", "e3"], ["e4"]]
    assert traffic == Traffic(sent=5, predicted=5, versions={"1": 5})


def test_a_refused_batch_is_sent_again_row_by_row_keeping_the_good_rows(
    service: Service, tmp_path: Path
) -> None:
    traffic = Traffic()
    replay._send(Settings(home=tmp_path), rows("UA", None, "DL", None, "B6"), 3, traffic)
    assert service.batches == [
        ["e0", "e1", "e2"],  # refused for e1
        ["e0"],
        ["e1"],
        ["e2"],
        ["e3", "e4"],  # refused for e3
        ["e3"],
        ["e4"],
    ]
    assert (traffic.sent, traffic.predicted, traffic.refused) == (5, 3, 2)
    # The first refusal says why, in the service's words; later ones do not replace it.
    assert traffic.refusal == "422: carrier is required (e1)"


def test_a_server_error_stops_the_replay_with_its_status(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    failing = Service(status=503)
    monkeypatch.setattr(replay, "post", failing)
    with pytest.raises(RuntimeError, match="the service answered 503: the database is busy"):
        replay._send(Settings(home=tmp_path), rows("UA", "AA"), 10, Traffic())
    assert failing.batches == [["e0", "e1"]]  # not sent again row by row


def test_an_interval_with_no_landed_events_sends_nothing(
    service: Service, flights: UseCase, tmp_path: Path
) -> None:
    start = pd.Timestamp("2013-01-05", tz="UTC").to_pydatetime()
    traffic = send_interval(Settings(home=tmp_path), flights, start, start + timedelta(days=1))
    assert traffic == Traffic() and service.batches == []


def test_an_instance_carries_the_request_fields_its_event_id_and_time(flights: UseCase) -> None:
    keys = flights.request_keys
    event = {k: f"value of {k}" for k in keys} | {
        "event_id": 42,
        "event_timestamp": pd.Timestamp("2013-01-05 06:00", tz="America/New_York"),
        "arr_delay": 30.0,  # the label is not sent
    }
    [instance] = instances_for(flights, pd.DataFrame([event]))
    assert set(instance) == {*keys, "event_id", "event_time"}
    assert instance["event_id"] == "42"
    assert instance["event_time"] == "2013-01-05T11:00:00+00:00"  # UTC
    assert all(instance[k] == f"value of {k}" for k in keys)


def test_the_clock_steps_as_often_as_the_finest_moving_view(flights: UseCase) -> None:
    every = [v.moves_every() for v in flights.feature_views]
    assert timedelta(hours=1) in [e.approximate for e in every if e is not None]
    assert clock_step(flights) == timedelta(hours=1)
    still = [v for v in flights.feature_views if v.moves_every() is None]
    assert clock_step(flights.model_copy(update={"feature_views": still})) == REPLAY_STEP
