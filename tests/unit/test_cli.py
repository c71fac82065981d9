"""The ``airloop`` command: its commands, its usage errors, clean errors, status and land."""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from airloop.cli import app, main
from airloop.settings import get_settings

COMMANDS = {
    "init", "setup", "land", "run", "backfill", "experiment", "train", "evaluate", "serve", "rollback",
    "score", "monitor", "demo", "status", "up", "doctor", "airflow", "feast", "worker",
    "tracking-server", "stage", "lineage", "history", "ci", "check",
}  # fmt: skip


def flat(text: str) -> str:
    """Output without Rich's box drawing and line wrapping, for matching messages."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_help_lists_every_command(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"], prog_name="airloop")
    assert result.exit_code == 0, result.output
    assert "Usage: airloop [OPTIONS] COMMAND [ARGS]..." in result.output
    # Each command opens a row of the Commands panel: "│ <name>   <help>".
    listed = set(re.findall(r"^\W (\w[\w-]*) {2,}\S", result.output, re.MULTILINE))
    assert listed == COMMANDS
    assert set(typer.main.get_command(app).commands) == COMMANDS  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("options", "window"),
    [
        (["--start", "2013-01-05", "--end", "2013-01-02"], "2013-01-05 .. 2013-01-02"),
        (["--start", "2013-01-05", "--end", "2013-01-05"], "2013-01-05 .. 2013-01-05"),
        (["--start", "2013-01-05", "--days", "0"], "2013-01-05 .. 2013-01-05"),
    ],
    ids=["start after end", "start is end", "zero days"],
)
def test_an_empty_window_is_a_usage_error_naming_it(
    runner: CliRunner, home: Path, options: list[str], window: str
) -> None:
    result = runner.invoke(app, ["land", *options], prog_name="airloop")
    assert result.exit_code == 2
    output = flat(result.output)
    assert "Usage: airloop land [OPTIONS]" in output
    assert f"Invalid value: the window is empty: {window}" in output
    assert not home.exists()


def test_a_use_case_that_cannot_be_found_is_an_error_without_a_traceback(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRLOOP_USECASE", "/nonexistent/usecase.yaml")
    get_settings.cache_clear()
    monkeypatch.setattr(sys, "argv", ["airloop", "status"])
    sigterm = signal.getsignal(signal.SIGTERM)  # main() installs its own handler
    try:
        with pytest.raises(SystemExit) as exit_:
            main()
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: use case '/nonexistent/usecase.yaml' not found")
    assert "give a built-in name (flights)" in err
    assert "Traceback" not in out + err
    assert not home.exists()


def test_status_json_on_a_fresh_home_prints_json_and_creates_nothing(
    runner: CliRunner, home: Path
) -> None:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    state = json.loads(result.stdout)
    assert state["usecase"] == "flights"
    assert state["home"] == str(home)
    assert state["validation"]["partitions_passed"] == 0
    assert state["champion"] is None
    assert not home.exists()


def test_land_one_day_writes_that_days_partitions(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(app, ["land", "--start", "2013-01-01", "--days", "1"])
    assert result.exit_code == 0, result.output
    assert "landed 2013-01-01 .. 2013-01-02 (exclusive, 1 daily interval)" in result.output
    landing = home / "landing" / "flights"
    assert {str(p.relative_to(landing)) for p in landing.rglob("*.csv")} == {
        "flights/2013-01-01.csv",
        "departures/2013-01-01.csv",
        "arrivals/2013-01-01.csv",
        "weather/2013-01-01.csv",
        "planes/current.csv",
        "airlines/current.csv",
    }
    # Partitions hold exactly the day's rows (UTC), by each source's partition column.
    for source, column, rows in [
        ("flights", "time_hour", 709),
        ("arrivals", "available_at", 353),
        ("weather", "time_hour", 52),
    ]:
        df = pd.read_csv(landing / source / "2013-01-01.csv")
        assert len(df) == rows, source
        stamps = pd.to_datetime(df[column], utc=True)
        assert stamps.min() >= pd.Timestamp("2013-01-01", tz="UTC"), source
        assert stamps.max() < pd.Timestamp("2013-01-02", tz="UTC"), source
    # A source partitioned by a derived time: a departure lands on the day it left the gate
    # (its scheduled time moved by its delay), and a cancelled flight never departs.
    departures = pd.read_csv(landing / "departures" / "2013-01-01.csv")
    assert departures["dep_delay"].notna().all() and 0 < len(departures) < 709
    left = pd.to_datetime(departures["time_hour"], utc=True) + pd.to_timedelta(
        departures["minute"] + departures["dep_delay"], unit="min"
    )
    assert left.min() >= pd.Timestamp("2013-01-01", tz="UTC")
    assert left.max() < pd.Timestamp("2013-01-02", tz="UTC")
    # A late-arriving source is shifted: arrivals become available 6 hours after the flight.
    arrivals = pd.read_csv(landing / "arrivals" / "2013-01-01.csv")
    shift = pd.to_datetime(arrivals["available_at"], utc=True) - pd.to_datetime(
        arrivals["time_hour"], utc=True
    )
    assert set(shift) == {pd.Timedelta(hours=6)}


def test_doctor_says_what_is_missing_and_how_to_fix_it(home: Path) -> None:
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 1, result.output
    assert "FAIL Airflow metadata DB" in result.output and "fix: airloop setup" in result.output
    assert "--   Celery broker" in result.output  # not part of the embedded profile
    production = CliRunner().invoke(app, ["doctor", "--profile", "production"])
    assert production.exit_code == 1
    assert "FAIL settings" in production.output
    assert "AIRLOOP_CELERY_BROKER_URL" in production.output
    assert not home.exists(), "the doctor changes nothing"


def test_history_and_lineage_refuse_bad_input_with_a_message(runner: CliRunner) -> None:
    bad_time = runner.invoke(app, ["history", "--at", "yesterday"], prog_name="airloop")
    assert bad_time.exit_code == 2 and "is not an ISO 8601 time" in flat(bad_time.output)
    bad_ref = runner.invoke(app, ["lineage", "runs:/abc"], prog_name="airloop")
    assert bad_ref.exit_code == 2 and "is not a model reference" in flat(bad_ref.output)


def run_main(argv: list[str]) -> None:
    """The installed command's entry point, as a shell runs it."""
    sigterm = signal.getsignal(signal.SIGTERM)  # main() installs its own handler
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "argv", argv)
            main()
    finally:
        signal.signal(signal.SIGTERM, sigterm)


def test_a_service_that_is_not_running_is_a_message_with_the_next_step(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from airloop.runtime.airflow_cli import AirflowError

    command = ["airloop", "backfill", "--start", "2013-01-01", "--days", "1"]
    with pytest.raises(SystemExit) as exit_:
        run_main(command)
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    assert err.startswith("error: no admin password yet: is the api-server running?")
    assert "next:  is the stack up? `airloop up` starts it" in err
    assert "--debug" in err and "Traceback" not in out + err
    with pytest.raises(AirflowError, match="no admin password yet"):
        run_main([*command, "--debug"])


def test_usecase_option_may_follow_the_command() -> None:
    from airloop.cli import usecase_first

    assert usecase_first(["demo", "--usecase", "./txhousing", "-n", "3"]) == [
        "--usecase",
        "./txhousing",
        "demo",
        "-n",
        "3",
    ]
    assert usecase_first(["land", "--usecase=x"]) == ["--usecase=x", "land"]
    assert usecase_first(["land", "--start", "2013-01-01"]) == ["land", "--start", "2013-01-01"]


def test_a_usecase_given_by_path_reaches_the_settings_as_an_absolute_path(
    runner: CliRunner, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from airloop.usecase.model import BUILTIN_DIR

    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(BUILTIN_DIR / "flights" / "usecase.yaml", folder / "usecase.yaml")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["--usecase", "./mine", "land", "--start", "2013-01-01", "-n", "1"])
    assert result.exit_code == 0, result.output
    from airloop.settings import get_settings

    assert get_settings().usecase == str(folder.resolve())


def test_a_monthly_use_case_lands_and_counts_in_months(
    runner: CliRunner, home: Path, tmp_path: Path
) -> None:
    from airloop.usecase.model import BUILTIN_DIR

    text = (BUILTIN_DIR / "flights" / "usecase.yaml").read_text()
    monthly = tmp_path / "monthly"
    monthly.mkdir()
    (monthly / "usecase.yaml").write_text(
        text.replace('schedule: "@daily"', 'schedule: "@monthly"', 1)
    )
    result = runner.invoke(
        app, ["--usecase", str(monthly), "land", "--start", "2013-01", "--intervals", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "landed 2013-01 .. 2013-03 (exclusive, 2 monthly intervals)" in result.output
    flights = sorted(p.name for p in (home / "landing" / "flights" / "flights").iterdir())
    assert flights == ["2013-01-01.csv", "2013-02-01.csv"]
    january = pd.read_csv(home / "landing" / "flights" / "flights" / "2013-01-01.csv")
    assert set(pd.to_datetime(january["time_hour"], utc=True).dt.month) == {1}
    assert len(january) > 20000  # a month of New York departures, not a day


def test_the_demos_first_champion_trains_on_the_replays_first_window(flights) -> None:
    """flights: three weeks to the first champion, then retrainings on eight; a use case that
    says nothing trains its first champion on the training window too."""
    from datetime import UTC, datetime

    from airloop.cli.stack import demo_window

    assert str(flights.training.window) == "56d" and str(flights.first_window) == "21d"
    window = demo_window(flights, None, None, 14, year=False)
    assert len(window.bootstrap) == 21 and len(window.monitored) == 14
    assert window.split == datetime(2013, 1, 22, tzinfo=UTC)
    assert len(demo_window(flights, None, 7, 14, year=False).bootstrap) == 7  # --train-intervals
    plain = flights.model_copy(
        update={"replay": flights.replay.model_copy(update={"first_window": None})}
    )
    assert len(demo_window(plain, None, None, 1, year=False).bootstrap) == 56


def test_a_refusal_is_said_as_one_and_only_a_stack_that_may_be_down_gets_the_hint(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server that answered with a 4xx is up: its status and its own words are the news.
    Served on loopback with Airflow 3.3's answer to runs of a DAG it does not know."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from airloop.cli import NEXT_STEP_REFUSED, NEXT_STEP_SERVICE, next_step
    from airloop.core.http import HttpError
    from airloop.runtime.airflow_cli import AirflowError

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # /auth/token
            self.answer(201, {"access_token": "t"})

        def do_GET(self) -> None:
            self.answer(404, {"detail": "The Dag with ID: `feature_pipeline` was not found"})

        def answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AIRLOOP_AIRFLOW_PORT", str(httpd.server_address[1]))
            patch.setenv("AIRLOOP_AIRFLOW_ADMIN_PASSWORD", "secret")
            get_settings.cache_clear()
            with pytest.raises(SystemExit) as exit_:
                run_main(["airloop", "backfill", "--start", "2013-01-01", "--days", "1"])
    finally:
        httpd.shutdown()
        get_settings.cache_clear()
    assert exit_.value.code == 1
    _, err = capsys.readouterr()
    assert err.startswith(
        "error: Airflow refused GET /api/v2/dags/feature_pipeline/dagRuns?limit=1000"
    )
    assert "HTTP 404 Not Found: The Dag with ID: `feature_pipeline` was not found" in err
    assert f"next:  {NEXT_STEP_REFUSED}" in err and "is the stack up" not in err
    # Only what may mean a stack that is down gets the hint.
    assert next_step(HttpError("GET", "http://x", 409, {"detail": "taken"})) == NEXT_STEP_REFUSED
    assert next_step(HttpError("GET", "http://x", 500, "busy")) == NEXT_STEP_SERVICE
    assert next_step(AirflowError("no admin password yet")) == NEXT_STEP_SERVICE
    assert next_step(ConnectionRefusedError()) == NEXT_STEP_SERVICE


def test_history_says_none_where_there_was_no_champion(runner: CliRunner, home: Path) -> None:
    """The first promotion had no champion before it: ``none``, never ``vNone``."""
    from datetime import UTC, datetime

    from airloop.metadata.store import MetadataStore
    from airloop.registry.evidence import version_label
    from airloop.usecase import load_usecase

    settings = get_settings()
    home.mkdir()
    flights = load_usecase("flights")
    when = datetime(2013, 1, 22, tzinfo=UTC)
    MetadataStore(settings).record_model_event(
        {
            "usecase": "flights",
            "model": flights.training.model_name,
            "kind": "promoted",
            "version": "1",
            "champion_before": None,
            "champion_after": "1",
            "effective_at": when,
            "actor": "model_training",
            "reason": "first champion",
            "dag_id": "model_training",
            "run_id": "r1",
            "evidence": {},
        }
    )
    result = runner.invoke(app, ["history"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "2013-01-22 00:00  v1    promoted    champion none → v1  by model_training: first champion"
    )
    before = runner.invoke(app, ["history", "--at", "2013-01-23T00:00"])
    assert before.output.startswith("v1 was champion at 2013-01-23T00:00: promoted")
    assert (version_label(None), version_label("3"), version_label(3)) == ("none", "v3", "v3")
