"""The online service against a real model in a real registry and a real online store."""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd
import pytest

from tests.integration.conftest import CHAMPION_WINDOW
from tests.support import wait_for
from tests.traffic import FIRST_FLIGHT_REQUEST

pytestmark = pytest.mark.integration
GOOD = FIRST_FLIGHT_REQUEST
MARKER = "zz-secret-input-zz"


@pytest.fixture(scope="module")
def client(champion, features, flights):
    from fastapi.testclient import TestClient

    from airloop.serving.app import create_app

    app = create_app(features, flights, poll_seconds=0.2)
    with TestClient(app) as test_client:
        yield test_client


def test_health_and_ready(client, champion) -> None:
    from airloop.core.provenance import git_commit
    from airloop.core.version import airloop_version

    health = client.get("/health").json()
    assert health == {"status": "alive", "version": airloop_version(), "git_commit": git_commit()}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert (
        ready.json()["model"]["version"] == champion["version"]
        and ready.json()["online_store"] == "ok"
    )


def test_predict_equals_the_registered_model_in_process(
    client, champion, features, flights
) -> None:
    import mlflow

    from airloop.features.store import feature_store
    from airloop.registry.tracking import configure

    response = client.post("/v1/predict", json={"instances": [GOOD]})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": "flight_delay", "version": champion["version"]}
    served = body["predictions"][0]
    assert served["missing_features"] == []
    assert served["features_as_of"]["origin_weather"].startswith("2013-01-08")
    store = feature_store(features, flights)
    online = store.get_online_features(
        features=store.get_feature_service("flight_delay_v1"),
        entity_rows=[{k: GOOD[k] for k in flights.entity_keys}],
        full_feature_names=True,
    ).to_dict()
    configure(features)
    model = mlflow.sklearn.load_model(f"models:/flight_delay/{champion['version']}")
    row = pd.DataFrame([{**{k: v[0] for k, v in online.items()}, **GOOD}])
    columns = list(model.feature_names_in_)
    assert served["score"] == pytest.approx(float(model.predict_proba(row[columns])[:, 1][0]))


BAD_REQUESTS: list[tuple[str, dict[str, Any], int, str]] = [
    (
        "missing-field",
        {"json": {"instances": [{k: v for k, v in GOOD.items() if k != "distance"}]}},
        422,
        "instances.0.distance",
    ),
    (
        "mistyped-field",
        {"json": {"instances": [{**GOOD, "distance": MARKER}]}},
        422,
        "instances.0.distance",
    ),
    ("extra-field", {"json": {"instances": [{**GOOD, MARKER: 1}]}}, 422, f"instances.0.{MARKER}"),
    (
        "nan",
        {
            "content": b'{"instances": [{"carrier": "UA", "origin": "EWR", "route": "EWR-IAH", "service": "UA_1545_EWR", "dest": "IAH", "tailnum": null, "distance": NaN, "hour": 5, "month": 1}]}',
            "headers": {"content-type": "application/json"},
        },
        422,
        "instances.0.distance",
    ),
    (
        "infinity",
        {
            "content": b'{"instances": [{"carrier": "UA", "origin": "EWR", "route": "EWR-IAH", "service": "UA_1545_EWR", "dest": "IAH", "tailnum": null, "distance": Infinity, "hour": 5, "month": 1}]}',
            "headers": {"content-type": "application/json"},
        },
        422,
        "instances.0.distance",
    ),
    ("oversize-batch", {"json": {"instances": [GOOD] * 1001}}, 422, "instances"),
    ("empty-batch", {"json": {"instances": []}}, 422, "instances"),
    (
        "malformed-json",
        {
            "content": b'{"instances": [' + MARKER.encode(),
            "headers": {"content-type": "application/json"},
        },
        400,
        "MALFORMED_JSON",
    ),
    (
        "wrong-content-type",
        {"content": MARKER.encode(), "headers": {"content-type": "text/plain"}},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    ("not-an-object", {"json": [MARKER]}, 422, "(body)"),
    (
        "huge-body",
        {
            "content": b"{" + b" " * 2_000_001 + b"}",
            "headers": {"content-type": "application/json"},
        },
        413,
        "PAYLOAD_TOO_LARGE",
    ),
]


@pytest.mark.parametrize(
    ("case", "request_kwargs", "status", "named"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_input_gets_a_4xx_naming_the_problem_without_echo(
    client, case, request_kwargs, status, named
) -> None:
    response = client.post("/v1/predict", **request_kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert named in response.text
    assert "Traceback" not in response.text
    if case != "extra-field":  # the field name itself is the offending field
        assert MARKER not in response.text
    assert set(body) <= {"error_code", "message", "fields"}


def test_invocations_speaks_the_mlflow_scoring_protocol(client, champion, features) -> None:
    import mlflow

    from airloop.registry.tracking import configure
    from airloop.training.models import model_inputs

    configure(features)
    model = mlflow.pyfunc.load_model(f"models:/flight_delay/{champion['version']}")
    columns = model.metadata.get_input_schema().input_names()
    frame = pd.DataFrame([{c: 1.0 for c in columns}])
    for c in ("carrier", "origin"):
        frame[c] = "UA" if c == "carrier" else "EWR"
    frame["hour"], frame["month"], frame["distance"] = 5, 1, 1400
    frame = model_inputs(frame, columns)  # numbers as doubles, as the signature records them
    expected = model.predict(frame).tolist()
    for payload in (
        {"dataframe_split": frame.to_dict(orient="split", index=False)},
        {"dataframe_records": frame.to_dict(orient="records")},
        {"inputs": frame.to_dict(orient="list")},
    ):
        response = client.post("/invocations", json=payload)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": expected}
    csv = client.post(
        "/invocations",
        content=frame.to_csv(index=False).encode(),
        headers={"content-type": "text/csv"},
    )
    assert csv.status_code == 200 and csv.json() == {"predictions": expected}
    bad = client.post(
        "/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[MARKER]]}}
    )
    assert bad.status_code == 400 and MARKER not in bad.text and "expected columns" in bad.text


def invocation_frame(features: Any, champion: Any) -> pd.DataFrame:
    """One valid row of the champion's inputs, as a caller of /invocations sends it."""
    import mlflow

    from airloop.registry.tracking import configure

    configure(features)
    model = mlflow.pyfunc.load_model(f"models:/flight_delay/{champion['version']}")
    frame = pd.DataFrame([{c: 1.0 for c in model.metadata.get_input_schema().input_names()}])
    frame["carrier"], frame["origin"] = "UA", "EWR"
    frame["hour"], frame["month"], frame["distance"] = 5.0, 1.0, 1400.0
    return frame


def test_instances_that_leave_out_different_optional_columns_are_scored_as_missing_values(
    client, champion, features
) -> None:
    """Found by the contract test: MLflow turns ``instances`` records into columns, and records
    that each leave out another optional column gave columns of unequal lengths, a 400."""
    import mlflow

    frame = invocation_frame(features, champion)
    schema = mlflow.pyfunc.load_model(f"models:/flight_delay/{champion['version']}").metadata
    optional = [s.name for s in schema.get_input_schema().inputs if not s.required]
    assert len(optional) >= 2, optional  # columns the signature lets a record leave out
    rows = [dict(row) for row in frame.to_dict("records") * 2]
    rows[0][optional[0]] = rows[1][optional[1]] = None
    records = client.post("/invocations", json={"dataframe_records": rows})
    assert records.status_code == 200, records.text
    left_out = [{k: v for k, v in row.items() if v is not None} for row in rows]
    assert left_out[0].keys() != left_out[1].keys()
    response = client.post("/invocations", json={"instances": left_out})
    assert response.status_code == 200, response.text
    assert response.json() == records.json()


def test_invocations_refuse_an_unknown_column_and_a_value_outside_the_declared_set(
    client, champion, features
) -> None:
    frame = invocation_frame(features, champion)
    good = client.post("/invocations", json={"dataframe_records": frame.to_dict("records")})
    assert good.status_code == 200, good.text
    extra = frame.assign(zz_debug=1.0).to_dict(orient="split", index=False)
    response = client.post("/invocations", json={"dataframe_split": extra})
    assert response.status_code == 400, response.text
    assert response.json()["fields"] == [
        {"field": "zz_debug", "problem": "not an input of the model"}
    ]
    outside = frame.assign(carrier=MARKER).to_dict("records")
    response = client.post("/invocations", json={"dataframe_records": outside})
    assert response.status_code == 400 and MARKER not in response.text
    (problem,) = response.json()["fields"]
    assert problem["field"] == "carrier" and problem["problem"].startswith("must be one of: 9E, AA")
    csv = frame.assign(month=13.0).to_csv(index=False).encode()
    response = client.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    assert response.status_code == 400
    assert response.json()["fields"] == [
        {"field": "month", "problem": "must be at most 12 (row 0)"}
    ]


def served_times(client) -> dict[str, str]:
    """The as-of time of each view the example request is served (views with a row)."""
    answer = client.post("/v1/predict", json={"instances": [GOOD]})
    assert answer.status_code == 200, answer.text
    as_of = answer.json()["predictions"][0]["features_as_of"]
    return {view: when for view, when in as_of.items() if when is not None}


def stale_count(client, view: str) -> float:
    """The stale counter's sample for a view on /metrics (0 before its first count)."""
    sample = f'airloop_stale_features_total{{view="{view}"}} '
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(sample):
            return float(line[len(sample) :])
    return 0.0


def test_a_stale_view_is_flagged_and_counted(client) -> None:
    as_of = served_times(client)
    # Two hours after the newest values: the hourly departures view is due twice over.
    latest = max(pd.Timestamp(t) for t in as_of.values())
    event = latest + pd.Timedelta(hours=2)
    before = stale_count(client, "origin_departures")
    answer = client.post(
        "/v1/predict", json={"instances": [{**GOOD, "event_time": event.isoformat()}]}
    )
    assert answer.status_code == 200, answer.text
    served = answer.json()["predictions"][0]
    assert "origin_departures" in as_of and "origin_departures" in served["stale_views"]
    assert served["future_views"] == []
    for view, when in as_of.items():
        assert served["feature_age_seconds"][view] == (event - pd.Timestamp(when)).total_seconds()
    # The labels' daily snapshot serves for a day: stale from a day after it was stamped.
    day_old = served["feature_age_seconds"]["carrier_delays"] >= 24 * 3600
    assert ("carrier_delays" in served["stale_views"]) == day_old
    assert stale_count(client, "origin_departures") == before + 1


def test_an_event_before_the_online_values_is_refused_with_a_pointer_to_batch_scoring(
    client,
) -> None:
    as_of = served_times(client)
    view, newest = max(as_of.items(), key=lambda item: pd.Timestamp(item[1]))
    at_the_values = {**GOOD, "event_time": newest}  # computed at the event's time: usable
    assert client.post("/v1/predict", json={"instances": [at_the_values]}).status_code == 200
    past = {**GOOD, "event_time": (pd.Timestamp(newest) - pd.Timedelta(seconds=1)).isoformat()}
    response = client.post("/v1/predict", json={"instances": [GOOD, past]})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_code"] == "EVENT_BEFORE_ONLINE_FEATURES"
    assert "airloop score" in body["message"] and "offline store point-in-time" in body["message"]
    assert [f["field"] for f in body["fields"]] == ["instances.1.event_time"]
    assert f"{view} (as of {newest})" in body["fields"][0]["problem"]


def test_metrics_are_prometheus_text(client) -> None:
    client.post("/v1/predict", json={"instances": [GOOD]})
    text = client.get("/metrics").text
    assert 'airloop_requests_total{endpoint="/v1/predict",status="200"}' in text
    assert "airloop_request_seconds_bucket" in text and "airloop_prediction_score_bucket" in text
    assert "airloop_model_version" in text


def test_hot_swap_under_load_and_a_failed_load_keeps_the_old_model(
    client, champion, features
) -> None:
    from airloop.registry.tracking import configure

    mlflow_client = configure(features)
    old = mlflow_client.get_model_version("flight_delay", champion["version"])
    new = mlflow_client.create_model_version(
        "flight_delay", old.source, run_id=old.run_id, tags={"airloop.test": "hot-swap"}
    )
    failures: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            r = client.post("/v1/predict", json={"instances": [GOOD]})
            if r.status_code != 200:
                failures.append(r.text)
            else:
                versions.add(r.json()["model"]["version"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: champion["version"] in versions, "no answer by the old model", 30)
        mlflow_client.set_registered_model_alias("flight_delay", "champion", new.version)
        wait_for(lambda: str(new.version) in versions, "no answer by the new model", 30)
        assert client.get("/ready").json()["model"]["version"] == str(new.version)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert versions == {champion["version"], str(new.version)}

    broken = mlflow_client.create_model_version(
        "flight_delay", "file:///nonexistent/model", tags={"airloop.test": "broken"}
    )
    mlflow_client.set_registered_model_alias("flight_delay", "champion", broken.version)
    try:
        wait_for(
            lambda: client.get("/ready").json()["last_model_error"] is not None,
            f"/ready never named v{broken.version}'s failed load",
            30,
            interval=0.2,
        )
        ready = client.get("/ready").json()
        assert ready["model"]["version"] == str(new.version)
        assert f"v{broken.version} failed" in ready["last_model_error"]
        assert client.post("/v1/predict", json={"instances": [GOOD]}).status_code == 200
        assert "airloop_model_load_failures 1.0" in client.get("/metrics").text
    finally:
        mlflow_client.set_registered_model_alias("flight_delay", "champion", champion["version"])


def test_prediction_log_survives_shutdown(champion, features, flights) -> None:
    from fastapi.testclient import TestClient

    from airloop.serving.app import create_app
    from airloop.serving.prediction_log import read_log

    root = features.prediction_log_dir(flights.name)
    before = len(read_log(root))
    with TestClient(create_app(features, flights, poll_seconds=60)) as test_client:
        for i in range(50):
            assert (
                test_client.post(
                    "/v1/predict", json={"instances": [GOOD, GOOD], "request_id": f"durable-{i}"}
                ).status_code
                == 200
            )
    records = read_log(root)
    mine = [r for r in records if r["request_id"].startswith("durable-")]
    assert len(records) - before >= 100 and len(mine) == 100
    assert {r["model_version"] for r in mine} == {champion["version"]}
    assert mine[0]["entities"]["carrier"] == "UA" and "origin_weather__temp" in mine[0]["features"]


def promote_version(settings: Any, usecase: Any, version: str) -> Any:
    """Promote a version as if the gate had passed it."""
    from airloop.registry.models import GateDecision, Registration, promote

    passed = GateDecision(promote=True, reasons=[], primary_metric="roc_auc")
    registration = Registration(name="flight_delay", version=version, created=True, decision=passed)
    return promote(settings, usecase, registration)


@pytest.fixture
def live_service(champion, features, flights):
    """The service on a real socket, where deploys and MLflow clients find it."""
    import uvicorn

    from airloop.serving.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(features, flights, poll_seconds=60),
            host="127.0.0.1",
            port=features.serving_port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the service did not start", 60)
    yield f"http://127.0.0.1:{features.serving_port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_mlflow_scoring_client_works_unchanged(live_service, champion, features) -> None:
    import mlflow
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    from airloop.registry.tracking import configure

    configure(features)
    model = mlflow.pyfunc.load_model(f"models:/flight_delay/{champion['version']}")
    columns = model.metadata.get_input_schema().input_names()
    frame = pd.DataFrame([{c: 0.5 for c in columns}] * 3)
    frame["carrier"], frame["origin"] = "UA", "EWR"
    # Request fields within the use case's declaration, which /invocations checks too.
    frame["hour"], frame["month"], frame["distance"] = 5.0, 1.0, 1400.0
    response = ScoringServerClient("127.0.0.1", int(live_service.rsplit(":", 1)[1])).invoke(frame)
    assert response["predictions"] == model.predict(frame).tolist()


def test_deploy_smoke_tests_the_live_service_and_rolls_back_on_failure(
    live_service, champion, features, flights
) -> None:
    from airloop.registry.models import alias_version
    from airloop.registry.tracking import configure
    from airloop.serving.deploy import DeployError, deploy_model
    from airloop.training.pipeline import build_training_set

    client = configure(features)
    original = champion["version"]
    old = client.get_model_version("flight_delay", original)
    training_set = build_training_set(
        params={"window_start": CHAMPION_WINDOW[0], "window_end": CHAMPION_WINDOW[1]},
        usecase=flights,
        settings=features,
    )
    try:
        good = client.create_model_version("flight_delay", old.source, run_id=old.run_id)
        promotion = promote_version(features, flights, str(good.version))
        result = deploy_model(promotion, training_set, flights, features)
        assert result.deployed and result.smoke_test_rows == 50
        assert (
            client.get_model_version("flight_delay", good.version)
            .tags["airloop.deploy"]
            .startswith("ok:")
        )

        broken = client.create_model_version("flight_delay", "file:///nonexistent/model")
        promotion = promote_version(features, flights, str(broken.version))
        assert alias_version(features, "flight_delay") == str(broken.version)
        with pytest.raises(
            DeployError, match=f"deploy of v{broken.version} failed.*rolled back to v{good.version}"
        ):
            deploy_model(promotion, training_set, flights, features)
        assert alias_version(features, "flight_delay") == str(good.version)
        tags = client.get_model_version("flight_delay", broken.version).tags
        assert "model_training deploy" in tags["airloop.rolled_back"]
        assert tags["airloop.deploy"].startswith(f"deploy of v{broken.version} failed")
    finally:
        client.set_registered_model_alias("flight_delay", "champion", original)


def test_rollback_by_hand_records_who_and_why(champion, features, flights) -> None:
    from airloop.registry.models import RollbackError, alias_version, rollback
    from airloop.registry.tracking import configure

    client = configure(features)
    original = champion["version"]
    old = client.get_model_version("flight_delay", original)
    try:
        newer = client.create_model_version("flight_delay", old.source, run_id=old.run_id)
        promote_version(features, flights, str(newer.version))
        assert alias_version(features, "flight_delay") == str(newer.version)
        done = rollback(features, flights, reason="complaints from ops", who="alice")
        # Back to the champion before the promotion: known before the rollback ran.
        assert (done.from_version, done.to_version) == (str(newer.version), original)
        assert alias_version(features, "flight_delay") == original
        assert (
            "alice: complaints from ops"
            in client.get_model_version("flight_delay", newer.version).tags["airloop.rolled_back"]
        )
        with pytest.raises(RollbackError, match="no 'previous' version"):
            rollback(features, flights, reason="again", who="alice")
    finally:
        client.set_registered_model_alias("flight_delay", "champion", original)


def test_batch_inference_is_idempotent_and_publishes_an_asset(champion, features, flights) -> None:
    import hashlib

    import mlflow
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    from airloop.features.offline import read_partitions
    from airloop.features.store import feature_store
    from airloop.registry.tracking import configure
    from airloop.serving.batch import predictions_path
    from airloop.training.models import model_inputs
    from tests.integration.conftest import day, load_dag

    dag = load_dag("batch_inference")
    uri = "airloop://flights/batch-predictions"

    def events_count() -> int:
        with create_session() as session:
            return session.scalar(
                select(func.count()).select_from(AssetEvent).where(AssetEvent.asset.has(uri=uri))
            )

    before = events_count()
    first = dag.test(logical_date=day(6))  # scores [5 Jan, 6 Jan)
    assert str(first.state) == "success"
    path = predictions_path(features, flights, day(5))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert str(dag.test(logical_date=day(6)).state) == "success"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, (
        "a rerun overwrites with the same rows"
    )
    assert events_count() == before + 2
    out = pd.read_parquet(path)
    events = read_partitions(features, flights, "_events", day(5), day(6))
    assert len(out) == len(events) and set(out["model_version"]) == {champion["version"]}
    store = feature_store(features, flights)
    frame = store.get_historical_features(
        entity_df=events,
        features=store.get_feature_service("flight_delay_v1"),
        full_feature_names=True,
    ).to_df()
    configure(features)
    model = mlflow.pyfunc.load_model(f"models:/flight_delay/{champion['version']}")
    columns = model.metadata.get_input_schema().input_names()
    expected = dict(
        zip(
            frame["event_id"],
            model.get_raw_model().predict_proba(model_inputs(frame, columns))[:, 1],
            strict=True,
        )
    )
    assert out.set_index("event_id")["score"].to_dict() == pytest.approx(expected)


def test_score_in_process_writes_what_the_dag_writes(champion, features, flights) -> None:
    """`airloop score`: the batch stage without Airflow, same file, same rows."""
    from typer.testing import CliRunner

    from airloop.cli import app
    from airloop.serving.batch import predictions_path
    from tests.integration.conftest import day, load_dag

    path = predictions_path(features, flights, day(7))
    run = load_dag("batch_inference").test(logical_date=day(8))  # scores [7 Jan, 8 Jan)
    assert str(run.state) == "success"
    by_dag = pd.read_parquet(path)
    path.unlink()  # what follows is written by the command alone

    result = CliRunner().invoke(app, ["score", "--start", "2013-01-07", "--days", "1"])

    assert result.exit_code == 0, result.output
    by_command = pd.read_parquet(path)
    assert f"2013-01-07: {len(by_command)} rows by v{champion['version']}" in result.output
    assert len(by_dag) > 100 and set(by_dag["model_version"]) == {champion["version"]}
    pd.testing.assert_frame_equal(by_command, by_dag)


def test_the_demos_traffic_is_not_refused(live_service, champion, features, flights) -> None:
    """A day's events sent as the demo sends them, after the day's feature run, each slice at
    its own clock: no event is before the values it is served (the store ends as it was)."""
    from airloop.demo.traffic import clock_step, send_interval
    from tests.integration.conftest import day

    traffic = send_interval(features, flights, day(8), day(9), step=clock_step(flights))
    assert traffic.sent > 500 and traffic.refused == 0 and traffic.predicted == traffic.sent
