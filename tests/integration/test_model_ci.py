"""``airloop ci`` on a use case in a git repository of its own, as a pull request's job runs it:
a neutral change passes with identical figures, one that drops the strongest feature view is
refused by the gate with the rule named, through the command and its exit code."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from airloop.ci.run import run_ci
from airloop.settings import get_settings
from tests.git_repo import git, usecase_repo

END = datetime(2013, 1, 13, tzinfo=UTC)
INTERVALS = 5  # days of flights: about 4,000 rows, 600 held out
STRONGEST = "plane_departures"  # the aircraft's last departure delay: its inbound is late


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("usecase-repo")
    return root, usecase_repo(root)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ci-work")


@pytest.fixture
def restored(repo: tuple[Path, Path]):
    yield repo
    git(repo[0], "checkout", "--quiet", "--", ".")


def test_a_neutral_change_passes_with_the_champions_figures(restored, work):
    root, folder = restored
    path = folder / "usecase.yaml"
    path.write_text(path.read_text() + "# a comment changes nothing the model sees\n")

    result = run_ci(str(path), "main", work, end=END, intervals=INTERVALS, checkout=root)

    assert result.changes.usecase == ["usecases/flights/usecase.yaml"]
    assert not result.changes.engine
    assert result.comparison.champion_version == "1"
    assert result.comparison.rows > 300
    assert result.comparison.candidate == result.comparison.champion
    assert result.comparison.decision.promote, result.comparison.decision.reasons
    assert {v.status for v in result.views} == {"unchanged"}
    assert not result.contract.changes and not result.contract.problems
    assert result.contract.example_score is not None
    assert result.contract.parity_rows > 0 and result.contract.parity_max_difference == 0
    assert result.passed


def test_dropping_the_strongest_view_is_refused_with_the_rule_named(restored, work, monkeypatch):
    root, folder = restored
    path = folder / "usecase.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["feature_views"] = [v for v in raw["feature_views"] if v["name"] != STRONGEST]
    shares = raw["training"]["max_null_shares"]
    raw["training"]["max_null_shares"] = {
        k: v for k, v in shares.items() if not k.startswith(f"{STRONGEST}__")
    }
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    base_homes = sorted(work.glob("base-*"))

    from airloop.cli import app

    monkeypatch.chdir(root)
    monkeypatch.setenv("AIRLOOP_USECASE", str(path))  # restored after: the CLI sets it too
    get_settings.cache_clear()
    try:
        answer = CliRunner().invoke(
            app,
            [
                "--usecase",
                str(path),
                "ci",
                "--base",
                "main",
                "--end",
                "2013-01-13",
                "--intervals",
                str(INTERVALS),
                "--work",
                str(work),
            ],
        )
    finally:
        get_settings.cache_clear()

    assert answer.exit_code == 1, (answer.output, answer.exception)
    assert isinstance(answer.exception, SystemExit), answer.exception
    report = (work / "report" / "report.md").read_text()
    assert "— failed: the gate refused the candidate" in report
    # The relative rule, by name, with both figures on the same rows.
    assert (
        "roc_auc" in report and "is below champion v1's" in report and "on the same rows" in report
    )
    assert f"| {STRONGEST} |" in report and "| removed |" in report
    assert "the model no longer reads: plane_departures__" in report
    assert (work / "report" / "report.html").read_text().startswith("<!doctype html>")
    # The base's home was built once, by the first check, and reused by this one.
    assert sorted(work.glob("base-*")) == base_homes and len(base_homes) == 1


def test_against_the_champion_registered_in_a_home_in_use(restored, work, champion, features):
    """--registered: the session home's champion, on rows from its offline store; the
    candidate built from its landing zone; the home's registry and aliases left as they were."""
    from airloop.registry.tracking import configure

    root, folder = restored
    client = configure(features)
    before = {(v.version, tuple(v.aliases)) for v in client.search_model_versions()}

    result = run_ci(
        str(folder / "usecase.yaml"), "main", work, intervals=4, checkout=root, registered=features
    )

    assert result.base_home == str(features.home)
    assert result.comparison.champion_version == champion["version"]
    # The window ends where the home's offline store does (its features ran 1-8 January).
    assert (result.window.start[:10], result.window.end[:10]) == ("2013-01-05", "2013-01-09")
    assert result.comparison.rows > 100 and result.comparison.champion is not None
    assert not result.contract.changes and not result.contract.problems
    client = configure(features)
    assert {(v.version, tuple(v.aliases)) for v in client.search_model_versions()} == before
