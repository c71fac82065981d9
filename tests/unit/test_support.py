"""The shared test helpers (tests/support.py): each one's failure case too, since tiers that
cannot run here (Docker, CI) rely on them to fail."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.support import in_ci, prometheus_samples, read_until, user_shell, wait_for

HELP_ONLY = """\
# HELP airloop_drift_score Drift of a served feature against the training reference
# TYPE airloop_drift_score gauge
# HELP airloop_drift_share Share of features drifting
# TYPE airloop_drift_share gauge
airloop_drift_share{usecase="flights"} 0.5
"""


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "True", "yes", "Yes", " true\n"])
def test_ci_is_any_usual_truthy_spelling(value: str) -> None:
    assert in_ci({"CI": value})


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "maybe"])
def test_ci_is_not_set_by_other_values(value: str) -> None:
    assert not in_ci({"CI": value})
    assert not in_ci({})


def test_the_user_shell_has_none_of_the_sessions_variables(monkeypatch) -> None:
    monkeypatch.setattr(
        os, "environ", {"PATH": "/bin", "AIRLOOP_HOME": "/s", "AIRFLOW_HOME": "/a", "HOME": "/h"}
    )
    assert user_shell() == {"PATH": "/bin", "HOME": "/h"}
    env = user_shell({"AIRLOOP_HOME": "/mine", "HOME": "/x"}, AIRLOOP_USECASE="flights")
    assert env == {
        "PATH": "/bin",
        "HOME": "/x",
        "AIRLOOP_HOME": "/mine",
        "AIRLOOP_USECASE": "flights",
    }


def test_a_metric_declared_by_its_help_line_alone_has_no_sample() -> None:
    samples = prometheus_samples(HELP_ONLY)
    assert "airloop_drift_score" not in samples
    assert samples["airloop_drift_share"] == [({"usecase": "flights"}, 0.5)]
    sample = 'airloop_drift_score{usecase="flights",feature="distance",measure="psi"} 0.31\n'
    found = prometheus_samples(HELP_ONLY + sample)["airloop_drift_score"]
    assert found == [({"usecase": "flights", "feature": "distance", "measure": "psi"}, 0.31)]


def test_wait_for_returns_once_true_and_fails_past_its_deadline() -> None:
    ready_at = time.monotonic() + 0.2
    assert wait_for(lambda: time.monotonic() >= ready_at, "never", 5) < 5
    with pytest.raises(AssertionError, match="the event did not come after 0 s"):
        wait_for(lambda: False, "the event did not come", 0.3)


def _printer(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_read_until_stops_at_the_marker() -> None:
    proc = _printer("print('a'); print('ready', flush=True); import time; time.sleep(30)")
    try:
        assert proc.stdout is not None
        lines = read_until(proc.stdout, lambda line: line.strip() == "ready", 20, "the printer")
        assert lines == ["a\n", "ready\n"]
    finally:
        proc.kill()
        proc.wait()


def test_read_until_fails_when_the_output_ends_or_the_deadline_passes() -> None:
    ended = _printer("print('something else')")
    assert ended.stdout is not None
    with pytest.raises(AssertionError, match="the output ended first:\nsomething else"):
        read_until(ended.stdout, lambda line: line.startswith("ready"), 20, "the printer")
    ended.wait()
    silent = _printer("import time; time.sleep(30)")
    try:
        assert silent.stdout is not None
        started = time.monotonic()
        with pytest.raises(AssertionError, match="the printer: not within 0 s"):
            read_until(silent.stdout, lambda line: True, 0.3, "the printer")
        assert time.monotonic() - started < 10
    finally:
        silent.kill()
        silent.wait()
