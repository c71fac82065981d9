"""The REST client's note: a busy server's 500 is tried again, a refusal is not."""

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

    class Handler(BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
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
    httpd.statuses, httpd.seen = statuses, seen  # type: ignore[attr-defined]
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
