"""Whatever airloop starts, it ends, whichever way airloop itself ends (here: SIGKILL)."""

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

pytestmark = pytest.mark.integration

STARTER = """
import json, sys, time
from airloop.runtime.services import Services
from airloop.settings import Settings
services = Services(Settings(), ("mlflow-ui",)).start()
print(json.dumps({name: p.pid for name, p in services.procs.items()}), flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_components_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    # The MLflow UI: a component that runs without any set-up of the home.
    env = {**os.environ, "AIRLOOP_HOME": str(tmp_path / "home"), "AIRLOOP_MLFLOW_UI_PORT": "8396"}
    parent = subprocess.Popen(
        [sys.executable, "-c", STARTER], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        children = json.loads(parent.stdout.readline())
        pid = children["mlflow-ui"]
        answered = time.monotonic() + 120
        while not answers("http://127.0.0.1:8396/") and time.monotonic() < answered:
            assert alive(pid), "the MLflow UI did not start"
            time.sleep(0.5)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 60
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(pid), "the MLflow UI outlived the airloop process that started it"
        assert not answers("http://127.0.0.1:8396/")
    finally:
        parent.kill()
        if "pid" in locals():  # the component's whole session, should the test have failed
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
