"""The shared mechanisms: records and their JSON, atomic files, polling, HTTP calls."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from airloop.core.files import atomic_write, read_json, read_jsonl, write_json, write_jsonl
from airloop.core.html import figure_img, html_table
from airloop.core.http import HttpError, answers, probe, request_json, web_url
from airloop.core.polling import WaitTimeout, wait_until
from airloop.core.records import Number, Record, json_column, json_safe, plain, to_json
from airloop.core.stopwatch import Stopwatch


class Scores(Record):
    name: str
    metrics: dict[str, Number]
    best: Number = None


def test_records_hold_none_where_a_figure_could_not_be_computed() -> None:
    record = Scores(name="a", metrics={"auc": float("nan"), "loss": np.float64(0.5)}, best=np.inf)
    assert record.metrics == {"auc": None, "loss": 0.5} and record.best is None
    assert type(record.metrics["loss"]) is float
    assert Scores.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_records_refuse_unknown_fields_and_do_not_change() -> None:
    with pytest.raises(ValueError, match="extra"):
        Scores.from_dict({"name": "a", "metrics": {}, "oops": 1})
    with pytest.raises(ValueError, match="frozen"):
        Scores(name="a", metrics={}).name = "b"  # type: ignore[misc]


def test_to_json_is_strict_for_records_lists_and_plain_values() -> None:
    record = Scores(name="a", metrics={"auc": 0.7})
    assert to_json([record, record]) == [record.to_dict(), record.to_dict()]
    assert to_json({"x": float("nan"), "y": [np.int64(3), float("-inf")]}) == {
        "x": None,
        "y": [3, None],
    }
    assert to_json(None) is None and to_json("id-1") == "id-1"


def test_plain_gives_json_values_and_text_for_the_rest() -> None:
    assert plain(np.float32(1.5)) == 1.5 and plain(float("nan")) is None
    assert plain(Path("/x")) == "/x"
    assert json_safe({"a": (1, float("inf"))}) == {"a": [1, None]}


@pytest.mark.parametrize(
    "column",
    [
        np.array([1.5, np.nan, -np.inf, 0.0, 2e300]),
        np.array([1.5, np.nan], dtype=np.float32),
        np.array([3, -1, 2**40]),
        np.array([True, False]),
        np.array(["JFK", None, 4.0, float("nan")], dtype=object),
        [1, 2.5, None, float("inf"), "x"],
        np.array([], dtype=float),
    ],
    ids=["float64", "float32", "int64", "bool", "objects", "list", "empty"],
)
def test_a_column_converted_at_once_is_json_safe_of_each_value(column) -> None:
    converted = json_column(column)
    expected = [json_safe(v) for v in column]
    assert converted == expected
    assert [type(v) for v in converted] == [type(v) for v in expected]


def test_atomic_write_replaces_whole_or_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "file.txt"
    atomic_write(path, lambda tmp: tmp.write_text("old"))
    assert path.read_text() == "old"

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == ["file.txt"], "no temporary file is left"


def test_json_files_are_strict_and_read_back(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", {"score": float("nan")})
    assert read_json(tmp_path / "a.json") == {"score": None}
    assert read_json(tmp_path / "missing.json") == {}
    write_jsonl(tmp_path / "a.jsonl", [{"b": 1, "a": float("inf")}, {"c": 2}])
    assert (tmp_path / "a.jsonl").read_text().splitlines()[0] == '{"a": null, "b": 1}'
    assert read_jsonl(tmp_path / "a.jsonl") == [{"a": None, "b": 1}, {"c": 2}]
    assert read_jsonl(tmp_path / "none.jsonl") == []


def test_wait_until_returns_the_first_answer_and_runs_the_tick() -> None:
    calls: list[int] = []
    ticks: list[int] = []

    def check() -> int | None:
        calls.append(1)
        return 7 if len(calls) == 3 else None

    assert (
        wait_until(check, timeout=5, what="x", interval=0.01, on_tick=lambda: ticks.append(1)) == 7
    )
    assert len(ticks) == 3


def test_wait_until_gives_up_with_what_was_awaited() -> None:
    with pytest.raises(WaitTimeout, match=r"the thing: nothing after 0s"):
        wait_until(lambda: False, timeout=0.05, what="the thing", interval=0.01)


def test_wait_until_with_progress_times_out_only_when_stalled() -> None:
    state = {"n": 0}

    def moving() -> bool:
        state["n"] += 1
        return state["n"] >= 30

    # Each check moves the progress value, so 30 checks take longer than the timeout.
    assert wait_until(
        moving, timeout=0.05, what="moving", interval=0.005, progress=lambda: state["n"]
    )
    with pytest.raises(WaitTimeout, match="without progress"):
        wait_until(lambda: False, timeout=0.05, what="stuck", interval=0.01, progress=lambda: 1)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        if self.path == "/fail":
            self._answer(422, {"error_code": "BAD", "message": "no"})
        elif self.path == "/text":
            self._answer(500, None, b"plain failure")
        else:
            auth = self.headers.get("authorization")
            self._answer(200, {"echo": body, "auth": auth})

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/ok" else 404, {})

    def _answer(self, status: int, payload: Any, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_request_json_sends_json_and_the_token(server: str) -> None:
    answer = request_json("POST", f"{server}/echo", {"a": 1}, token="t0k")
    assert answer == {"echo": {"a": 1}, "auth": "Bearer t0k"}


def test_request_json_errors_carry_status_and_answer(server: str) -> None:
    with pytest.raises(HttpError) as err:
        request_json("POST", f"{server}/fail", {})
    assert err.value.status == 422 and err.value.body == {"error_code": "BAD", "message": "no"}
    assert "HTTP 422" in str(err.value)
    with pytest.raises(HttpError) as text:
        request_json("POST", f"{server}/text", {})
    assert text.value.status == 500 and text.value.body == "plain failure"


def test_answers_only_on_2xx_and_never_raises(server: str) -> None:
    assert answers(f"{server}/ok")
    assert not answers(f"{server}/missing")
    assert not answers("http://127.0.0.1:9/", timeout=1)


def test_html_tables_escape_every_value_and_leave_missing_ones_empty() -> None:
    table = html_table([{"a": "<b>", "b": float("nan")}, {"a": 0.123456}], ["a", "b"])
    assert "&lt;b&gt;" in table and "<b>" not in table
    assert "<td>0.1235</td><td></td>" in table and table.count("<tr>") == 3


def test_a_figure_carries_its_own_pixels() -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1], [1, 0])
    tag = figure_img(fig, 'a "quoted" title')
    assert tag.startswith('<img alt="a &quot;quoted&quot; title" src="data:image/png;base64,iVBOR')


def test_a_stopwatch_adds_up_each_phase_and_counts_its_entries() -> None:
    watch = Stopwatch()
    watch.add("traffic", 1.5)
    with pytest.raises(RuntimeError), watch.phase("monitoring"):
        raise RuntimeError("a failed phase still counts its time")
    watch.add("traffic", 0.5)
    profile = watch.as_dict()
    assert list(profile) == ["traffic", "monitoring"]
    assert profile["traffic"] == {"seconds": 2.0, "count": 2, "mean": 1.0}
    assert profile["monitoring"]["count"] == 1 and profile["monitoring"]["seconds"] >= 0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "127.0.0.1:5000"])
def test_only_web_urls_are_opened(url: str) -> None:
    """urllib would read a local file for a ``file:`` URL: a setting must not make it."""
    assert probe(url) == f"{url!r}: not an http(s) URL"
    with pytest.raises(ValueError, match="not an http"):
        web_url(url)
    assert web_url("https://127.0.0.1:5000/x") == "https://127.0.0.1:5000/x"
