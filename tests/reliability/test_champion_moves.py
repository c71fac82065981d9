"""The champion moves while two replicas serve under load; then a replica is killed mid-traffic.

Two replicas of the serving API (``airloop serve``, processes on one home and one prediction
log, as two containers on a shared volume) follow the ``champion`` alias. Clients send
``/v1/predict`` to both while the champion moves :data:`MOVES` times, by airloop's own
promotion and rollback, as the gate and an operator move it. Every request must be answered,
and every answer must name a version that was the champion during the request or just before
it: each replica follows each move within :data:`LAG_BUDGET` seconds (it polls the alias; the
version before stays loaded for a rollback), and an answer may lag by that and one poll.

Then one replica is killed (``kill -9``) in the middle of its traffic: each prediction that
either replica answered is in the prediction log, whole, with the version the answer named,
and monitoring's reader reads the log without failing.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import MODEL
from tests.reliability.servers import AirloopServer, free_port, wait_for
from tests.traffic import FIRST_FLIGHT_REQUEST

REPLICAS = 2
CLIENTS = 4  # threads, each sending to one replica
MOVES = 20  # promotions and rollbacks, alternately
MOVE_EVERY = 1.0  # seconds of traffic after both replicas followed a move
MIN_REQUESTS = 5_000  # the traffic goes on until the moves are done and this many were answered
POLL_SECONDS = 1  # each replica's poll of the alias
LAG_BUDGET = 15.0  # the longest a replica may take to follow a move (a poll and a load)
TRAFFIC_DEADLINE = 300.0
KILL_AFTER = 3.0  # seconds of traffic before the kill, and after it


@dataclass(frozen=True)
class Answer:
    replica: int
    started: float
    ended: float
    status: int
    request_id: str | None
    version: str | None
    rows: int


@pytest.fixture
def replicas(champion: str, user_env: dict[str, str], root: Any) -> Iterator[list[AirloopServer]]:
    servers: list[AirloopServer] = []
    try:
        for i in range(REPLICAS):
            port = free_port()
            server = AirloopServer(
                ["serve", "--port", str(port), "--poll", str(POLL_SECONDS)],
                user_env,
                f"http://127.0.0.1:{port}/ready",
                root / f"replica-{i}.log",
                port,
            )
            servers.append(server)
            server.start()
        yield servers
    finally:
        for server in servers:
            server.destroy()


def second_version(settings: Any, champion: str) -> str:
    """Another version of the model (the champion's artifacts registered again), to move to."""
    from airloop.registry.tracking import configure

    client = configure(settings)
    mv = client.get_model_version(MODEL, champion)
    copy = client.create_model_version(
        MODEL,
        mv.source,
        run_id=mv.run_id,
        tags={"airloop.copy_of": champion},
        # The logged model the source names (``models:/<model id>``, MLflow 3).
        model_id=mv.model_id or mv.source.removeprefix("models:/"),
    )
    return str(copy.version)


def move(settings: Any, flights: Any, i: int, challenger: str) -> None:
    """An even move promotes the challenger (the gate passed); an odd one rolls it back."""
    from airloop.registry.models import GateDecision, Registration, promote, rollback

    if i % 2 == 0:
        decision = GateDecision(promote=True, reasons=[], primary_metric="roc_auc")
        registration = Registration(
            name=MODEL, version=challenger, created=False, decision=decision
        )
        assert promote(settings, flights, registration, approved_by="reliability tier").promoted
    else:
        rollback(settings, flights, f"move {i} of the reliability tier", "reliability tier")


class Traffic:
    """Clients sending ``/v1/predict`` to the replicas until told to stop; every answer kept."""

    def __init__(self, servers: list[AirloopServer], token: str) -> None:
        self.servers = servers
        self.token = token
        self.answers: list[Answer] = []
        self.unanswered: list[tuple[int, float, str]] = []  # replica, time, the error
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(i % len(servers),)) for i in range(CLIENTS)
        ]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _client(self, replica: int) -> None:
        url = f"http://127.0.0.1:{self.servers[replica].port}/v1/predict"
        body = {"instances": [FIRST_FLIGHT_REQUEST, FIRST_FLIGHT_REQUEST]}
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=60.0, headers=headers) as client:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    response = client.post(url, json=body)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.unanswered.append((replica, time.monotonic(), repr(exc)))
                    time.sleep(0.05)
                    continue
                ended = time.monotonic()
                payload = response.json() if response.status_code == 200 else {}
                with self._lock:
                    self.answers.append(
                        Answer(
                            replica,
                            started,
                            ended,
                            response.status_code,
                            payload.get("request_id"),
                            (payload.get("model") or {}).get("version"),
                            len(payload.get("predictions", [])),
                        )
                    )

    def count(self) -> int:
        with self._lock:
            return len(self.answers)


def test_the_champion_moves_under_load_on_two_replicas_and_a_killed_one_loses_no_answer(
    replicas: list[AirloopServer], settings: Any, flights: Any
) -> None:
    from airloop.registry.models import alias_version
    from airloop.serving.prediction_log import read_log

    # The champion now (another test of the session may have promoted a version of its own).
    champion = alias_version(settings, MODEL)
    assert champion is not None
    challenger = second_version(settings, champion)
    token = settings.serving_token.get_secret_value()
    # The champion's history on this process's clock: (the move began, it had ended, the
    # version champion from then on).
    history: list[tuple[float, float, str]] = [(float("-inf"), float("-inf"), champion)]
    lags: list[float] = []

    def serving(replica: AirloopServer, version: str) -> bool:
        ready = httpx.get(f"http://127.0.0.1:{replica.port}/ready", timeout=30)
        return bool(ready.status_code == 200 and ready.json()["model"]["version"] == version)

    with Traffic(replicas, token) as traffic:
        time.sleep(MOVE_EVERY)
        for i in range(MOVES):
            version = challenger if i % 2 == 0 else champion
            began = time.monotonic()
            move(settings, flights, i, challenger)
            moved = time.monotonic()
            history.append((began, moved, version))
            for replica in replicas:  # each replica follows, within the budget
                wait_for(partial(serving, replica, version), f"v{version}", LAG_BUDGET)
            lags.append(time.monotonic() - moved)
            time.sleep(MOVE_EVERY)
        deadline = time.monotonic() + TRAFFIC_DEADLINE
        while traffic.count() < MIN_REQUESTS and time.monotonic() < deadline:
            time.sleep(0.5)
    assert alias_version(settings, MODEL) == champion  # an even number of moves: back to it

    # Every request answered, 200, and each answer names a version that was the champion
    # during the request or just before it.
    answers = traffic.answers
    assert not traffic.unanswered, traffic.unanswered[:10]
    assert len(answers) >= MIN_REQUESTS, f"only {len(answers)} requests answered"
    assert {a.status for a in answers} == {200}, sorted({a.status for a in answers})

    def champions_between(lo: float, hi: float) -> set[str]:
        """The versions that may have been the champion at some time in [lo, hi]: each from
        the start of the move that made it to the end of the move that replaced it."""
        found = set()
        for k, (began, _, version) in enumerate(history):
            replaced = history[k + 1][1] if k + 1 < len(history) else float("inf")
            if began <= hi and replaced >= lo:
                found.add(version)
        return found

    # How far behind an answer may be: the slowest a replica followed a move, and a poll.
    slack = max(lags) + POLL_SECONDS
    wrong = [a for a in answers if a.version not in champions_between(a.started - slack, a.ended)]
    assert not wrong, wrong[:10]
    named = {(a.replica, a.version) for a in answers}
    assert named == {(r, v) for r in range(REPLICAS) for v in (champion, challenger)}, named

    # A replica killed in the middle of its traffic: the other answers on; every answer
    # either gave is in the log, whole, with the version it named.
    with Traffic(replicas, token) as traffic_kill:
        time.sleep(KILL_AFTER)
        killed_at = time.monotonic()
        replicas[1].stop(signal.SIGKILL)
        time.sleep(KILL_AFTER)
    survivor = [a for a in traffic_kill.answers if a.replica == 0]
    assert survivor and {a.status for a in survivor} == {200}
    assert not [u for u in traffic_kill.unanswered if u[0] == 0], traffic_kill.unanswered[:5]
    assert all(u[1] >= killed_at for u in traffic_kill.unanswered), traffic_kill.unanswered[:5]
    answered = {
        str(a.request_id): (a.version, a.rows)
        for a in answers + traffic_kill.answers
        if a.status == 200
    }
    logged: dict[str, list[Any]] = {}
    for record in read_log(settings.prediction_log_dir(flights.name)):
        if record["request_id"] in answered:
            logged.setdefault(record["request_id"], []).append(record)
    missing = [r for r in answered if r not in logged]
    assert not missing, f"{len(missing)} of {len(answered)} answers not in the log: {missing[:5]}"
    for request_id, (said, rows) in answered.items():
        records = logged[request_id]
        assert sorted(r["index"] for r in records) == list(range(rows)), request_id
        assert {r["model_version"] for r in records} == {said}, request_id
    killed = [a for a in traffic_kill.answers if a.replica == 1]
    print(
        f"\n{MOVES} champion moves under {CLIENTS} clients on {REPLICAS} replicas:"
        f" {len(answers)} requests, 0 failed, 0 naming a version not champion within"
        f" {slack:.1f} s; the slowest replica followed a move in {max(lags):.1f} s."
        f" A replica killed mid-traffic after {len(killed)} answers: all"
        f" {len(answered)} answered predictions in the log, whole"
    )
