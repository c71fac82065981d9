"""The serving API's parts without a model server: schema, errors, guard, input rows, metrics."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from airloop.serving.errors import scoring_message, validation_problems
from airloop.serving.guard import MAX_BODY_BYTES
from airloop.serving.metrics import Metrics
from airloop.serving.model import LoadedModel
from airloop.serving.predict import expire_stale, feature_times, input_columns
from airloop.serving.schema import MAX_BATCH, request_model
from airloop.usecase import UseCase
from tests.serving_app import AUTH, FLIGHT, TOKEN, serving_app, with_body


def instance(**changes: Any) -> dict[str, Any]:
    """A valid flights instance, with some fields changed."""
    return {**FLIGHT, **changes}


def refusals(body_model: type[BaseModel], body: dict[str, Any]) -> list[tuple[str, tuple]]:
    """The (type, location) of each error the request model reports for this body."""
    with pytest.raises(ValidationError) as caught:
        body_model.model_validate(body)
    return [(err["type"], err["loc"]) for err in caught.value.errors()]


@pytest.fixture(scope="module")
def body_model(flights: UseCase) -> type[BaseModel]:
    return request_model(flights)


@pytest.fixture
def api(body_model: type[BaseModel]) -> tuple[TestClient, Metrics, list[int]]:
    return serving_app(body_model)


# -- schema -------------------------------------------------------------------------------------


ENTITY_KEYS = ["origin", "carrier", "route", "service", "dest", "tailnum"]  # the views' order


def test_request_fields_are_entity_keys_then_model_inputs(flights: UseCase) -> None:
    assert flights.request_keys == [*ENTITY_KEYS, "distance", "hour", "month"]


def test_request_fields_keep_first_position_and_drop_repeats(flights: UseCase) -> None:
    training = flights.training.model_copy(
        update={"categorical": ["origin", "carrier"], "numeric": ["month", "distance", "month"]}
    )
    usecase = flights.model_copy(update={"training": training})
    assert usecase.request_keys == [*ENTITY_KEYS, "month", "distance"]


def test_the_use_cases_example_is_a_valid_request_shown_on_the_api_page(flights: UseCase) -> None:
    example = flights.events.example
    assert example is not None and set(example) == set(flights.request_keys)
    body = request_model(flights)
    body.model_validate({"instances": [example]})  # raises if the service would refuse it
    instance = body.model_json_schema()["$defs"]["flights_instance"]
    assert instance["examples"] == [example]


def test_valid_instance_passes_with_optional_event_fields_unset(
    body_model: type[BaseModel],
) -> None:
    body = body_model.model_validate({"instances": [instance()]})
    assert body.instances[0].model_dump() == {  # type: ignore[attr-defined]
        **FLIGHT,
        "event_id": None,
        "event_time": None,
    }
    assert body.request_id is None  # type: ignore[attr-defined]


def test_nullable_field_may_be_omitted_and_integer_is_a_number(
    body_model: type[BaseModel],
) -> None:
    fields = {k: v for k, v in instance(distance=2475).items() if k != "tailnum"}
    body = body_model.model_validate({"instances": [fields]})
    row = body.instances[0]  # type: ignore[attr-defined]
    assert row.tailnum is None
    assert row.distance == 2475


@pytest.mark.parametrize("field", ["origin", "carrier", "route", "distance", "hour", "month"])
def test_missing_required_field_is_refused(body_model: type[BaseModel], field: str) -> None:
    fields = {k: v for k, v in FLIGHT.items() if k != field}
    assert refusals(body_model, {"instances": [fields]}) == [("missing", ("instances", 0, field))]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("distance", "2475", "float_type"),  # a string for a number: no coercion
        ("distance", True, "float_type"),
        ("hour", 9.5, "int_type"),
        ("hour", "9", "int_type"),
        ("month", True, "int_type"),
        ("origin", 3, "literal_error"),  # a declared value set: one of its values
        ("carrier", None, "literal_error"),  # not nullable in the use case
        ("tailnum", 7, "string_type"),
    ],
)
def test_mistyped_field_is_refused(
    body_model: type[BaseModel], field: str, value: Any, error: str
) -> None:
    found = refusals(body_model, {"instances": [instance(**{field: value})]})
    assert found[0][0] == error
    assert all(loc[:3] == ("instances", 0, field) for _, loc in found)


def test_extra_fields_are_refused_in_the_instance_and_the_body(
    body_model: type[BaseModel],
) -> None:
    found = refusals(body_model, {"instances": [instance(sched_arr_time=1130)], "debug": True})
    assert sorted(found) == [
        ("extra_forbidden", ("debug",)),
        ("extra_forbidden", ("instances", 0, "sched_arr_time")),
    ]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_refused(body_model: type[BaseModel], value: float) -> None:
    found = refusals(body_model, {"instances": [instance(distance=value)]})
    assert ("finite_number", ("instances", 0, "distance", "constrained-float")) in found


def test_empty_batch_is_refused(body_model: type[BaseModel]) -> None:
    assert refusals(body_model, {"instances": []}) == [("too_short", ("instances",))]


def test_batch_of_max_size_passes_and_one_more_is_refused(body_model: type[BaseModel]) -> None:
    assert MAX_BATCH == 1000
    full = body_model.model_validate({"instances": [FLIGHT] * MAX_BATCH})
    assert len(full.instances) == MAX_BATCH  # type: ignore[attr-defined]
    assert refusals(body_model, {"instances": [FLIGHT] * (MAX_BATCH + 1)}) == [
        ("too_long", ("instances",))
    ]


def test_event_id_and_aware_event_time_are_kept(body_model: type[BaseModel]) -> None:
    body = body_model.model_validate(
        {
            "instances": [instance(event_id="AA_1_JFK", event_time="2013-01-01T10:00:00+02:00")],
            "request_id": "req-1",
        }
    )
    row = body.instances[0]  # type: ignore[attr-defined]
    assert row.event_id == "AA_1_JFK"
    assert row.event_time == datetime(2013, 1, 1, 8, 0, tzinfo=UTC)
    assert body.request_id == "req-1"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"event_time": "2013-01-01T10:00:00"}, "timezone_aware", "event_time"),
        ({"event_time": "yesterday"}, "datetime_from_date_parsing", "event_time"),
        ({"event_id": 17}, "string_type", "event_id"),
    ],
)
def test_bad_event_fields_are_refused(
    body_model: type[BaseModel], changes: dict[str, Any], error: str, field: str
) -> None:
    found = refusals(body_model, {"instances": [instance(**changes)]})
    assert found == [(error, ("instances", 0, field))]


def test_request_id_must_be_text(body_model: type[BaseModel]) -> None:
    assert refusals(body_model, {"instances": [FLIGHT], "request_id": 5}) == [
        ("string_type", ("request_id",))
    ]


# -- errors -------------------------------------------------------------------------------------


def test_invalid_request_gets_422_with_field_paths_and_no_values(
    api: tuple[TestClient, Metrics, list[int]],
) -> None:
    client, _, received = api
    bad = instance(distance="SECRET-DISTANCE", hour=9.5, leak="SECRET-EXTRA")
    response = client.post("/v1/predict", json={"instances": [FLIGHT, bad]}, headers=AUTH)
    assert response.status_code == 422
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "the request does not match the schema",
        "fields": [
            # one entry per field, though the number union reports two errors for distance
            {"field": "instances.1.distance", "problem": "Input should be a valid number"},
            {"field": "instances.1.hour", "problem": "Input should be a valid integer"},
            {"field": "instances.1.leak", "problem": "Extra inputs are not permitted"},
        ],
    }
    assert "SECRET" not in response.text
    assert received == []


def test_nan_in_json_body_is_named_as_not_finite(
    api: tuple[TestClient, Metrics, list[int]],
) -> None:
    client, _, _ = api
    body = b'{"instances": [{"origin": "JFK", "carrier": "AA", "route": "JFK-LAX", "service": "AA_1_JFK", "dest": "LAX", "distance": NaN, "hour": 9, "month": 3}]}'
    response = client.post(
        "/v1/predict", content=body, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["fields"] == [
        {"field": "instances.0.distance", "problem": "Input should be a finite number"}
    ]
    assert "NaN" not in response.text and "nan" not in response.text


def test_malformed_json_is_400_without_fields(
    api: tuple[TestClient, Metrics, list[int]],
) -> None:
    client, _, _ = api
    response = client.post(
        "/v1/predict",
        content=b'{"instances": [{"origin": "SECRET',
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "MALFORMED_JSON",
        "message": "the body is not valid JSON",
    }


def test_validation_problems_on_fastapis_own_error(body_model: type[BaseModel]) -> None:
    """The function itself, given the RequestValidationError FastAPI raised for a real request."""
    app = FastAPI()
    caught: list[RequestValidationError] = []

    @app.exception_handler(RequestValidationError)
    async def keep(request: Request, exc: RequestValidationError) -> JSONResponse:
        caught.append(exc)
        return JSONResponse({}, status_code=599)

    def predict(body: Any) -> dict[str, str]:
        return {}

    app.post("/v1/predict")(with_body(predict, body_model))

    client = TestClient(app)
    client.post("/v1/predict", json={"instances": [], "request_id": "SECRET-ID-9"})
    client.post("/v1/predict", headers={"content-type": "application/json"})
    empty_batch, no_body = (validation_problems(exc) for exc in caught)

    assert empty_batch.status_code == 422
    assert empty_batch.body == (
        b'{"error_code":"INVALID_PARAMETER_VALUE","message":"the request does not match the '
        b'schema","fields":[{"field":"instances","problem":"List should have at least 1 item '
        b'after validation, not 0"}]}'
    )
    assert no_body.status_code == 422
    assert b'"field":"(body)"' in no_body.body
    assert b"SECRET" not in empty_batch.body


def test_scoring_message_keeps_the_reason_and_names_the_columns() -> None:
    exc = ValueError(
        "Failed to enforce schema of data with schema ['distance': double]. "
        "Error: Incompatible input types for column distance. Can not safely convert object to float64."
    )
    assert scoring_message(exc, ["distance", "hour"]) == (
        "Incompatible input types for column distance. Can not safely convert object to "
        "float64. (expected columns: distance, hour)"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Error: bad input {'distance': 'SECRET-VALUE'}",
        "Failed to predict data 'SECRET-VALUE'",
    ],
)
def test_scoring_message_never_echoes_the_input(text: str) -> None:
    message = scoring_message(RuntimeError(text), ["carrier", "origin"])
    assert message == (
        "the input does not match the model signature (expected columns: carrier, origin)"
    )


def test_scoring_message_keeps_one_short_line() -> None:
    message = scoring_message(RuntimeError("first line\nSECRET second line"), ["a"])
    assert message == "first line (expected columns: a)"
    long = scoring_message(RuntimeError("x" * 1000), ["a"])
    assert long == "x" * 300 + " (expected columns: a)"


# -- guard --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}],
    ids=["none", "wrong", "no-scheme"],
)
def test_post_without_the_bearer_token_is_401(
    api: tuple[TestClient, Metrics, list[int]], headers: dict[str, str]
) -> None:
    client, _, received = api
    response = client.post("/v1/predict", json={"instances": [FLIGHT]}, headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error_code": "UNAUTHENTICATED",
        "message": "a valid bearer token is required",
    }
    assert received == []


def test_post_with_the_token_reaches_the_app(api: tuple[TestClient, Metrics, list[int]]) -> None:
    client, _, received = api
    response = client.post("/v1/predict", json={"instances": [FLIGHT, FLIGHT]}, headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"instances": 2}
    assert received == [2]


def test_no_token_configured_lets_posts_through(body_model: type[BaseModel]) -> None:
    client, _, received = serving_app(body_model, token=None)
    response = client.post("/v1/predict", json={"instances": [FLIGHT]})
    assert response.status_code == 200
    assert received == [1]


def test_body_over_the_limit_is_413_before_the_app(
    api: tuple[TestClient, Metrics, list[int]],
) -> None:
    client, _, received = api
    headers = {**AUTH, "content-type": "application/json"}
    response = client.post("/v1/predict", content=b" " * (MAX_BODY_BYTES + 1), headers=headers)
    assert response.status_code == 413
    assert response.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    assert str(MAX_BODY_BYTES) in response.json()["message"]
    assert received == []


def test_declared_length_over_the_limit_is_413_and_auth_is_checked_first(
    api: tuple[TestClient, Metrics, list[int]],
) -> None:
    client, _, _ = api
    big = {"content-type": "application/json", "content-length": str(MAX_BODY_BYTES + 1)}
    assert client.post("/admin/reload", headers={**AUTH, **big}).status_code == 413
    assert client.post("/admin/reload", headers=big).status_code == 401


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_predict_without_json_content_type_is_415(
    api: tuple[TestClient, Metrics, list[int]], content_type: str | None
) -> None:
    client, _, received = api
    headers = dict(AUTH)
    if content_type is not None:
        headers["content-type"] = content_type
    response = client.post("/v1/predict", content=b'{"instances": []}', headers=headers)
    assert response.status_code == 415
    assert response.json() == {
        "error_code": "UNSUPPORTED_MEDIA_TYPE",
        "message": "send application/json",
    }
    assert received == []


def test_json_content_type_with_charset_is_accepted(
    api: tuple[TestClient, Metrics, list[int]],
) -> None:
    client, _, _ = api
    headers = {**AUTH, "content-type": "application/json; charset=utf-8"}
    body = b'{"instances": [{"origin": "JFK", "carrier": "AA", "route": "JFK-LAX", "service": "AA_1_JFK", "dest": "LAX", "distance": 1.0, "hour": 1, "month": 1}]}'
    assert client.post("/v1/predict", content=body, headers=headers).status_code == 200


def test_other_posts_need_no_json_content_type(
    api: tuple[TestClient, Metrics, list[int]],
) -> None:
    client, _, _ = api
    response = client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"reloaded": "yes"}


def test_gets_pass_without_a_token(api: tuple[TestClient, Metrics, list[int]]) -> None:
    client, _, _ = api
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_requests_are_counted_by_endpoint_and_status(
    api: tuple[TestClient, Metrics, list[int]],
) -> None:
    client, metrics, _ = api
    client.post("/v1/predict", json={"instances": [FLIGHT]}, headers=AUTH)
    client.post("/v1/predict", json={"instances": [FLIGHT]}, headers=AUTH)
    client.post("/v1/predict", json={"instances": [FLIGHT]})
    client.post("/v1/predict", json={"instances": []}, headers=AUTH)
    client.get("/health")
    text = metrics.exposition().decode()
    assert 'airloop_requests_total{endpoint="/v1/predict",status="200"} 2.0' in text
    assert 'airloop_requests_total{endpoint="/v1/predict",status="401"} 1.0' in text
    assert 'airloop_requests_total{endpoint="/v1/predict",status="422"} 1.0' in text
    assert 'airloop_requests_total{endpoint="/health",status="200"} 1.0' in text
    assert 'airloop_request_seconds_count{endpoint="/v1/predict"} 4.0' in text
    assert 'airloop_request_seconds_count{endpoint="/health"} 1.0' in text


def test_server_errors_are_counted_too(api: tuple[TestClient, Metrics, list[int]]) -> None:
    client, metrics, _ = api
    assert client.get("/boom").status_code == 500
    text = metrics.exposition().decode()
    assert 'airloop_requests_total{endpoint="/boom",status="500"} 1.0' in text


def test_unknown_paths_share_one_metrics_label(api: tuple[TestClient, Metrics, list[int]]) -> None:
    client, metrics, _ = api
    for path in ("/wp-admin/x1", "/wp-admin/x2", "/.env"):
        assert client.get(path).status_code == 404
    text = metrics.exposition().decode()
    assert 'airloop_requests_total{endpoint="other",status="404"} 3.0' in text
    assert "wp-admin" not in text


def test_a_chunked_body_over_the_limit_is_413(api: tuple[TestClient, Metrics, list[int]]) -> None:
    client, _, _ = api

    def chunks() -> Any:
        for _ in range(5):
            yield b" " * (MAX_BODY_BYTES // 4)

    response = client.post("/echo-size", content=chunks(), headers=AUTH)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413 and response.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    small = client.post("/echo-size", content=iter([b"12", b"345"]), headers=AUTH)
    assert small.status_code == 200 and small.json() == {"bytes": 5}


def test_a_content_length_that_is_not_a_number_is_400(
    api: tuple[TestClient, Metrics, list[int]],
) -> None:
    client, _, _ = api
    headers = {**AUTH, "content-type": "application/json", "content-length": "lots"}
    response = client.post("/admin/reload", headers=headers)
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_CONTENT_LENGTH"


# -- metrics ------------------------------------------------------------------------------------


def test_metrics_registries_are_independent() -> None:
    first, second = Metrics(), Metrics()  # a shared registry would refuse the second
    assert first.registry is not second.registry
    first.requests.labels("/v1/predict", "200").inc(3)
    first.missing.labels("origin_weather__temp").inc()
    assert 'airloop_requests_total{endpoint="/v1/predict",status="200"} 3.0' in (
        first.exposition().decode()
    )
    other = second.exposition().decode()
    assert "airloop_requests_total{" not in other
    assert "airloop_missing_features_total{" not in other
    assert "# TYPE airloop_requests_total counter" in other


# -- input rows ---------------------------------------------------------------------------------


def loaded_model(columns: list[str], numeric: set[str]) -> LoadedModel:
    """A model as the holder would load it, without MLflow: only the columns matter here."""
    return LoadedModel(
        name="flight_delay",
        version="3",
        pyfunc=None,
        raw=None,
        input_columns=columns,
        numeric_columns=frozenset(numeric),
    )


def test_input_columns_take_request_fields_over_online_features() -> None:
    model = loaded_model(["carrier", "distance"], {"distance"})
    rows = [
        {"carrier": "AA", "distance": 2475},
        {"carrier": "UA", "distance": 1089},
    ]
    online = {"carrier": ["XX", "XX"], "distance": [1.0, 1.0]}
    data, missing = input_columns(model, rows, online)
    assert data["carrier"].dtype == object
    assert data["carrier"].tolist() == ["AA", "UA"]
    assert data["distance"].dtype == np.float64
    assert data["distance"].tolist() == [2475.0, 1089.0]
    assert missing == [[], []]


def test_input_columns_turn_none_numbers_to_nan_and_report_missing_per_row() -> None:
    columns = [
        "carrier",
        "tailnum",
        "origin_weather__temp",
        "plane_attributes__seats",
        "route_delays__share_7d",
        "plane_attributes__model",
    ]
    numeric = {"origin_weather__temp", "plane_attributes__seats", "route_delays__share_7d"}
    rows = [{"carrier": "AA", "tailnum": "N1"}, {"carrier": "UA", "tailnum": None}]
    online = {
        "tailnum": ["N9", "N9"],  # the request's own value wins, even a None
        "origin_weather__temp": [51.1, None],
        "plane_attributes__seats": [180, None],
    }
    data, missing = input_columns(loaded_model(columns, numeric), rows, online)
    assert list(data) == columns
    assert data["tailnum"].tolist() == ["N1", None]
    for column in numeric:
        assert data[column].dtype == np.float64
    assert data["origin_weather__temp"][0] == 51.1
    assert data["plane_attributes__seats"][0] == 180.0
    assert np.isnan(data["origin_weather__temp"][1])
    assert np.isnan(data["route_delays__share_7d"]).all()  # in neither: NaN for every row
    assert data["plane_attributes__model"].tolist() == [None, None]
    assert missing == [
        ["route_delays__share_7d", "plane_attributes__model"],
        [
            "tailnum",
            "origin_weather__temp",
            "plane_attributes__seats",
            "route_delays__share_7d",
            "plane_attributes__model",
        ],
    ]


def at(hour: int) -> int:
    """Epoch seconds of an hour on 2013-01-01 UTC, as Feast reports a feature's timestamp."""
    return int(datetime(2013, 1, 1, hour, tzinfo=UTC).timestamp())


def test_feature_times_take_the_newest_stamp_per_view() -> None:
    online = {
        "origin": ["JFK", "EWR", "LGA"],
        "origin_weather__temp": [51.1, None, 40.0],
        "plane_attributes__seats": [180, 0, 150],  # a feature's values, not its timestamps
        "origin_weather__temp__ts": [at(10), 0, at(9)],
        "origin_weather__dewp__ts": [at(11), 0, at(8)],
        "carrier_delays__share_1d__ts": [0, at(12), None],
        "origin__ts": [at(23), at(23), at(23)],  # not <view>__<feature>__ts
        "a__b__c__ts": [at(23), at(23), at(23)],
        "route_delays__share__7d": [at(23), at(23), at(23)],  # three parts, but no "ts"
    }
    assert feature_times(online, 3) == [
        {"origin_weather": "2013-01-01T11:00:00+00:00", "carrier_delays": None},
        {"origin_weather": None, "carrier_delays": "2013-01-01T12:00:00+00:00"},
        {"origin_weather": "2013-01-01T09:00:00+00:00", "carrier_delays": None},
    ]


def test_a_row_older_than_its_views_ttl_at_the_events_time_is_missing(flights: UseCase) -> None:
    """As in training's point-in-time join: the weather (ttl 3 h) of 9:00 is served for an event
    at 11:00, not at 13:00; a request without an event time keeps what the store holds."""
    online = {
        "origin_weather__temp": [51.1, 51.1, 51.1],
        "origin_weather__temp__ts": [at(9), at(9), at(9)],
        "plane_departures__dep_delay_count_12h": [0, 2, 0],
        "plane_departures__dep_delay_count_12h__ts": [at(0), 0, at(0)],  # 0: no row
        "distance__ts": [at(0), at(0), at(0)],  # not <view>__<feature>__ts
    }
    times = [datetime(2013, 1, 1, 11, tzinfo=UTC), datetime(2013, 1, 1, 13, tzinfo=UTC), None]
    expire_stale(flights, online, times)
    assert online["origin_weather__temp"] == [51.1, None, 51.1]
    assert online["plane_departures__dep_delay_count_12h"] == [0, 2, 0]  # within its 1 day
    expire_stale(flights, online, [datetime(2013, 1, 3, tzinfo=UTC), None, None])
    assert online["plane_departures__dep_delay_count_12h"] == [None, 2, 0]


def test_feature_times_without_timestamps_are_empty_per_row() -> None:
    assert feature_times({"origin_weather__temp": [1.0, 2.0]}, 2) == [{}, {}]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("month", 13, "less_than_equal"),  # the source declares 1-12
        ("month", 0, "greater_than_equal"),
        ("hour", 24, "less_than_equal"),
        ("distance", 0.5, "greater_than_equal"),
        ("carrier", "ZZ", "literal_error"),  # not in the declared value set
        ("origin", "LAX", "literal_error"),
    ],
)
def test_values_outside_the_declared_range_or_set_are_refused(
    body_model: type[BaseModel], field: str, value: Any, error: str
) -> None:
    found = refusals(body_model, {"instances": [instance(**{field: value})]})
    assert found and found[0][0] == error, found
    assert body_model.model_validate({"instances": [instance(month=12, hour=0, carrier="9E")]})


def test_a_column_that_is_only_mostly_in_range_admits_values_outside_it(flights: UseCase) -> None:
    source = flights.sources[flights.events.source]
    columns = [
        c.model_copy(update={"mostly": 0.99}) if c.name == "month" else c for c in source.columns
    ]
    sources = {
        **flights.sources,
        flights.events.source: source.model_copy(update={"columns": columns}),
    }
    lenient = request_model(flights.model_copy(update={"sources": sources}))
    assert lenient.model_validate({"instances": [instance(month=13)]})


# -- /invocations' forms and media types, Starlette's own errors -----------------------------


def test_a_json_body_must_be_one_form_of_the_protocol() -> None:
    from airloop.serving.errors import ApiError
    from airloop.serving.invocations import table_as_sent

    def sent(body: Any) -> Any:
        return table_as_sent(json.dumps(body).encode(), "application/json")

    def refused(body: Any) -> ApiError:
        with pytest.raises(ApiError) as caught:
            sent(body)
        assert caught.value.status == 400
        return caught.value

    assert list(sent({"dataframe_records": [{"a": 1}], "params": {}})) == ["a"]
    assert list(sent({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}})) == ["a", "b"]
    assert list(sent({"inputs": {"a": [1, 2]}})) == ["a"]
    assert sent([1, 2]) is None and table_as_sent(b"{", "application/json") is None
    assert sent({"instances": [[1, 2]]}) is None  # no column names: refused by CheckedModel
    assert refused({"dataframe_records": [], "parms": {"k": 1}}).fields == [
        {"field": "parms", "problem": "not a key of the scoring protocol"}
    ]
    assert [f["field"] for f in refused({"instances": [], "inputs": []}).fields] == [
        "instances",
        "inputs",
    ]
    assert refused({"inputs": [], "params": 3}).fields == [
        {"field": "params", "problem": "must be an object"}
    ]


def test_a_bool_is_not_a_number_however_the_table_comes(flights: UseCase) -> None:
    """MLflow reads ``false`` (JSON) and "False" (CSV) in a number column as 0.0: the checks
    see the table as it was sent."""
    from airloop.serving.invocations import request_rules, table_as_sent, table_problems

    row = {"carrier": "UA", "origin": "EWR", "distance": 1400.0, "hour": False, "month": 1}
    columns = list(row)
    for data, media_type in [
        (json.dumps({"instances": [row]}).encode(), "application/json"),
        (b"carrier,origin,distance,hour,month\nUA,EWR,1400.0,False,1\n", "text/csv"),
    ]:
        table = table_as_sent(data, media_type)
        assert table is not None
        problems = table_problems(request_rules(flights), columns, table)
        assert problems == [{"field": "hour", "problem": "must be a number (row 0)"}]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("application/json", "application/json"),
        ("Text/CSV; charset=UTF-8", "text/csv"),
        ("application/vnd.apache.parquet", "application/vnd.apache.parquet"),
        ("text/plain", None),
        ("application/json; charset=latin-1", None),
        ("application/json; format=pandas-split", None),
    ],
)
def test_invocations_take_json_csv_and_parquet_in_utf_8(given: str, expected: str | None) -> None:
    from airloop.serving.errors import ApiError
    from airloop.serving.invocations import scoring_media_type

    if expected is not None:
        assert scoring_media_type(given) == expected
    else:
        with pytest.raises(ApiError) as refused:
            scoring_media_type(given)
        assert refused.value.status == 415 and refused.value.code == "UNSUPPORTED_MEDIA_TYPE"


def test_a_table_is_given_to_the_model_as_its_signature_says() -> None:
    import pandas as pd
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    from airloop.serving.invocations import as_signature_says

    class Metadata:
        def get_input_schema(self) -> Schema:
            return ModelSignature(
                inputs=Schema(
                    [
                        ColSpec("double", "hour"),
                        ColSpec("double", "temp", required=False),
                        ColSpec("string", "carrier", required=False),
                        ColSpec("double", "seats"),
                        ColSpec("double", "empty"),
                    ]
                )
            ).inputs

    sent = pd.DataFrame({"hour": [5, 6], "empty": [None, None]})
    table = as_signature_says(sent, Metadata())
    assert table["hour"].dtype == "float64" and table["empty"].dtype == "float64"
    assert table["temp"].isna().all() and table["carrier"].isna().all()  # optional: missing
    assert "seats" not in table  # required: left for MLflow to refuse


def test_starlettes_own_errors_come_in_the_services_shape(
    api: tuple[TestClient, Metrics, list[int]],
) -> None:
    client, _, _ = api
    unreadable = client.post(
        "/v1/predict", content=b"\xff\xfe{", headers={**AUTH, "content-type": "application/json"}
    )
    assert unreadable.status_code == 400 and set(unreadable.json()) == {"error_code", "message"}
    wrong_method = client.get("/v1/predict")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error_code"] == "METHOD_NOT_ALLOWED"
    assert client.get("/nowhere").json()["error_code"] == "NOT_FOUND"
