"""Whatever airloop starts, it ends, whichever way airloop itself ends: Ctrl-C, SIGTERM, SIGKILL.

The supervisor here is the one `airloop up` and the demo use (``Services`` under the CLI's
signal handling); the component is the MLflow UI, which runs without any set-up of the home
and starts a worker process of its own. ``tests/e2e`` ends a real `airloop up` with SIGTERM,
``tests/production`` the production topology with SIGKILL.
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

import pytest

from airloop.core.http import answers
from tests.conftest import running

pytestmark = pytest.mark.integration
PORT = 8396
SUPERVISOR = """
import json, signal, time
from airloop.cli import _stop_on_sigterm
from airloop.runtime.services import Services
from airloop.settings import Settings
signal.signal(signal.SIGTERM, _stop_on_sigterm)
# Ctrl-C's own handler, even where this test runs in a background job that ignores SIGINT.
signal.signal(signal.SIGINT, signal.default_int_handler)
with Services(Settings(), ("mlflow-ui",)) as services:
    print(json.dumps({name: p.pid for name, p in services.procs.items()}), flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("ending", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_components_stop_whichever_way_their_supervisor_ends(tmp_path: Path, ending: str) -> None:
    env = {
        **os.environ,
        "AIRLOOP_HOME": str(tmp_path / "home"),
        "AIRLOOP_MLFLOW_UI_PORT": str(PORT),
    }
    parent = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR], env=env, stdout=subprocess.PIPE, text=True
    )
    pid = None
    try:
        assert parent.stdout is not None
        pid = json.loads(parent.stdout.readline())["mlflow-ui"]
        deadline = time.monotonic() + 120
        while not answers(f"http://127.0.0.1:{PORT}/") and time.monotonic() < deadline:
            assert running(pid), "the MLflow UI did not start"
            time.sleep(0.5)
        parent.send_signal(getattr(signal, ending))
        parent.wait(timeout=60)
        deadline = time.monotonic() + 60
        while (
            running(pid) or answers(f"http://127.0.0.1:{PORT}/")
        ) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not running(pid), f"the MLflow UI outlived its supervisor's {ending}"
        assert not answers(f"http://127.0.0.1:{PORT}/"), "its worker still answers"
    finally:
        parent.kill()
        if pid is not None:  # the component's whole session, should the test have failed
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
