"""Every component of `airloop up` that dies is started again, after a delay that grows while
it keeps dying, named as a person knows it; past its restarts the command stops, saying which
component and where its log is."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from airloop.cli import NEXT_STEP_COMPONENT, NEXT_STEP_SERVICE, next_step
from airloop.runtime.airflow_cli import AirflowError, ComponentDied
from airloop.runtime.services import (
    MAX_RESTARTS,
    RESTART_BACKOFF_SECONDS,
    RESTART_WINDOW_SECONDS,
    Services,
    topology,
)
from airloop.settings import Settings
from tests.builders import production

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

# How the supervisor names each component of both profiles (production: two Celery workers
# and the MLflow tracking server on this host; embedded: with the UIs, as `airloop up` runs).
NAMED = {
    "api-server": "Airflow's api-server",
    "scheduler": "Airflow's scheduler",
    "dag-processor": "Airflow's dag-processor",
    "triggerer": "Airflow's triggerer",
    "worker-1": "Celery worker worker-1",
    "worker-2": "Celery worker worker-2",
    "mlflow": "the MLflow tracking server (mlflow)",
    "mlflow-ui": "the MLflow UI (mlflow-ui)",
    "serving": "the serving API (serving)",
}


class Scripted(Services):
    """Services whose components are the script above, dying the first ``deaths`` times."""

    deaths = 0

    def command(self, name: str) -> list[str]:
        marks = self.settings.home / f"{name}.starts"
        return [sys.executable, "-c", COMPONENT, str(marks), str(self.deaths)]


def scripted(tmp_path: Path, components: tuple[str, ...], deaths: int) -> Scripted:
    """Components that die ``deaths`` times, started again at once (no back-off delay: the
    delays have a test of their own)."""
    services = Scripted(Settings(home=tmp_path / "home"), components=components)
    services.backoff_seconds = 0.0
    services.deaths = deaths
    services.settings.home.mkdir(parents=True)
    return services


def dead(services: Services, name: str) -> None:
    proc = services.procs[name]
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is not None


def started(services: Services, name: str, times: int) -> None:
    marks = services.settings.home / f"{name}.starts"
    deadline = time.monotonic() + 30
    while (not marks.exists() or len(marks.read_text()) < times) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marks.read_text() == "x" * times


def test_both_profiles_components_are_the_ones_named(tmp_path: Path) -> None:
    prod = Settings(**production(tmp_path, mlflow_tracking_uri="http://127.0.0.1:5000"))
    embedded = Settings(home=tmp_path / "embedded")
    assert set(topology(prod)) | set(topology(embedded, everything=True)) == set(NAMED)
    assert "mlflow" in topology(prod) and "worker-2" in topology(prod)


def test_every_component_that_dies_is_started_again_and_named_in_its_log(tmp_path: Path) -> None:
    services = scripted(tmp_path, tuple(NAMED), deaths=1)
    with services:
        for name in NAMED:
            dead(services, name)
        services.check_alive()
        for name in NAMED:
            started(services, name, 2)  # a second start, which lives
        services.check_alive()
        assert all(services.procs[name].poll() is None for name in NAMED)
        assert services.restarts == dict.fromkeys(NAMED, 1)
        for name, label in NAMED.items():
            logged = services.log_file(name).read_text()
            assert (
                f"airloop: {label} exited with code 1; starting it again (1 of {MAX_RESTARTS}"
                in logged
            )


def test_a_killed_serving_api_is_started_again(tmp_path: Path) -> None:
    """The measured fault: `kill -9` of the serving process under `airloop up`."""
    services = scripted(tmp_path, ("serving", "scheduler"), deaths=0)
    with services:
        started(services, "serving", 1)
        scheduler = services.procs["scheduler"].pid
        services.procs["serving"].kill()
        dead(services, "serving")
        services.check_alive()
        started(services, "serving", 2)
        assert services.procs["serving"].poll() is None
        assert services.procs["scheduler"].pid == scheduler  # the rest untouched
        logged = services.log_file("serving").read_text()
        assert (
            f"the serving API (serving) exited with code -9; starting it again (1 of {MAX_RESTARTS}"
            in logged
        )


def test_a_scheduler_that_dies_twice_lives_on_its_third_start(tmp_path: Path) -> None:
    services = scripted(tmp_path, ("scheduler",), deaths=2)
    with services:
        for _ in range(2):
            dead(services, "scheduler")
            services.check_alive()
        started(services, "scheduler", 3)
        services.check_alive()
        assert services.procs["scheduler"].poll() is None
        assert services.restarts == {"scheduler": 2}
        logged = services.log_file("scheduler").read_text()
        assert (
            f"scheduler exited with code 1; starting it again (2 of {MAX_RESTARTS} restarts in 10"
            in logged
        )


def test_restarts_older_than_the_window_are_given_back(tmp_path: Path) -> None:
    """A component that dies once a day for weeks is started again each time: only deaths
    within the window count against its restarts (systemd's StartLimitIntervalSec)."""
    now = [1000.0]
    services = scripted(tmp_path, ("scheduler",), deaths=MAX_RESTARTS + 2)
    services.clock = lambda: now[0]
    with services:
        for death in range(MAX_RESTARTS + 2):
            dead(services, "scheduler")
            services.check_alive()  # would raise past MAX_RESTARTS within one window
            now[0] += RESTART_WINDOW_SECONDS / 2 + 1  # two deaths per window at most
            started(services, "scheduler", death + 2)
        services.check_alive()
        assert services.procs["scheduler"].poll() is None
        assert services.restarts == {"scheduler": MAX_RESTARTS + 2}  # all, for the profile
        assert services.recent_restarts("scheduler") == 1
        logged = services.log_file("scheduler").read_text()
        assert f"starting it again (2 of {MAX_RESTARTS} restarts in 10 minutes)" in logged
        assert f"(3 of {MAX_RESTARTS}" not in logged


def test_a_component_dying_over_and_over_waits_longer_each_time(tmp_path: Path) -> None:
    """A database away for a while ends the scheduler at every start: it is started again at
    once, then after 2, 4, 8 s ... (at most a minute), so a few restarts span a long outage."""
    now = [1000.0]
    services = scripted(tmp_path, ("scheduler",), deaths=4)
    services.backoff_seconds = RESTART_BACKOFF_SECONDS
    services.clock = lambda: now[0]
    with services:
        for death, delay in enumerate([0, 2, 4, 8]):
            dead(services, "scheduler")
            if delay:
                services.check_alive()  # seen dead: its delay begins
                now[0] += delay - 0.5
                services.check_alive()
                assert services.procs["scheduler"].poll() is not None  # still waiting
                now[0] += 0.5
            services.check_alive()
            started(services, "scheduler", death + 2)
        services.check_alive()
        assert services.procs["scheduler"].poll() is None  # the fifth start lives
        assert services.restarts == {"scheduler": 4}
        logged = services.log_file("scheduler").read_text()
        assert f"starting it again after 8 s (4 of {MAX_RESTARTS} restarts" in logged
    delays = [services.restart_delay(n) for n in range(9)]
    assert delays == [0, 2, 4, 8, 16, 32, 60, 60, 60]


@pytest.mark.parametrize("name", ["serving", "scheduler"])
def test_past_its_restarts_a_component_stops_up_naming_it(tmp_path: Path, name: str) -> None:
    services = scripted(tmp_path, (name,), deaths=MAX_RESTARTS + 1)
    with services, pytest.raises(ComponentDied) as stopped:
        services.watch(interval=0.05)  # `airloop up`'s loop
    message = str(stopped.value)
    assert message.startswith(
        f"{NAMED[name]} exited with code 1 after {MAX_RESTARTS} restarts in 10 minutes"
        f" (at most {MAX_RESTARTS})"
    )
    assert str(services.log_file(name)) in message
    assert services.restarts == {name: MAX_RESTARTS}
    assert isinstance(stopped.value, AirflowError)  # the CLI prints it without a traceback
    # The stack was up: the next step points at the component's log, not at starting it.
    assert next_step(stopped.value) == NEXT_STEP_COMPONENT
    assert "is the stack up" not in NEXT_STEP_COMPONENT
    assert next_step(AirflowError("no admin password yet")) == NEXT_STEP_SERVICE
