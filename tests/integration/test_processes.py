"""Whatever airloop starts, it ends, whichever way airloop itself ends: Ctrl-C, SIGTERM, SIGKILL;
and a component that dies under it is started again.

The supervisor here is the one `airloop up` and the demo use (``Services`` under the CLI's
signal handling, watching its components with `airloop up`'s loop); the components are the
MLflow UI, which runs without any set-up of the home and starts a worker process of its own,
and (for the restart) the serving API with the session's champion. ``tests/e2e`` ends a real
`airloop up` with SIGTERM, ``tests/production`` the production topology with SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airloop.core.http import answers, request_json
from tests.conftest import descendants, running
from tests.support import wait_for

pytestmark = pytest.mark.integration
PORT = 8396
SERVING_PORT = 8397  # the session's own (8394) is left to tests/integration/test_serving.py
RESTART_BUDGET = 60.0  # seconds from a kill -9 of the service to its /ready answering again
# The components named on its command line, watched as `airloop up` watches them.
SUPERVISOR = """
import json, logging, signal, sys
from airloop.cli import _stop_on_sigterm
from airloop.runtime.services import Services
from airloop.settings import Settings
logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
signal.signal(signal.SIGTERM, _stop_on_sigterm)
# Ctrl-C's own handler, even where this test runs in a background job that ignores SIGINT.
signal.signal(signal.SIGINT, signal.default_int_handler)
with Services(Settings(), tuple(sys.argv[1:])) as services:
    print(json.dumps({name: p.pid for name, p in services.procs.items()}), flush=True)
    services.watch()
"""


def supervise(env: dict[str, str], *components: str, stderr: Any = None) -> subprocess.Popen[str]:
    """The supervisor of these components, in a process of its own (its pids on its first line)."""
    return subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, *components],
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def wait_answering(url: str, pid: int, what: str, timeout: float = 120.0) -> None:
    """Until ``url`` answers 2xx; fails past ``timeout``, or as soon as its process has ended."""

    def answered() -> bool:
        assert running(pid), f"{what} did not start"
        return answers(url)

    wait_for(answered, f"{what} did not answer at {url}", timeout, interval=0.5)


@pytest.mark.parametrize("ending", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_components_stop_whichever_way_their_supervisor_ends(tmp_path: Path, ending: str) -> None:
    env = {
        **os.environ,
        "AIRLOOP_HOME": str(tmp_path / "home"),
        "AIRLOOP_MLFLOW_UI_PORT": str(PORT),
    }
    parent = supervise(env, "mlflow-ui")
    pid = None
    try:
        assert parent.stdout is not None
        pid = json.loads(parent.stdout.readline())["mlflow-ui"]
        wait_answering(f"http://127.0.0.1:{PORT}/", pid, "the MLflow UI")
        parent.send_signal(getattr(signal, ending))
        parent.wait(timeout=60)
        wait_for(lambda: not running(pid), f"the MLflow UI outlived its supervisor's {ending}", 60)
        wait_for(lambda: not answers(f"http://127.0.0.1:{PORT}/"), "its worker still answers", 60)
    finally:
        parent.kill()
        if pid is not None:  # the component's whole session, should the test have failed
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def test_a_killed_serving_api_is_started_again_and_serves(champion, tmp_path: Path) -> None:
    """The fault measured under `airloop up`: a `kill -9` of the serving process. The supervisor
    starts it again, names it, and the rest of the stack (the MLflow UI here) is untouched."""
    env = {
        **os.environ,  # the session's home, where the champion is
        "AIRLOOP_SERVING_PORT": str(SERVING_PORT),
        "AIRLOOP_MLFLOW_UI_PORT": str(PORT),
    }
    ready = f"http://127.0.0.1:{SERVING_PORT}/ready"
    ui = f"http://127.0.0.1:{PORT}/"
    said = tmp_path / "supervisor.err"
    with said.open("w") as err:
        parent = supervise(env, "serving", "mlflow-ui", stderr=err)
    pids: dict[str, int] = {}
    below: set[int] = set()
    try:
        assert parent.stdout is not None
        pids = json.loads(parent.stdout.readline())
        wait_answering(ready, pids["serving"], "the serving API")
        wait_answering(ui, pids["mlflow-ui"], "the MLflow UI")
        assert ready_model(ready) == champion["version"]

        killed = time.monotonic()
        os.kill(pids["serving"], signal.SIGKILL)
        wait_for(lambda: not running(pids["serving"]), "the killed service still runs", 10)
        while not answers(ready) and time.monotonic() - killed < RESTART_BUDGET:
            assert parent.poll() is None, f"the supervisor stopped: {said.read_text()}"
            time.sleep(0.25)
        back = time.monotonic() - killed
        print(f"\nthe serving API answered /ready again {back:.1f} s after its kill -9")
        assert back < RESTART_BUDGET, f"/ready did not answer within {RESTART_BUDGET:.0f} s"
        assert ready_model(ready) == champion["version"]
        assert running(pids["mlflow-ui"]) and answers(ui)  # the rest of the stack untouched

        note = "the serving API (serving) exited with code -9; starting it again (1 of 10 restarts in 10 minutes)"
        assert note in said.read_text()  # the supervisor's own log (stderr, as `airloop up`'s)
        assert note in Path(os.environ["AIRLOOP_HOME"], "logs", "serving.log").read_text()
        assert "airflow serving" not in said.read_text()

        below = descendants(parent.pid)
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=60)
        wait_for(
            lambda: not any(running(p) for p in below), "the restarted service outlived `up`", 60
        )
        assert not answers(ready)
    finally:
        parent.kill()
        for pid in {*pids.values(), *below}:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def ready_model(url: str) -> str:
    """The version the service's /ready says it serves (it answers 200 only when ready)."""
    return str(request_json("GET", url, timeout=5)["model"]["version"])
