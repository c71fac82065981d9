"""An Airflow loop that dies is started again, a few times; any other component stops the run."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from airloop.runtime.airflow_cli import AirflowError
from airloop.runtime.services import MAX_RESTARTS, Services
from airloop.settings import Settings

# Each start leaves a mark, then dies at once (a scheduler on "database is locked") or lives.
COMPONENT = """
import sys, time
from pathlib import Path
marks = Path(sys.argv[1])
marks.write_text(marks.read_text() + "x" if marks.exists() else "x")
if len(marks.read_text()) <= int(sys.argv[2]):
    sys.exit(1)
time.sleep(60)
"""


class Scripted(Services):
    """Services whose components are the script above, dying the first ``deaths`` times."""

    deaths = 0

    def command(self, name: str) -> list[str]:
        marks = self.settings.home / f"{name}.starts"
        return [sys.executable, "-c", COMPONENT, str(marks), str(self.deaths)]


def dead(services: Services, name: str) -> None:
    proc = services.procs[name]
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is not None


def test_a_scheduler_that_dies_is_started_again_and_the_restart_is_in_its_log(
    tmp_path: Path,
) -> None:
    services = Scripted(Settings(home=tmp_path / "home"), components=("scheduler",))
    services.deaths = 2
    services.settings.home.mkdir(parents=True)
    with services:
        for _ in range(2):
            dead(services, "scheduler")
            services.check_alive()
        marks = services.settings.home / "scheduler.starts"
        deadline = time.monotonic() + 30
        while marks.read_text() != "xxx" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marks.read_text() == "xxx"  # a third start, which lives
        services.check_alive()
        assert services.procs["scheduler"].poll() is None
        assert services.restarts == {"scheduler": 2}
        logged = services.log_file("scheduler").read_text()
        assert "scheduler exited with code 1; starting it again (2 of 3 restarts)" in logged


def test_past_its_restarts_a_scheduler_stops_the_run_saying_so(tmp_path: Path) -> None:
    services = Scripted(Settings(home=tmp_path / "home"), components=("scheduler",))
    services.deaths = MAX_RESTARTS + 1
    services.settings.home.mkdir(parents=True)
    with services:
        for _ in range(MAX_RESTARTS):
            dead(services, "scheduler")
            services.check_alive()
        dead(services, "scheduler")
        with pytest.raises(AirflowError, match=r"scheduler exited with code 1 after 3 restarts"):
            services.check_alive()


def test_a_server_that_dies_stops_the_run_at_once(tmp_path: Path) -> None:
    services = Scripted(Settings(home=tmp_path / "home"), components=("api-server",))
    services.deaths = 1
    services.settings.home.mkdir(parents=True)
    with services:
        dead(services, "api-server")
        with pytest.raises(AirflowError, match=r"api-server exited with code 1; see"):
            services.check_alive()
        assert services.restarts == {}
