"""A public table nobody here wrote (five stocks' monthly prices, as vega_datasets ships them,
one symbol starting years late, dates as `Jan 1 2000`): `airloop init` on the file as a user
exports it, then the loop through Airflow's scheduler. Five rows a month: monitoring must say
it has too little data, never cry wolf."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.owndata import data_set

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
AIRLOOP = str(Path(sys.executable).with_name("airloop"))
TRAIN_DAYS, DAYS = 24, 2  # months; each monitored one has a scheduled training
SET = data_set("vega_stocks")


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    work = tmp_path_factory.mktemp("public-table")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRLOOP"))}
    env.update(
        {
            "AIRLOOP_HOME": str(work / "home"),
            "AIRLOOP_AIRFLOW_PORT": "8461",
            "AIRLOOP_AIRFLOW_WORKER_LOG_PORT": "8462",
            "AIRLOOP_AIRFLOW_TRIGGER_LOG_PORT": "8463",
            "AIRLOOP_SERVING_PORT": "8464",
            "AIRLOOP_MLFLOW_UI_PORT": "8466",
        }
    )
    csv = SET.csv(work)
    init = subprocess.run(
        [AIRLOOP, "init", "stocks", "--data", str(csv), *SET.init],
        env=env, cwd=work, capture_output=True, text=True,
    )  # fmt: skip
    assert init.returncode == 0, init.stdout + init.stderr
    demo = subprocess.run(
        [AIRLOOP, "demo", "--usecase", "./stocks", "--trials", "0",
         "--train-intervals", str(TRAIN_DAYS), "--intervals", str(DAYS)],
        env=env, cwd=work, capture_output=True, text=True,
    )  # fmt: skip
    return work, demo


def test_the_loop_runs_on_a_public_table(
    ran: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    work, demo = ran
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-3000:]
    out = demo.stdout
    assert f"intervals run:        {TRAIN_DAYS + DAYS} succeeded, 0 failed" in out, out[-3000:]
    assert "rows quarantined:     0" in out
    assert "champion:             stocks v" in out
    home = work / "home"
    served = json.loads((home / "reports" / "stocks" / "profile.json").read_text())["served"]
    assert served["predicted"] == served["sent"] > 0 and served["refused"] == 0, served


def test_monitoring_says_too_little_data_instead_of_a_breach(
    ran: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    work, demo = ran
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-3000:]
    intervals = sorted((work / "home" / "monitoring" / "stocks" / "intervals").iterdir())
    assert len(intervals) == DAYS
    for folder in intervals:
        drift = json.loads((folder / "drift.json").read_text())
        assert drift["breach"] is False
        assert drift["status"].startswith("not enough data: "), drift["status"]
    ledger = (work / "home" / "monitoring" / "stocks" / "decisions.jsonl").read_text()
    assert [json.loads(line)["breach"] for line in ledger.splitlines()] == [False] * DAYS
