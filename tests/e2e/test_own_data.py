"""docs/your-own-data.md, followed as a user would: `airloop init` on the second data set (Texas
housing, monthly, a regression target per city), then the loop on it through Airflow's
scheduler with `airloop demo --usecase`, in a home of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

BUDGET_SECONDS = 900
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(BUDGET_SECONDS)]
AIRLOOP = str(Path(sys.executable).with_name("airloop"))
DATA = REPO / "examples" / "txhousing" / "txhousing.csv"
# A shorter window than the proposal's 36 months, so the test stays a few minutes: two
# years of months to the first champion, then three months served and monitored.
TRAIN_MONTHS, MONTHS = 24, 3


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("own-data")


@pytest.fixture(scope="module")
def user_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRLOOP"))}
    env.update(
        {
            "AIRLOOP_HOME": str(workdir / "home"),
            "AIRLOOP_AIRFLOW_PORT": "8481",
            "AIRLOOP_AIRFLOW_WORKER_LOG_PORT": "8482",
            "AIRLOOP_AIRFLOW_TRIGGER_LOG_PORT": "8483",
            "AIRLOOP_SERVING_PORT": "8484",
            "AIRLOOP_MLFLOW_UI_PORT": "8485",
        }
    )
    return env


def airloop(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AIRLOOP, *args], env=env, cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def initialised(workdir: Path, user_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Step 1 of the guide, word for word (the data path aside).
    return airloop(
        [
            "init",
            "txhousing",
            "--data",
            str(DATA),
            "--entity",
            "city",
            "--timestamp",
            "year+month",
            "--target",
            "median",
            "--task",
            "regression",
            "--label-delay",
            "1mo",
        ],
        user_env,
        workdir,
    )


@pytest.fixture(scope="module")
def demo(
    initialised: subprocess.CompletedProcess[str], workdir: Path, user_env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    assert initialised.returncode == 0, initialised.stdout + initialised.stderr
    return airloop(
        [
            "demo",
            "--usecase",
            "./txhousing",
            "--train-intervals",
            str(TRAIN_MONTHS),
            "--intervals",
            str(MONTHS),
            "--trials",
            "0",
        ],
        user_env,
        workdir,
    )


def test_init_proposes_a_monthly_regression_use_case(
    initialised: subprocess.CompletedProcess[str], workdir: Path
) -> None:
    assert initialised.returncode == 0, initialised.stdout + initialised.stderr
    assert "monthly (@monthly)" in initialised.stdout
    assert "airloop demo --usecase ./txhousing" in initialised.stdout
    folder = workdir / "txhousing"
    for name in ("usecase.yaml", "transforms.py", "README.md", "profile.html", "profile.json"):
        assert (folder / name).is_file(), name
    from airloop.usecase import load_usecase

    usecase = load_usecase(str(folder))
    assert (usecase.task, usecase.schedule) == ("regression", "@monthly")
    kinds = {view.kind for view in usecase.feature_views}
    assert {"aggregate", "lag", "transform", "label_rate"} <= kinds


def test_the_loop_runs_on_monthly_data_through_airflow(
    demo: subprocess.CompletedProcess[str], user_env: dict[str, str]
) -> None:
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-3000:]
    out = demo.stdout
    assert f"then {MONTHS} monthly intervals served and monitored" in out
    assert f"intervals run:        {TRAIN_MONTHS + MONTHS} succeeded, 0 failed" in out
    assert "champion:             txhousing v" in out
    assert "answers with txhousing v1" in out
    assert "rows quarantined:     0" in out
    for month in ("2002-01", "2002-02", "2002-03"):
        assert f"  {month}  served" in out, out[-3000:]
    home = Path(user_env["AIRLOOP_HOME"])
    events = json.loads((home / "reports" / "timeline.json").read_text())
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["ingest", "champion"], kinds
    # Each monitored month was checked, with a drift report, and decided on in the ledger.
    monitoring = home / "monitoring" / "txhousing"
    for month in ("2002-01-01", "2002-02-01", "2002-03-01"):
        assert (monitoring / "intervals" / month / "drift.json").is_file(), month
    ledger = (monitoring / "decisions.jsonl").read_text().splitlines()
    decided = {json.loads(line)["interval_start"][:10] for line in ledger}
    assert {"2002-01-01", "2002-02-01", "2002-03-01"} <= decided


def test_the_flights_use_case_is_untouched_by_the_new_one(workdir: Path) -> None:
    from airloop.usecase import load_usecase

    assert load_usecase("flights").schedule == "@daily"
    assert not (REPO / "include" / "airloop" / "usecases" / "txhousing").exists()
