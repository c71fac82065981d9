"""Redis, Feast's online store, crashes or hangs under the serving API and comes back.

The service (``airloop serve``, a process, on the tier's Redis and tracking server) is under
traffic from several clients the whole time. While Redis is down, the service stays alive,
says on ``/ready`` which dependency is down, refuses ``/v1/predict`` with a 503 that names it
(never a 500, never a request left waiting), and ``/invocations``, which needs no online
features, keeps scoring. Redis then comes back (started again on the same port from its last
snapshot, or let go on), and the service recovers by itself: the same process, the same
champion, the same online values.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import running
from tests.reliability.conftest import MODEL, registry_state
from tests.reliability.servers import AirloopServer, RedisServer, wait_for
from tests.reliability.traffic import Tally, status_is
from tests.traffic import FIRST_FLIGHT_REQUEST

CLIENTS = 4  # concurrent callers, each cycling through the four endpoints
OUTAGE_SECONDS = 20.0  # how long the traffic runs against the service while Redis is down
STEADY_SECONDS = 5.0  # traffic before the fault and after recovery
RECOVERY_BUDGET = 60.0  # seconds from Redis answering again to the service predicting again
ANSWER_BUDGET = 45.0  # any request answered within this, even with Redis hung: never a hang


@pytest.fixture
def service(
    champion: str, user_env: dict[str, str], settings: Any, root: Any
) -> Iterator[AirloopServer]:
    port = settings.usecase_serving_port()
    server = AirloopServer(
        ["serve", "--port", str(port), "--poll", "1"],
        user_env,
        f"{settings.serving_url}/ready",
        root / "serving.log",
        port,
    )
    try:
        server.start()
        yield server
    finally:
        server.stop(signal.SIGTERM)


def invocation_body(settings: Any, version: str) -> dict[str, Any]:
    """One row of the champion's inputs in MLflow's scoring protocol: no online lookup."""
    import mlflow

    from airloop.registry.tracking import configure

    configure(settings)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}")
    row: dict[str, Any] = dict.fromkeys(model.metadata.get_input_schema().input_names(), 1.0)
    row.update(carrier="UA", origin="EWR", hour=5.0, month=1.0, distance=1400.0)
    return {"dataframe_records": [row]}


@pytest.mark.parametrize("fault", ["crash", "hang"])
def test_redis_down_under_traffic_is_survived_and_the_service_recovers_by_itself(
    service: AirloopServer, online_redis: RedisServer, settings: Any, fault: str
) -> None:
    """``crash``: Redis killed (``kill -9``) and started again from its last snapshot.
    ``hang``: Redis stopped (``SIGSTOP``: it accepts connections and never answers) and let go
    on (``SIGCONT``). Every answer must come within :data:`ANSWER_BUDGET`."""
    address = f"Redis at 127.0.0.1:{online_redis.port}"
    version = registry_state(settings)["aliases"]["champion"]  # what the service loaded
    tally = Tally(settings.serving_url, settings.serving_token.get_secret_value())
    predict = {"instances": [FIRST_FLIGHT_REQUEST]}
    invocations = invocation_body(settings, version)

    with tally.client() as client:
        served = tally.call(client, "before", "POST", "/v1/predict", predict)
        assert served.status_code == 200, served.text
        as_of = served.json()["predictions"][0]["features_as_of"]
        assert any(as_of.values()), f"no online values for the request's entities: {as_of}"
        scored = tally.call(client, "before", "POST", "/invocations", invocations)
        assert scored.status_code == 200, scored.text
        expected_scores = scored.json()

    def serving(phase: str, predict_ok: bool) -> Any:
        """One round of the four endpoints, each held to what it must answer in the phase."""

        def same_champion(body: Any) -> str | None:
            return None if body["model"]["version"] == version else f"not v{version}"

        def store_named(body: Any) -> str | None:
            said = str(body.get("online_store"))
            return None if said.startswith(address) else f"online_store does not name {address}"

        def refused_naming_redis(body: Any) -> str | None:
            if body.get("error_code") != "ONLINE_STORE_UNAVAILABLE" or address not in body.get(
                "message", ""
            ):
                return f"not ONLINE_STORE_UNAVAILABLE naming {address}"
            return None

        def same_values(body: Any) -> str | None:
            found = body["predictions"][0]["features_as_of"]
            return None if found == as_of else f"features as of {found}, before {as_of}"

        def round_(client: httpx.Client) -> None:
            tally.expect(client, phase, "GET", "/health", status_is(200))
            if predict_ok:
                tally.expect(client, phase, "GET", "/ready", status_is(200, same_champion))
                tally.expect(
                    client, phase, "POST", "/v1/predict", status_is(200, same_values), predict
                )
            else:
                tally.expect(client, phase, "GET", "/ready", status_is(503, store_named))
                tally.expect(
                    client,
                    phase,
                    "POST",
                    "/v1/predict",
                    status_is(503, refused_naming_redis),
                    predict,
                )
            tally.expect(
                client,
                phase,
                "POST",
                "/invocations",
                status_is(200, lambda body: None if body == expected_scores else "other scores"),
                invocations,
            )

        return round_

    tally.in_threads(CLIENTS, STEADY_SECONDS, serving("before", predict_ok=True))
    keys = online_redis.client().dbsize()
    online_redis.snapshot()  # a Redis that persists by snapshots: its last one, before the crash

    try:
        if fault == "crash":
            online_redis.crash()
        else:
            online_redis.pause()
        outage_rounds = tally.in_threads(
            CLIENTS, OUTAGE_SECONDS, serving("outage", predict_ok=False)
        )
    finally:  # Redis back whatever happened: the same port and folder (it loads the snapshot)
        if fault == "hang":
            online_redis.resume()
        else:
            online_redis.start()
    assert online_redis.client().dbsize() == keys
    answering = time.monotonic()

    def recovered() -> bool:
        with tally.client() as client:
            ready = tally.call(client, "recovering", "GET", "/ready")
            served = tally.call(client, "recovering", "POST", "/v1/predict", predict)
        return ready.status_code == 200 and served.status_code == 200

    wait_for(recovered, "the service did not predict again", RECOVERY_BUDGET, service.log)
    recovery = time.monotonic() - answering
    tally.in_threads(CLIENTS, STEADY_SECONDS, serving("after", predict_ok=True))

    # The whole history: every answer was one its phase allows, none was a 500, and the
    # service that recovered is the process that was serving before (never restarted).
    assert not tally.wrong, "\n".join(tally.wrong[:20])
    assert {status for _, _, status, _ in tally.rows} <= {200, 503}, tally.statuses()
    outage = tally.statuses("outage")
    assert outage[("/v1/predict", 503)] > 0 and outage[("/invocations", 200)] > 0, outage
    assert service.proc is not None and running(service.proc.pid)
    slowest = max(s for _, _, _, s in tally.rows)
    assert slowest < ANSWER_BUDGET, f"an answer took {slowest:.1f} s"
    print(
        f"\nRedis {fault} for {OUTAGE_SECONDS:.0f} s under {CLIENTS} clients:"
        f" {len(tally.rows)} requests"
        f" in all, {sum(outage.values())} during the outage ({outage_rounds} rounds):"
        f" {dict(outage)}; the slowest answer during the outage {tally.slowest('outage'):.1f} s;"
        f" predicting again {recovery:.1f} s after Redis answered; 0 answers of 500"
    )
