"""The REST client's PATCHes (a run's note, a pool's size): a busy server's 500 is tried
again, a refusal is not."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from airloop.runtime.airflow_cli import AirflowError
from airloop.runtime.api import ApiClient
from airloop.settings import Settings


@pytest.fixture
def server() -> Iterator[tuple[HTTPServer, list[int]]]:
    """Answers PATCHes with the statuses queued in its list (then 200), on loopback."""
    statuses: list[int] = []
    seen: list[int] = []
    bodies: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # a pool, as the API describes it
            body = json.dumps({"name": "p", "slots": 1, "include_deferred": True}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PATCH(self) -> None:
            bodies.append(
                (self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            )
            status = statuses.pop(0) if statuses else 200
            seen.append(status)
            body = json.dumps({"detail": "database is locked"} if status >= 500 else {}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    httpd.statuses, httpd.seen, httpd.bodies = statuses, seen, bodies  # type: ignore[attr-defined]
    yield httpd, seen
    httpd.shutdown()


def client(httpd: HTTPServer, tmp_path) -> ApiClient:
    api = ApiClient(Settings(home=tmp_path, airflow_port=httpd.server_address[1]))
    api._token = "t"
    return api


def test_a_busy_servers_500_is_tried_again(server, tmp_path) -> None:
    httpd, seen = server
    httpd.statuses.extend([500, 500])  # type: ignore[attr-defined]
    client(httpd, tmp_path).set_note("monitoring", "r1", "note", timeout=20)
    assert seen == [500, 500, 200]


def test_a_refused_note_fails_at_once(server, tmp_path) -> None:
    httpd, seen = server
    httpd.statuses.append(404)  # type: ignore[attr-defined]
    with pytest.raises(AirflowError, match="HTTP 404"):
        client(httpd, tmp_path).set_note("monitoring", "nope", "note", timeout=20)
    assert seen == [404]


def test_a_pool_is_resized_with_what_else_it_was(server, tmp_path) -> None:
    httpd, seen = server
    httpd.statuses.append(500)  # type: ignore[attr-defined]
    api = client(httpd, tmp_path)
    assert api.pool_slots("airloop_online_store") == 1
    api.set_pool_slots("airloop_online_store", 0)
    assert seen == [500, 200]
    path, body = httpd.bodies[-1]  # type: ignore[attr-defined]
    assert path == "/api/v2/pools/airloop_online_store?update_mask=slots"
    assert body == {"pool": "airloop_online_store", "slots": 0, "include_deferred": True}
