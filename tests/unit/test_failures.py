"""A failed run said in words, a rerun of intervals that ran already, a refusal said as one, and a
stack that stops with nothing left running: fed with Airflow 3.3's own answers, recorded from a
real stack (`airloop up`) on which a partition with 51 "n/a" distances failed the gate
(tests/unit/recorded/), and served on loopback."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from airloop.core.http import HttpError
from airloop.runtime.api import ApiClient, ApiRefused
from airloop.runtime.failures import (
    describe_failed_run,
    failed_tasks,
    failure_from_log,
    land_command,
    quarantine_report,
    rerun_command,
)
from airloop.settings import Settings

RECORDED = Path(__file__).parent / "recorded"
RUN_ID = "manual__2026-12-06T17:12:58.591550+00:00"  # the run of 2013-01-02 that failed
GATE_MESSAGE = (
    "partition 2013-01-02 of use case 'flights' failed validation and was quarantined in"
    " /tmp/rec/home/quarantine/flights/2013-01-02:\n  - flights: column 'distance' has 51 null"
    " values\nFix the data, land it again, then clear this run."
)


def recorded(name: str) -> Any:
    return json.loads((RECORDED / f"{name}.json").read_text())


def day(d: int) -> tuple[datetime, datetime]:
    return datetime(2013, 1, d, tzinfo=UTC), datetime(2013, 1, d + 1, tzinfo=UTC)


class Airflow(HTTPServer):
    """Answers from a table of (method, path) → (status, body); keeps each request it got."""

    answers: dict[tuple[str, str], tuple[int, Any]]
    requests: list[tuple[str, str, Any]]


@pytest.fixture
def airflow() -> Iterator[Airflow]:
    class Handler(BaseHTTPRequestHandler):
        def handle_one(self) -> None:
            server: Airflow = self.server  # type: ignore[assignment]
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            server.requests.append((self.command, self.path, body))
            status, answer = server.answers.get(
                (self.command, self.path), (404, {"detail": f"no recording for {self.path}"})
            )
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = handle_one

        def log_message(self, *args: object) -> None:
            return

    httpd = Airflow(("127.0.0.1", 0), Handler)
    httpd.answers, httpd.requests = {}, []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()


def settings_for(httpd: HTTPServer, home: Path) -> Settings:
    return Settings(home=home, airflow_port=httpd.server_address[1])


def client(httpd: HTTPServer, home: Path) -> ApiClient:
    api = ApiClient(settings_for(httpd, home))
    api._token = "t"
    return api


def runs(*states: str) -> dict[str, Any]:
    """The recorded runs of 2013-01-01 .. 03, in these states."""
    answer = copy.deepcopy(recorded("airflow_dag_runs_failed"))
    for run, state in zip(answer["dag_runs"], states, strict=True):
        run["state"] = state
    return answer


RUNS_QUERY = (
    "/api/v2/dags/feature_pipeline/dagRuns?limit=1000"
    "&logical_date_gte={start}&logical_date_lt={end}"
)


# -- what a failed task's log says ------------------------------------------------------------
def test_the_gates_error_is_read_from_the_tasks_log_under_its_own_type() -> None:
    failure = failure_from_log("validate_partition", 1, recorded("airflow_log_validation_failed"))
    # Airflow's AirflowFailException wraps the gate's ValidationFailed with the same message:
    # said once, under the type that says what happened.
    assert failure.error == f"ValidationFailed: {GATE_MESSAGE}"
    assert failure.types == ("AirflowFailException", "ValidationFailed")
    assert failure.gate
    assert failure.log_file == (
        "/tmp/rec/home/airflow/logs/dag_id=feature_pipeline/run_id=manual__2026-12-06T17:12:58"
        ".591550+00:00/task_id=validate_partition/attempt=1.log"
    )


def test_a_cause_with_its_own_message_is_said_after_the_error() -> None:
    log = recorded("airflow_log_validation_failed")
    [event] = [e for e in log["content"] if e.get("error_detail")]
    event["error_detail"][0].update(exc_type="RuntimeError", exc_value="training stopped")
    event["error_detail"][1].update(exc_type="KeyError", exc_value="'dep_delay'")
    failure = failure_from_log("train_model", 2, log)
    assert failure.error == "RuntimeError: training stopped\ncaused by KeyError: 'dep_delay'"
    assert not failure.gate


def test_a_log_without_an_exception_gives_its_last_lines() -> None:
    log = recorded("airflow_log_validation_failed")
    log["content"] = [e for e in log["content"] if not e.get("error_detail")]
    failure = failure_from_log("validate_partition", 1, log)
    assert failure.error is None and not failure.gate
    assert failure.tail[-1] == (
        "warning quarantined partition 2013-01-02 in /tmp/rec/home/quarantine/flights/2013-01-02"
    )
    assert len(failure.tail) == 5 and not any("::group::" in line for line in failure.tail)


# -- the message a person reads ---------------------------------------------------------------
def failed_run() -> dict[str, Any]:
    run = runs("success", "failed", "success")["dag_runs"][1]
    assert run["dag_run_id"] == RUN_ID
    return run


def write_report(home: Path) -> Path:
    report = home / "quarantine" / "flights" / "2013-01-02" / "report.json"
    report.parent.mkdir(parents=True)
    report.write_text("{}")
    return report


def test_a_gate_failure_says_why_where_the_report_is_and_what_to_do(
    airflow: Airflow, tmp_path: Path
) -> None:
    from airloop.usecase import load_usecase

    base = f"/api/v2/dags/feature_pipeline/dagRuns/{RUN_ID}/taskInstances"
    airflow.answers[("GET", f"{base}?state=failed")] = (200, failed_tis())
    log = f"{base}/validate_partition/logs/1?full_content=true"
    airflow.answers[("GET", log)] = (200, recorded("airflow_log_validation_failed"))
    settings = settings_for(airflow, tmp_path)
    report = write_report(tmp_path)
    cadence = load_usecase("flights").cadence
    start = day(2)[0]
    assert quarantine_report(settings, "flights", start) == report
    text = describe_failed_run(
        "feature_pipeline",
        failed_run(),
        failed_tasks(client(airflow, tmp_path), "feature_pipeline", RUN_ID),
        quarantine_report(settings, "flights", start),
        rerun=rerun_command(cadence, start),
        land=land_command(cadence, start),
    )
    lines = text.splitlines()
    assert lines[0] == (
        f"feature_pipeline run {RUN_ID} (interval 2013-01-02 00:00 .. 2013-01-03 00:00 UTC) failed"
    )
    assert lines[1] == (
        "  validate_partition (try 1) failed with ValidationFailed: partition 2013-01-02 of use"
        " case 'flights' failed validation and was quarantined in"
        " /tmp/rec/home/quarantine/flights/2013-01-02:"
    )
    assert "        - flights: column 'distance' has 51 null values" in lines
    assert f"quarantine report: {report}" in lines
    assert lines[-1] == (
        "next: fix the data (the report names each failed check); then land it again:"
        " `airloop land --start 2013-01-02 --intervals 1`; then run the interval again:"
        " `airloop backfill --start 2013-01-02 --intervals 1` (with `airloop up`)"
    )
    assert "Airflow UI" not in text


def failed_tis() -> dict[str, Any]:
    answer = recorded("airflow_task_instances_validation_failed")
    answer["task_instances"] = [t for t in answer["task_instances"] if t["state"] == "failed"]
    return answer


def test_a_report_left_by_an_earlier_failure_is_not_blamed_for_another_error(
    tmp_path: Path,
) -> None:
    log = recorded("airflow_log_validation_failed")
    [event] = [e for e in log["content"] if e.get("error_detail")]
    for detail in event["error_detail"]:
        detail.update(exc_type="OSError", exc_value="disk full")
    failure = failure_from_log("build_offline_features", 1, log)
    text = describe_failed_run(
        "feature_pipeline", failed_run(), [failure], write_report(tmp_path), rerun="`rerun`"
    )
    assert "build_offline_features (try 1) failed with OSError: disk full" in text
    assert "quarantine" not in text
    assert text.endswith("next: fix the cause above, then run the interval again: `rerun`")


def test_a_log_that_cannot_be_read_still_names_the_task(airflow: Airflow, tmp_path: Path) -> None:
    base = f"/api/v2/dags/feature_pipeline/dagRuns/{RUN_ID}/taskInstances"
    airflow.answers[("GET", f"{base}?state=failed")] = (200, failed_tis())
    [failure] = failed_tasks(client(airflow, tmp_path), "feature_pipeline", RUN_ID)
    assert (failure.task_id, failure.try_number, failure.error) == ("validate_partition", 1, None)
    text = describe_failed_run("feature_pipeline", failed_run(), [failure])
    assert "validate_partition (try 1) failed; its log could not be read" in text


# -- backfill over intervals that ran ---------------------------------------------------------
def test_intervals_that_ran_are_cleared_and_the_others_triggered(
    airflow: Airflow, tmp_path: Path
) -> None:
    existing = runs("success", "failed", "running")
    existing["dag_runs"] = existing["dag_runs"][:3]
    airflow.answers[
        ("GET", RUNS_QUERY.format(start="2013-01-01T00:00:00Z", end="2013-01-05T00:00:00Z"))
    ] = (200, existing)
    for run in existing["dag_runs"][:2]:
        path = f"/api/v2/dags/feature_pipeline/dagRuns/{run['dag_run_id']}/clear"
        airflow.answers[("POST", path)] = (200, {**run, "state": "queued"})
    airflow.answers[("POST", "/api/v2/dags/feature_pipeline/dagRuns")] = (
        200,
        recorded("airflow_clear_run"),  # a run's answer: the same shape a trigger gets
    )
    queued = client(airflow, tmp_path).rerun_intervals(
        "feature_pipeline", [day(1), day(2), day(3), day(4)], "airloop backfill"
    )
    assert [q.how for q in queued] == ["cleared", "cleared", "unfinished", "triggered"]
    writes = [(m, p, b) for m, p, b in airflow.requests if m != "GET"]
    assert [(m, p.rsplit("/", 1)[-1]) for m, p, _ in writes] == [
        ("POST", "clear"),
        ("POST", "clear"),
        ("POST", "dagRuns"),
    ]
    # Airflow's clear is a dry run unless told otherwise: the body says so.
    assert writes[0][2] == {"dry_run": False, "only_failed": False, "note": "airloop backfill"}
    assert writes[2][2]["logical_date"] == "2013-01-04T00:00:00+00:00"


def test_a_trigger_refused_for_an_interval_another_run_owns_names_that_run(
    airflow: Airflow, tmp_path: Path
) -> None:
    airflow.answers[("POST", "/api/v2/dags/feature_pipeline/dagRuns")] = (
        409,
        recorded("airflow_409_trigger_existing_interval"),
    )
    airflow.answers[
        ("GET", RUNS_QUERY.format(start="2013-01-02T00:00:00Z", end="2013-01-03T00:00:00Z"))
    ] = (
        200,
        runs("success", "failed", "failed"),
    )
    with pytest.raises(ApiRefused) as refused:
        client(airflow, tmp_path).trigger("feature_pipeline", interval=day(2))
    assert refused.value.status == 409
    assert str(refused.value).startswith(
        "feature_pipeline already has a run of the interval 2013-01-02T00:00Z .. 2013-01-03T00:00Z"
        f" ({RUN_ID}, failed): Airflow keeps one run per logical date (HTTP 409 Conflict:"
        " Unique constraint violation: Serious error when handling your request."
    )
    assert str(refused.value).endswith("`airloop backfill` clears such a run and runs it again.")
    # When the owner cannot be found, the refusal is said as the API said it.
    del airflow.answers[
        ("GET", RUNS_QUERY.format(start="2013-01-02T00:00:00Z", end="2013-01-03T00:00:00Z"))
    ]
    with pytest.raises(ApiRefused) as plain:
        client(airflow, tmp_path).trigger("feature_pipeline", interval=day(2))
    assert str(plain.value).startswith(
        "Airflow refused POST /api/v2/dags/feature_pipeline/dagRuns: HTTP 409 Conflict:"
        " Unique constraint violation"
    )


def test_an_error_answer_is_said_in_the_servers_own_words() -> None:
    conflict = HttpError(
        "POST", "http://x/a", 409, recorded("airflow_409_trigger_existing_interval")
    )
    assert conflict.refused
    assert str(conflict).startswith(
        "POST http://x/a → HTTP 409 Conflict: Unique constraint violation: Serious error"
    )
    invalid = HttpError(
        "POST", "http://x/b", 422, {"detail": [{"loc": ["body", "dry_run"], "msg": "bad"}]}
    )
    assert str(invalid) == "POST http://x/b → HTTP 422 Unprocessable Entity: body.dry_run: bad"
    assert not HttpError("GET", "http://x/c", 503, "busy").refused


# -- a stack that stops leaves nothing running ------------------------------------------------
def test_unfinished_runs_are_marked_failed_and_nothing_is_left_running(
    airflow: Airflow, tmp_path: Path
) -> None:
    from airloop.demo.main import stop_unfinished
    from airloop.runtime.api import ACTIVE_TASK_STATES

    unfinished = runs("running", "queued", "queued")
    airflow.answers[
        ("GET", "/api/v2/dags/feature_pipeline/dagRuns?state=queued&state=running&limit=1000")
    ] = (200, unfinished)
    for run in unfinished["dag_runs"]:
        path = f"/api/v2/dags/feature_pipeline/dagRuns/{run['dag_run_id']}"
        airflow.answers[("PATCH", path)] = (200, {**run, "state": "failed"})
    active = "/api/v2/dags/feature_pipeline/dagRuns/~/taskInstances?" + "&".join(
        f"state={s}" for s in ACTIVE_TASK_STATES
    )
    airflow.answers[("GET", f"{active}&limit=1000")] = (
        200,
        recorded("airflow_task_instances_running"),
    )
    said: list[str] = []
    stop_unfinished(client(airflow, tmp_path), ["feature_pipeline"], said.append)
    patches = [(p, b) for m, p, b in airflow.requests if m == "PATCH"]
    assert [p.rsplit("/", 1)[-1] for p, _ in patches] == [
        r["dag_run_id"] for r in unfinished["dag_runs"]
    ]
    assert all(
        b == {"state": "failed", "note": "airloop demo: stopped with the stack"} for _, b in patches
    )
    assert said[0].startswith("marked 3 unfinished run(s) failed before stopping the stack")
    # What the API still reports as running is said, by name: here the recording from
    # before the runs were marked (after, the real API answered with none).
    assert said[1:] == [
        "  still running: feature_pipeline manual__2026-12-06T17:12:58.535129+00:00"
        " validate_partition"
    ]


def test_a_stack_that_no_longer_answers_is_said_not_raised(tmp_path: Path) -> None:
    from airloop.demo.main import stop_unfinished

    api = ApiClient(Settings(home=tmp_path, airflow_port=9))  # nothing listens on port 9
    api._token = "t"
    said: list[str] = []
    stop_unfinished(api, ["feature_pipeline"], said.append)
    assert len(said) == 1
    assert said[0].startswith("could not mark the demo's unfinished runs failed before stopping")
