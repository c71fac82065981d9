"""Property tests of what the service takes, and of its token: no model server needed.

- ``/v1/predict``'s request model: any JSON either validates or is refused with a 422 that
  names the field, never a 500 and never an echo; and the model agrees with the JSON Schema
  the OpenAPI document publishes (what one accepts, the other accepts).
- The bearer token: compared in constant time, and a missing or wrong one is one 401 that
  says nothing about which it was.
"""

from __future__ import annotations

import hmac
import json
import re
from datetime import datetime
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from airloop.serving import guard
from airloop.serving.schema import request_model
from airloop.usecase import UseCase
from tests.serving_app import AUTH, FLIGHT, TOKEN, serving_app

MARKER = "zz-echo-zz"
DATE_TIMES = [
    "2013-01-01T05:00:00Z",
    "2013-01-01t05:00:00.25+05:30",
    "2013-01-01T05:00:00",  # no offset
    "2013-01-01 05:00:00Z",  # a space
    "2013-01-01T05:00Z",  # no seconds
    "2013-02-30T05:00:00Z",  # no such day
    "2013-01-01",
    "1356998400",
    "",
]
PROPERTY = settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
# JSON values: what a body or a field may be sent as (a marker string among them, to catch
# an answer that echoes what it was sent).
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.just(MARKER)
    | st.sampled_from(DATE_TIMES)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def body_model(flights: UseCase) -> type[BaseModel]:
    return request_model(flights)


@pytest.fixture(scope="module")
def app(body_model: type[BaseModel]) -> Any:
    client, _, _ = serving_app(body_model)
    return client


def is_date_time(value: object) -> bool:
    """JSON Schema's "date-time": RFC 3339 (section 5.6), a real date and time, an offset."""
    if not isinstance(value, str):
        return True  # formats apply to strings only
    pattern = r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)"
    if not re.fullmatch(pattern, value, re.ASCII):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def published(body_model: type[BaseModel]) -> jsonschema.Draft202012Validator:
    """The request body's JSON Schema as the OpenAPI document publishes it, formats checked."""
    schema = body_model.model_json_schema(ref_template="#/$defs/{model}")
    formats = jsonschema.FormatChecker()
    formats.checks("date-time")(is_date_time)
    return jsonschema.Draft202012Validator(schema, format_checker=formats)


def assert_refused_by_field(response: Any, field_prefix: str = "") -> None:
    """A 4xx from the service's own error shape, naming fields, echoing nothing."""
    assert response.status_code in (400, 422), response.text
    body = response.json()
    assert set(body) <= {"error_code", "message", "fields"} and body["message"]
    assert MARKER not in response.text
    if response.status_code == 422:
        assert body["fields"] and all(f["field"] and f["problem"] for f in body["fields"])
        assert any(f["field"].startswith(field_prefix) for f in body["fields"]), body["fields"]


@PROPERTY
@given(body=JSON)
def test_any_json_body_is_answered_or_refused_never_a_500(app: Any, body: Any) -> None:
    response = app.post("/v1/predict", content=json.dumps(body), headers=JSON_HEADERS)
    if response.status_code != 200:
        assert_refused_by_field(response)


@PROPERTY
@given(
    field=st.sampled_from([*FLIGHT, "event_id", "event_time", "unknown_field"]),
    value=JSON,
)
def test_one_bad_field_is_refused_by_its_name(app: Any, field: str, value: Any) -> None:
    """A valid instance with one field set to any JSON value: served, or a 422 naming it."""
    instance = {**FLIGHT, field: value}
    response = app.post(
        "/v1/predict", content=json.dumps({"instances": [FLIGHT, instance]}), headers=JSON_HEADERS
    )
    if response.status_code != 200:
        assert_refused_by_field(response, f"instances.1.{field}")
        assert response.status_code == 422


@PROPERTY
@given(field=st.sampled_from([*FLIGHT, "event_id", "event_time"]), value=SCALARS)
def test_the_model_accepts_what_the_published_schema_accepts(
    body_model: type[BaseModel],
    published: jsonschema.Draft202012Validator,
    field: str,
    value: Any,
) -> None:
    """Valid for the model exactly when valid for the OpenAPI document's schema: the
    document tells the truth about every field (types, ranges, value sets, date-times)."""
    body = {"instances": [{**FLIGHT, field: value}]}
    try:
        body_model.model_validate(json.loads(json.dumps(body)))
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == published.is_valid(body), (field, value)


JSON_HEADERS = {**AUTH, "content-type": "application/json"}


# -- the token ----------------------------------------------------------------------------------


def test_the_token_is_compared_in_constant_time(
    body_model: type[BaseModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every POST's credentials go through hmac.compare_digest, whole, whether right or wrong."""
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(guard.hmac, "compare_digest", spy)
    client, _, _ = serving_app(body_model)
    assert client.post("/admin/reload", headers=AUTH).status_code == 200
    assert client.post("/admin/reload", headers={"authorization": "Bearer x"}).status_code == 401
    expected = f"Bearer {TOKEN}".encode()
    assert compared == [(expected, expected), (b"Bearer x", expected)]


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"authorization", b"Bearer")],
        [(b"authorization", b"Bearer ")],
        [(b"authorization", f"bearer {TOKEN}".encode())],
        [(b"authorization", f"Bearer {TOKEN} ".encode())],
        [(b"authorization", f"Bearer {TOKEN[:-1]}".encode())],
        [(b"authorization", f"Bearer {TOKEN}x".encode())],
        [(b"authorization", f"Basic {TOKEN}".encode())],
        [(b"authorization", "Bearer s3cret-tökén".encode("latin-1"))],
        [(b"authorization", f"Bearer {TOKEN}".encode()), (b"authorization", b"Bearer x")],
    ],
    ids=[
        "missing",
        "no-token",
        "empty-token",
        "lower-case-scheme",
        "trailing-space",
        "prefix",
        "longer",
        "basic",
        "latin-1",
        "twice",
    ],
)
def test_a_missing_or_wrong_token_is_one_401_that_says_no_more(
    body_model: type[BaseModel], headers: list[tuple[bytes, bytes]]
) -> None:
    client, _, received = serving_app(body_model)
    response = client.post(
        "/v1/predict",
        content=json.dumps({"instances": [FLIGHT]}),
        headers=[(b"content-type", b"application/json"), *headers],
    )
    assert response.status_code == 401
    assert response.json() == {
        "error_code": "UNAUTHENTICATED",
        "message": "a valid bearer token is required",
    }
    assert response.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in response.text and received == []


def test_probes_stay_open_and_without_a_token_posts_pass(body_model: type[BaseModel]) -> None:
    """What the token does not guard, by design: GET probes; and nothing, without a token
    (the embedded profile's default, on loopback)."""
    guarded, _, _ = serving_app(body_model)
    assert guarded.get("/health").status_code == 200
    open_client, _, received = serving_app(body_model, token=None)
    assert open_client.post("/v1/predict", json={"instances": [FLIGHT]}).status_code == 200
    assert received == [1]
