"""airloop ci's parts that need no training: the changed files by kind, the base's use case
folder, the recent window, the serving contract's field changes, and the report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from airloop.ci.changes import CiSetupError, base_usecase_folder, changed_files
from airloop.ci.compare import Comparison, Scorer
from airloop.ci.contract import ContractCheck, field_changes, input_changes
from airloop.ci.homes import CiWindow, ci_window
from airloop.ci.report import markdown, page, verdict
from airloop.ci.run import CiResult
from airloop.registry.models import GateDecision
from airloop.usecase import load_usecase
from tests.git_repo import git, usecase_repo

FOLDER = "usecases/flights"


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path, usecase_repo(tmp_path)


def test_changed_files_are_sorted_by_what_they_can_affect(repo):
    root, folder = repo
    (folder / "usecase.yaml").write_text((folder / "usecase.yaml").read_text() + "# note\n")
    (folder / "transforms.py").write_text("x = 1\n")  # new, untracked: part of the change
    (root / "include" / "airloop").mkdir(parents=True)
    (root / "include" / "airloop" / "engine.py").write_text("")
    (root / "uv.lock").write_text("")
    (root / "README.md").write_text("")
    git(root, "add", "include", "uv.lock")  # staged or not, against the base it is changed

    found = changed_files(root, "main", FOLDER)

    assert found.usecase == [f"{FOLDER}/usecase.yaml"]
    assert found.transforms == [f"{FOLDER}/transforms.py"]
    assert found.engine == ["include/airloop/engine.py"]
    assert found.environment == ["uv.lock"]
    assert found.other == ["README.md"]
    assert found.affects_model
    assert found.merge_base == git(root, "rev-parse", "main").strip()


def test_a_change_to_docs_only_does_not_affect_the_model(repo):
    root, _ = repo
    (root / "docs.md").write_text("")
    found = changed_files(root, "main", FOLDER)
    assert found.other == ["docs.md"] and not found.affects_model


def test_an_unknown_base_ref_says_how_to_fetch_it(repo):
    root, _ = repo
    with pytest.raises(CiSetupError, match=r"'origin/nowhere' is not in this checkout.*fetch"):
        changed_files(root, "origin/nowhere", FOLDER)


def test_the_base_folder_is_the_committed_use_case_with_ignored_data_linked(repo, tmp_path):
    root, folder = repo
    (root / ".gitignore").write_text("*.csv\n")
    (folder / "rows.csv").write_text("a\n1\n")
    (folder / "usecase.yaml").write_text("name: changed\n")
    target = tmp_path / "base"

    found = base_usecase_folder(root, "main", FOLDER, target)

    assert found == target
    assert (target / "usecase.yaml").read_text() == (
        Path(__file__).parents[2] / "include/airloop/usecases/flights/usecase.yaml"
    ).read_text()
    assert (target / "rows.csv").is_symlink() and (target / "rows.csv").read_text() == "a\n1\n"


def test_a_new_use_case_has_no_base(repo, tmp_path):
    root, _ = repo
    assert base_usecase_folder(root, "main", "usecases/other", tmp_path / "base") is None


def test_the_window_defaults_to_the_first_champions_at_the_end_of_the_replay():
    flights = load_usecase("flights")
    window = ci_window(flights, None, None, None)
    assert window.end.startswith("2013-12-31")
    assert window.start.startswith("2013-12-10") and window.intervals == 21  # first_window 21d
    chosen = ci_window(flights, None, datetime(2013, 1, 13, tzinfo=UTC), 5)
    assert (chosen.start[:10], chosen.end[:10], chosen.intervals) == ("2013-01-08", "2013-01-13", 5)


def _with_request_fields(tmp_path: Path, fields: list[str]):
    raw = yaml.safe_load(
        (Path(__file__).parents[2] / "include/airloop/usecases/flights/usecase.yaml").read_text()
    )
    raw["events"]["request_fields"] = fields
    raw["events"]["example"] = {k: v for k, v in raw["events"]["example"].items() if k in fields}
    for kind in ("numeric", "categorical"):  # the model's own inputs among them
        raw["training"][kind] = [f for f in raw["training"][kind] if f in fields]
    (tmp_path / "usecase.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_usecase(str(tmp_path / "usecase.yaml"))


def test_a_request_field_removed_is_a_contract_change_unless_the_change_says_why(tmp_path):
    base = load_usecase("flights")
    fewer = _with_request_fields(tmp_path, [f for f in base.events.request_fields if f != "month"])

    changes = field_changes(base, fewer)
    assert changes == {"request_removed": ["month"], "request_added": [], "request_retyped": []}
    check = ContractCheck(**changes)
    assert check.changes == ["/v1/predict request field removed: month"]
    assert check.broken
    assert not ContractCheck(**changes, accepted="month comes from the calendar now").broken
    assert field_changes(base, base) == {
        "request_removed": [],
        "request_added": [],
        "request_retyped": [],
    }


def test_model_inputs_added_or_retyped_break_invocations_removed_ones_do_not():
    old = Scorer(None, ["a", "b"], {"a": "double", "b": "string"})
    new = Scorer(None, ["b", "c"], {"b": "double", "c": "double"})
    changes = input_changes(old, new)
    assert changes == {
        "inputs_removed": ["a"],
        "inputs_added": ["c"],
        "inputs_retyped": ["b: string → double"],
    }
    check = ContractCheck(**changes)
    assert check.changes == [
        "/invocations input added: c",
        "/invocations input retyped: b: string → double",
    ]
    assert not ContractCheck(inputs_removed=["a"]).broken


def _result(promote: bool, contract: ContractCheck) -> CiResult:
    reasons = [] if promote else ["roc_auc 0.5934 is below champion v1's 0.6274 <&>"]
    return CiResult.model_validate(
        {
            "usecase": "flights",
            "changes": {"base": "main", "merge_base": "a" * 40, "usecase": ["u.yaml"]},
            "window": CiWindow(
                start="2013-01-08T00:00:00+00:00", end="2013-01-13T00:00:00+00:00", intervals=5
            ),
            "base_home": "/b",
            "candidate_home": "/c",
            "candidate_version": "1",
            "comparison": Comparison(
                rows=648,
                window=["2013-01-11 21:00", "2013-01-12 17:00"],
                primary_metric="roc_auc",
                higher_is_better=True,
                champion_version="1",
                champion={"roc_auc": 0.6274},
                candidate={"roc_auc": 0.5934},
                decision=GateDecision(promote=promote, reasons=reasons, primary_metric="roc_auc"),
            ),
            "contract": contract,
        }
    )


def test_the_report_gives_the_figures_the_verdict_and_the_reasons():
    refused = _result(False, ContractCheck(request_removed=["month"]))
    text = markdown(refused)
    assert refused.passed is False
    assert verdict(refused) == (
        "failed: the gate refused the candidate and the serving contract breaks"
    )
    assert "| roc_auc | 0.6274 | 0.5934 | -0.0340 |" in text
    assert "- roc_auc 0.5934 is below champion v1's 0.6274 <&>" in text
    assert "- /v1/predict request field removed: month" in text
    assert "same 648 held-out rows" in text
    html = page(refused, text)
    assert "&lt;&amp;&gt;" in html and "<&>" not in html
    assert "<td>roc_auc</td><td>0.6274</td>" in html
    passed = _result(True, ContractCheck())
    assert passed.passed and verdict(passed) == "passed"
    assert "Unchanged for callers" in markdown(passed)


def test_skip_unaffected_exits_at_once_when_only_docs_changed(repo, home, monkeypatch):
    from typer.testing import CliRunner

    from airloop.cli import app
    from airloop.settings import get_settings

    root, folder = repo
    (root / "docs.md").write_text("")
    summary = root / "summary.md"
    monkeypatch.chdir(root)
    monkeypatch.setenv("AIRLOOP_USECASE", str(folder / "usecase.yaml"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    get_settings.cache_clear()

    answer = CliRunner().invoke(app, ["ci", "--base", "main", "--skip-unaffected"])

    assert answer.exit_code == 0, answer.output
    assert "nothing that can change the model changed against main; skipped" in answer.output
    assert "skipped" in summary.read_text()
    assert not home.exists()  # no home, no training: nothing was done


def test_a_home_in_use_bounds_the_window_by_what_it_holds():
    flights = load_usecase("flights")
    held = (datetime(2013, 1, 1, tzinfo=UTC), datetime(2013, 1, 9, tzinfo=UTC))
    window = ci_window(flights, None, None, None, held)  # 21 days asked, 8 held
    assert (window.start[:10], window.end[:10], window.intervals) == (
        "2013-01-01",
        "2013-01-09",
        8,
    )


def test_the_landing_zone_is_linked_file_by_file_without_airloops_records(tmp_path):
    from airloop.data.landing import link_landing_zone

    source, target = tmp_path / "in-use", tmp_path / "candidate"
    (source / "flights").mkdir(parents=True)
    (source / "flights" / "2013-01-01.csv").write_text("a\n1\n")
    (source / "_used").mkdir()
    (source / "_used" / "2013-01-01.json").write_text("{}")

    assert link_landing_zone(source, target) == 1
    linked = target / "flights" / "2013-01-01.csv"
    assert linked.read_text() == "a\n1\n" and linked.stat().st_nlink == 2  # a link, not a copy
    assert not (target / "_used").exists()
