"""The REST client against a busy server: a 500 is tried again where asking twice does nothing
twice (a run's note, a pool's size, a trigger with its own run id); a refusal is not."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from airloop.runtime.airflow_cli import AirflowError
from airloop.runtime.api import ApiClient
from airloop.settings import Settings


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    """On loopback: answers each POST and PATCH with the next status queued in ``statuses``
    (then 200 or 201), keeps what it was sent, and knows the runs a POST made."""
    httpd = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    httpd.statuses, httpd.seen, httpd.bodies, httpd.runs = [], [], [], {}  # type: ignore[attr-defined]
    httpd.tasks = []  # type: ignore[attr-defined]

    class Handler(BaseHTTPRequestHandler):
        def answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.endswith("/taskInstances"):  # the next answer queued in ``tasks``
                states = httpd.tasks.pop(0) if len(httpd.tasks) > 1 else httpd.tasks[0]  # type: ignore[attr-defined]
                self.answer(200, {"task_instances": [{"state": s} for s in states]})
            elif self.path.startswith("/api/v2/pools/"):
                self.answer(200, {"name": "p", "slots": 1, "include_deferred": True})
            elif (run := httpd.runs.get(self.path.rsplit("/", 1)[-1])) is not None:  # type: ignore[attr-defined]
                self.answer(200, run)
            else:
                self.answer(404, {"detail": "not found"})

        def write(self, created: int) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            httpd.bodies.append((self.path, body))  # type: ignore[attr-defined]
            status = httpd.statuses.pop(0) if httpd.statuses else created  # type: ignore[attr-defined]
            httpd.seen.append(status)  # type: ignore[attr-defined]
            if self.command == "POST" and "dag_run_id" in body:
                if body["dag_run_id"] in httpd.runs:  # type: ignore[attr-defined]
                    status = 409
                elif status != 409:  # made, even when a busy server answers 500
                    httpd.runs[body["dag_run_id"]] = {"dag_run_id": body["dag_run_id"]}  # type: ignore[attr-defined]
            self.answer(status, {"detail": "database is locked"} if status >= 400 else {})

        def do_PATCH(self) -> None:
            self.write(200)

        def do_POST(self) -> None:
            self.write(200)

        def log_message(self, *args: object) -> None:
            return

    httpd.RequestHandlerClass = Handler
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()


def client(httpd: HTTPServer, tmp_path) -> ApiClient:
    api = ApiClient(Settings(home=tmp_path, airflow_port=httpd.server_address[1]))
    api._token = "t"
    return api


def test_a_busy_servers_500_is_tried_again(server, tmp_path) -> None:
    server.statuses.extend([500, 500])  # type: ignore[attr-defined]
    client(server, tmp_path).set_note("monitoring", "r1", "note")
    assert server.seen == [500, 500, 200]  # type: ignore[attr-defined]


def test_a_refused_note_fails_at_once(server, tmp_path) -> None:
    server.statuses.append(404)  # type: ignore[attr-defined]
    with pytest.raises(AirflowError, match="HTTP 404"):
        client(server, tmp_path).set_note("monitoring", "nope", "note")
    assert server.seen == [404]  # type: ignore[attr-defined]


def test_a_pool_is_resized_with_what_else_it_was(server, tmp_path) -> None:
    server.statuses.append(500)  # type: ignore[attr-defined]
    api = client(server, tmp_path)
    assert api.pool_slots("airloop_online_store") == 1
    api.set_pool_slots("airloop_online_store", 0)
    assert server.seen == [500, 200]  # type: ignore[attr-defined]
    path, body = server.bodies[-1]  # type: ignore[attr-defined]
    assert path == "/api/v2/pools/airloop_online_store?update_mask=slots"
    assert body == {"pool": "airloop_online_store", "slots": 0, "include_deferred": True}


def test_a_trigger_answered_500_finds_the_run_its_first_try_made(server, tmp_path) -> None:
    server.statuses.append(500)  # type: ignore[attr-defined]
    interval = (datetime(2013, 1, 5, tzinfo=UTC), datetime(2013, 1, 6, tzinfo=UTC))
    run = client(server, tmp_path).trigger("monitoring", interval=interval)
    assert len(server.runs) == 1 and run["dag_run_id"] in server.runs  # type: ignore[attr-defined]
    assert run["dag_run_id"].startswith("manual__")
    (_, first), (_, second) = server.bodies  # type: ignore[attr-defined]
    assert first == second and first["data_interval_start"] == "2013-01-05T00:00:00+00:00"


def test_a_trigger_for_an_interval_another_run_owns_is_refused(server, tmp_path) -> None:
    server.statuses.append(409)  # type: ignore[attr-defined]
    with pytest.raises(AirflowError, match="HTTP 409"):
        client(server, tmp_path).trigger("monitoring")


def test_a_run_is_due_at_its_intervals_end_or_now_to_the_second(server, tmp_path) -> None:
    """On SQLite the scheduler compares run_after with a clock that has no fraction of a
    second: a run due at a fraction waited for the next second. A past interval's run is due
    since the interval ended, as a scheduled run is; any other run now, to the second."""
    api = client(server, tmp_path)
    api.trigger(
        "monitoring", interval=(datetime(2013, 1, 5, tzinfo=UTC), datetime(2013, 1, 6, tzinfo=UTC))
    )
    before = datetime.now(UTC).replace(microsecond=0)
    api.trigger("model_training", conf={"window_start": "2013-01-01"})
    later = datetime.now(UTC)
    api.trigger("monitoring", interval=(later, later.replace(year=later.year + 1)))
    (_, past), (_, manual), (_, unfinished) = server.bodies  # type: ignore[attr-defined]
    assert past["run_after"] == "2013-01-06T00:00:00+00:00"
    for body in (manual, unfinished):
        due = datetime.fromisoformat(body["run_after"])
        assert due.microsecond == 0 and before <= due <= datetime.now(UTC)


def test_a_run_is_done_when_each_of_its_tasks_is(server, tmp_path) -> None:
    """The replay waits for the tasks' own reports, not for the scheduler to mark the run."""
    server.tasks.extend(  # type: ignore[attr-defined]
        [[], ["success", "running", None], ["success", "skipped", "success"]]
    )
    assert client(server, tmp_path).wait_for_tasks("feature_pipeline", "r1") is True
    server.tasks[:] = [["success", "upstream_failed", "failed"]]  # type: ignore[attr-defined]
    assert client(server, tmp_path).wait_for_tasks("feature_pipeline", "r2") is False
