"""Where a run's processor time went: each server's own, and that of what it started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from airloop.runtime.services import Services
from airloop.settings import Settings
from tests.support import read_until

SPIN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"
# A server that works, starts a child that works and ends (waited for), starts another that
# works, says so (on the server's output, which it inherits) and stays, then waits to be stopped.
STAYING = SPIN.format(seconds=0.3) + "print('worked', flush=True)\ntime.sleep(60)\n"
SERVER = f"""
import subprocess, sys, time
{SPIN.format(seconds=0.3)}
subprocess.run([sys.executable, "-c", {SPIN.format(seconds=0.3)!r}], check=True)
subprocess.Popen([sys.executable, "-c", {STAYING!r}])
print("ready", flush=True)
time.sleep(60)
"""


def test_a_servers_time_counts_what_it_started_ended_or_running(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path / "home"), components=())
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    services.procs["server"] = server
    try:
        assert server.stdout is not None
        said: set[str] = set()

        def both_said(line: str) -> bool:
            said.add(line.strip())
            return {"ready", "worked"} <= said

        # The server is ready and its running child has done its work: both have said so.
        read_until(server.stdout, both_said, 30, "the server and its running child")
        spent = services.processor_seconds()["server"]
        assert spent["own"] >= 0.3
        assert spent["started"] >= 0.6  # the ended child and the running one
    finally:
        services.stop(timeout=5)
    assert services.processor_seconds() == {}
