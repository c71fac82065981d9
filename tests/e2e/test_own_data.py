"""docs/your-own-data.md, followed as a user would: `airloop init` on the second data set (Texas
housing, monthly, a regression target per city), then the loop on it through Airflow's
scheduler with `airloop demo --usecase`, in a home of its own; then flights beside it in the
same Airflow (`AIRLOOP_USECASES`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO

BUDGET_SECONDS = 900
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(BUDGET_SECONDS)]
AIRLOOP = str(Path(sys.executable).with_name("airloop"))
DATA = REPO / "examples" / "txhousing" / "txhousing.csv"
# A shorter window than the proposal's 36 months, so the test stays a few minutes: two years
# of months (January 2000 on; the proposal's 12-month lags need a year of history before the
# training rows) to the first champion, then two months served and monitored, each with the
# use case's scheduled training (about half a minute a month).
TRAIN_MONTHS, MONTHS = 24, 2
MONITORED = ("2002-01", "2002-02")


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
            "AIRLOOP_SERVING_PORT": "8484",  # and 8485 for the next use case beside it
            "AIRLOOP_MLFLOW_UI_PORT": "8486",
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
    for month in MONITORED:
        assert f"  {month}  served" in out, out[-3000:]
    home = Path(user_env["AIRLOOP_HOME"])
    events = json.loads((home / "reports" / "txhousing" / "timeline.json").read_text())
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["ingest", "champion"], kinds
    # Each monitored month was checked, with a drift report, and decided on in the ledger.
    monitoring = home / "monitoring" / "txhousing"
    for month in MONITORED:
        assert (monitoring / "intervals" / f"{month}-01" / "drift.json").is_file(), month
    ledger = (monitoring / "decisions.jsonl").read_text().splitlines()
    decided = {json.loads(line)["interval_start"][:10] for line in ledger}
    assert {f"{month}-01" for month in MONITORED} <= decided


def test_flights_runs_beside_it_in_one_airflow(
    demo: subprocess.CompletedProcess[str], workdir: Path, user_env: dict[str, str]
) -> None:
    """Two use cases side by side: txhousing first (its demo's DAGs keep their ids), flights
    next (``<dag>__flights``, served on the next port); neither touches the other's state."""
    from airloop.core.http import HttpError, request_json

    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-3000:]
    env = {**user_env, "AIRLOOP_USECASES": "./txhousing,flights"}
    home = Path(user_env["AIRLOOP_HOME"])
    before = txhousing_state(home, env, workdir)
    proc = subprocess.Popen(
        [AIRLOOP, "up"], env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        text = read_until(proc, "Ctrl-C")
        assert "use case:   txhousing (DAGs feature_pipeline, ...)" in text, text
        assert "use case:   flights (DAGs feature_pipeline__flights, ...)" in text, text
        assert "serving:    http://127.0.0.1:8484" in text and "http://127.0.0.1:8485" in text
        assert "backfill:   airloop backfill --start 2013-01-01" in text, text  # flights: default
        assert f"airloop --usecase {workdir / 'txhousing'} backfill --start 2000-01" in text
        backfill = airloop(
            ["--usecase", "flights", "backfill", "--start", "2013-01-01", "--intervals", "2"],
            env,
            workdir,
        )
        assert backfill.returncode == 0, backfill.stdout + backfill.stderr
        assert "queued feature_pipeline__flights runs" in backfill.stdout
        # Each use case's service answers for its own model: txhousing's champion, and flights
        # (no champion yet) saying so.
        ready = request_json("GET", "http://127.0.0.1:8484/ready")
        assert ready["model"]["name"] == "txhousing", ready
        with pytest.raises(HttpError) as no_model:
            request_json("GET", "http://127.0.0.1:8485/ready")
        assert no_model.value.status == 503 and no_model.value.body["model"] is None
        # The airloop page shows one use case at a time, with links to the others.
        password = next(
            line.split(" / ")[1].strip() for line in text.splitlines() if line.startswith("login:")
        )
        token = request_json(
            "POST",
            "http://127.0.0.1:8481/auth/token",
            {"username": "admin", "password": password},
        )["access_token"]
        page = request_text("http://127.0.0.1:8481/airloop/?usecase=flights", token)
        assert "airloop: flights" in page and "?usecase=txhousing" in page, page[:2000]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
    assert proc.returncode == 0
    assert txhousing_state(home, env, workdir) == before
    flights = json.loads(airloop(["--usecase", "flights", "status", "--json"], env, workdir).stdout)
    assert flights["airflow"]["dag_runs"]["feature_pipeline__flights"].get("success") == 2
    assert flights["champion"] is None
    assert {t["partitions"] for t in flights["offline_store"]["tables"].values()} == {2}
    assert sorted(p.name for p in (home / "landing").iterdir()) == ["flights", "txhousing"]


def test_a_neutral_change_to_a_transform_passes_airloop_ci_in_the_users_repository(
    initialised: subprocess.CompletedProcess[str], workdir: Path, user_env: dict[str, str]
) -> None:
    """docs/guides/model-ci.md on the user's own table: the use case committed in a repository
    of its own with the pipeline `airloop init --ci` writes, a variable renamed in its
    transform, then `airloop ci --base main` as the pull request's job runs it."""
    import shutil

    assert initialised.returncode == 0
    repo = workdir / "repository"
    shutil.copytree(workdir / "txhousing", repo / "txhousing")
    wrote = airloop(["init", "txhousing", "--ci", "--into", "txhousing"], user_env, repo)
    assert wrote.returncode == 0, wrote.stdout + wrote.stderr
    assert (repo / ".github" / "workflows" / "airloop-txhousing.yml").is_file()
    git = ["git", "-c", "user.email=ci@example.org", "-c", "user.name=ci"]
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "the use case"]):
        subprocess.run([*git, *step], cwd=repo, check=True)
    transforms = repo / "txhousing" / "transforms.py"
    assert "slope" in transforms.read_text()
    transforms.write_text(transforms.read_text().replace("slope", "trend_slope"))

    checked = airloop(
        ["--usecase", "txhousing", "ci", "--base", "main", "--work", str(workdir / "ci")],
        user_env,
        repo,
    )

    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    report = (workdir / "ci" / "report" / "report.md").read_text()
    assert "## airloop ci: `txhousing` — passed" in report
    assert "- transforms: `txhousing/transforms.py`" in report
    assert "| r2 |" in report and "+0.0000 |" in report
    assert "Unchanged for callers" in report


def txhousing_state(home: Path, env: dict[str, str], workdir: Path) -> dict[str, object]:
    """What flights beside it must leave alone: txhousing's runs, champion and stored files."""
    status = json.loads(
        airloop(["--usecase", "./txhousing", "status", "--json"], env, workdir).stdout
    )
    files = {
        str(p.relative_to(home)): p.stat().st_mtime_ns
        for folder in ("feast/offline/txhousing", "landing/txhousing", "monitoring/txhousing")
        for p in (home / folder).rglob("*")
        if p.is_file()
    }
    return {
        "runs": status["airflow"]["dag_runs"].get("feature_pipeline"),
        "champion": status["champion"]["version"],
        "files": files,
    }


def read_until(proc: subprocess.Popen[bytes], marker: str, timeout: float = 300) -> str:
    """What a starting process printed up to the line that starts with ``marker``."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if line.startswith(marker):
            break
    return "".join(lines)


def request_text(url: str, token: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.read().decode())
