"""The serving API against its own OpenAPI document: schemathesis, all checks, every endpoint.

The service runs in-process with a real champion in a real registry and a real online store
(the integration tier's fixtures), with a bearer token, so the auth checks run too. Each
operation gets a bounded, derandomized run: examples, coverage (schemathesis' boundary and
negative cases, undeclared methods, missing headers) and fuzzing, positive and negative.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

pytestmark = pytest.mark.integration
TOKEN = "contract-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_EXAMPLES = 30  # per operation and generation mode, after the coverage cases
TABULAR = ("text/csv", "application/vnd.apache.parquet")
TRIED: Counter[str] = Counter()


def to_csv(ctx: Any, value: Any) -> bytes:
    """A list of records as CSV with a header row, as a caller of MLflow's protocol writes it;
    anything else (a negative case) as its JSON text, which is not a table either."""
    if not (isinstance(value, list) and value and all(isinstance(r, dict) for r in value)):
        return json.dumps(value).encode()
    columns = list(dict.fromkeys(key for record in value for key in record))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for record in value:
        writer.writerow(["" if record.get(c) is None else record[c] for c in columns])
    return out.getvalue().encode()


def to_parquet(ctx: Any, value: Any) -> bytes:
    """A list of records as a Parquet table; anything else as bytes that are not Parquet."""
    import pandas as pd

    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        out = io.BytesIO()
        try:
            pd.DataFrame(value).to_parquet(out)
            return out.getvalue()
        except (TypeError, ValueError, ArithmeticError, ImportError):
            pass  # a column pyarrow cannot type (a negative case): sent as not Parquet
        except Exception as exc:  # pyarrow's own errors
            if "arrow" not in type(exc).__module__:
                raise
    return json.dumps(value).encode()


# The registry's decorator returns None: register the functions, keep their names.
schemathesis.serializer("text/csv")(to_csv)
schemathesis.serializer("application/vnd.apache.parquet")(to_parquet)


def as_received(case: Any) -> list[dict[str, Any]] | None:
    """A tabular body's rows as the service read them (a CSV or Parquet cell has no JSON type:
    "5" and 5 arrive alike), or None when it is not a table."""
    import pandas as pd

    try:
        if case.media_type == "text/csv":
            frame = pd.read_csv(io.BytesIO(to_csv(None, case.body)))
        else:
            frame = pd.read_parquet(io.BytesIO(to_parquet(None, case.body)))
    except Exception:  # not a table: the service refused it or should have
        return None
    return json.loads(frame.to_json(orient="records"))


def negative_data_rejection_as_sent(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis' check, except for a tabular body that is valid once written as a table.

    Schemathesis makes the same exception for bodies sent as text/plain or form fields, whose
    values lose their JSON type on the wire; CSV and Parquet cells lose it the same way (a
    negative case that turns a number into the string "5" sends a valid CSV). The rows as the
    service read them are validated against the declared schema: only a valid table is excused.
    """
    if case.media_type in TABULAR and response.status_code == 200:
        import jsonschema

        rows = as_received(case)
        body = case.operation.get_body_for_media_type(case.media_type)
        if rows is not None and jsonschema.Draft202012Validator(body.optimized_schema).is_valid(
            rows
        ):
            return None
    return negative_data_rejection(ctx, response, case)


def positive_data_acceptance_but_past_events(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis' check, with the one refusal of a schema-valid request the service makes
    by design: an ``event_time`` earlier than the online values (``serving.past_events:
    refuse``), which depends on the store's contents, not on the request's form. Any other 422
    of a valid request is still a failure."""
    if (
        response.status_code == 422
        and case.path == "/v1/predict"
        and response.json().get("error_code") == "EVENT_BEFORE_ONLINE_FEATURES"
    ):
        return None
    return positive_data_acceptance(ctx, response, case)


@pytest.fixture(scope="module")
def served(champion, features, flights) -> Iterator[Any]:
    """The service with the champion loaded, its online store open, and a token."""
    from fastapi.testclient import TestClient

    from airloop.serving.app import create_app

    app = create_app(features, flights, poll_seconds=60, token=TOKEN)
    with TestClient(app):  # runs the lifespan: champion loaded, Feast open
        yield app
    total = sum(TRIED.values())
    print(f"\nschemathesis: {total} cases over {len(TRIED)} operations: {dict(TRIED)}")


OPERATIONS = [
    "GET /health",
    "GET /ready",
    "GET /metrics",
    "POST /admin/reload",
    "POST /v1/predict",
    "POST /invocations",
]


@pytest.fixture(scope="module")
def api_schema(served: Any) -> Any:
    """The document as the service serves it, its requests sent to the app in-process."""
    return schemathesis.openapi.from_asgi("/openapi.json", served)


def keeps_the_contract(case: Any) -> None:
    """One case, sent with the token, and every check schemathesis has (two of them with the
    exceptions their docstrings give)."""
    TRIED[case.operation.label] += 1
    case.call_and_validate(
        headers=AUTH,
        excluded_checks=[negative_data_rejection, positive_data_acceptance],
        additional_checks=[
            negative_data_rejection_as_sent,
            positive_data_acceptance_but_past_events,
        ],
    )


def test_the_document_lists_every_endpoint(api_schema: Any) -> None:
    labels = [result.ok().label for result in api_schema.get_all_operations()]
    assert sorted(labels) == sorted(OPERATIONS)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_api_keeps_its_openapi_contract(api_schema: Any, operation: str) -> None:
    """Examples, coverage and fuzzing cases of one operation, bounded and derandomized (the
    same cases each run), each passing every check."""
    from schemathesis.core.result import Ok
    from schemathesis.pytest.lazy import get_all_tests

    bounded = settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    # schemathesis' pytest plugin builds these tests too, but its parametrize() does not run
    # under pytest 9 (it sets a node attribute pytest no longer has): built here, one an item.
    runs = []
    for result in get_all_tests(
        schema=api_schema, test_func=keeps_the_contract, settings=bounded, given_kwargs={}
    ):
        assert isinstance(result, Ok), result  # an operation the document does not describe
        found, test = result.ok()
        if found.label == operation:
            runs.append(test)
    [run] = runs
    before = TRIED[operation]
    run()
    assert TRIED[operation] > before  # the cases did run


# -- the registry down --------------------------------------------------------------------------


def test_a_hanging_registry_slows_no_request_and_the_champion_keeps_serving(
    champion, features, flights, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the poller waits on a registry that never answers, predictions, MLflow's scoring
    and the probes answer at their usual pace, from the champion already loaded."""
    from fastapi.testclient import TestClient

    from airloop.registry.tracking import configure
    from airloop.serving.app import create_app
    from tests.support import hanging_server
    from tests.traffic import FIRST_FLIGHT_REQUEST

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")  # each poll hangs 2 tries x 2 s
    app = create_app(features, flights, poll_seconds=0.05)
    good = {"instances": [FIRST_FLIGHT_REQUEST]}
    try:
        with TestClient(app) as client, hanging_server() as port:
            holder = app.state.predictor.holder
            assert client.post("/v1/predict", json=good).status_code == 200
            holder.settings = features.model_copy(
                update={"mlflow_tracking_uri": f"http://127.0.0.1:{port}"}
            )
            deadline = time.monotonic() + 60
            slowest, answered = 0.0, 0
            while holder.failed_polls == 0 and time.monotonic() < deadline:
                # until the first poll gives up on the registry (2 tries of 2 s)
                for method, path, body in [
                    ("POST", "/v1/predict", good),
                    ("GET", "/ready", None),
                    ("GET", "/metrics", None),
                ]:
                    started = time.monotonic()
                    response = client.request(method, path, json=body)
                    slowest = max(slowest, time.monotonic() - started)
                    assert response.status_code == 200, response.text
                    if path == "/v1/predict":
                        assert response.json()["model"]["version"] == champion["version"]
                        answered += 1
            assert holder.failed_polls >= 1
            assert answered >= 10 and slowest < 1.0, (answered, slowest)
            print(f"\nregistry hanging: {answered} predictions, slowest request {slowest:.3f} s")
            ready = client.get("/ready").json()
            assert ready["ready"] is True and ready["model"]["version"] == champion["version"]
            assert ready["last_model_error"].startswith("registry unreachable")
            assert holder.next_poll_seconds() > holder.poll_seconds  # backing off
    finally:
        configure(features)  # MLflow's process-wide URI, back to the session's registry
