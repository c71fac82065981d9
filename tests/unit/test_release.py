"""The version's one source and the release's refusals (``make release``, airloop.core.release).

The refusals run against a git repository made in a temporary folder, with the three files a
release reads: pyproject.toml, uv.lock and CHANGELOG.md.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from airloop.cli import app
from airloop.core.provenance import git_commit
from airloop.core.release import (
    ReleaseRefused,
    changelog_top,
    check_release,
    locked_version,
    main,
    project_version,
)
from airloop.core.version import airloop_version
from tests.conftest import REPO

GIT = ("git", "-c", "user.name=release test", "-c", "user.email=release@test.invalid")
GIT_NO_SIGN = (*GIT, "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false")


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        [*GIT_NO_SIGN, "-C", str(root), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def write_release_files(
    root: Path, version: str, top: str, locked: str | None = None, older: str = "0.1.0"
) -> None:
    (root / "pyproject.toml").write_text(f'[project]\nname = "airloop"\nversion = "{version}"\n')
    (root / "uv.lock").write_text(
        'version = 1\n\n[[package]]\nname = "pandas"\nversion = "2.2.3"\n\n'
        f'[[package]]\nname = "airloop"\nversion = "{locked or version}"\n'
    )
    (root / "CHANGELOG.md").write_text(
        f"# Changelog\n\nNewest first.\n\n## [{top}] - 2026-12-07\n\n- what changed\n\n"
        f"## [{older}] - 2026-11-30\n\n- the first\n"
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout whose last release is v0.1.0 and whose HEAD is ready to release 0.2.0."""
    root = tmp_path / "checkout"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write_release_files(root, "0.1.0", "0.1.0", older="0.0.9")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "0.1.0")
    git(root, "tag", "-a", "v0.1.0", "-m", "airloop 0.1.0")
    write_release_files(root, "0.2.0", "0.2.0")
    git(root, "commit", "-q", "-am", "0.2.0")
    return root


def commit_all(root: Path) -> None:
    git(root, "commit", "-q", "-am", "change")


def refusal(version: str, root: Path) -> str:
    with pytest.raises(ReleaseRefused) as refused:
        check_release(version, root)
    return str(refused.value)


def test_a_clean_tree_with_a_new_later_version_named_everywhere_is_released_at_head(
    repo: Path,
) -> None:
    assert check_release("0.2.0", repo) == git(repo, "rev-parse", "HEAD")


def test_a_changed_file_refuses_and_is_named(repo: Path) -> None:
    (repo / "CHANGELOG.md").write_text((repo / "CHANGELOG.md").read_text() + "\nmore\n")
    message = refusal("0.2.0", repo)
    assert "the working tree has changes" in message
    assert "CHANGELOG.md" in message


def test_an_untracked_file_refuses_too(repo: Path) -> None:
    (repo / "notes.txt").write_text("not committed")
    message = refusal("0.2.0", repo)
    assert "the working tree has changes" in message
    assert "notes.txt" in message


def test_a_staged_change_refuses(repo: Path) -> None:
    (repo / "new.py").write_text("x = 1\n")
    git(repo, "add", "new.py")
    assert "new.py" in refusal("0.2.0", repo)


def test_an_existing_tag_refuses(repo: Path) -> None:
    git(repo, "tag", "-a", "v0.2.0", "-m", "released elsewhere")
    assert refusal("0.2.0", repo) == (
        "the tag v0.2.0 exists already: 0.2.0 was released; choose the next version"
    )


def test_the_released_version_itself_is_refused_by_its_tag(repo: Path) -> None:
    write_release_files(repo, "0.1.0", "0.1.0")
    commit_all(repo)
    assert "the tag v0.1.0 exists already" in refusal("0.1.0", repo)


def test_a_version_earlier_than_the_last_release_refuses(repo: Path) -> None:
    git(repo, "tag", "-a", "v0.10.0", "-m", "a later release, compared as numbers")
    assert refusal("0.2.0", repo) == "0.2.0 is not later than the last release, 0.10.0"


def test_tags_that_are_not_versions_are_not_releases(repo: Path) -> None:
    git(repo, "tag", "vendor-drop")
    git(repo, "tag", "v9")
    assert check_release("0.2.0", repo)


def test_the_first_release_needs_no_earlier_tag(tmp_path: Path) -> None:
    root = tmp_path / "first"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write_release_files(root, "0.1.0", "0.1.0")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    assert check_release("0.1.0", root) == git(root, "rev-parse", "HEAD")


def test_a_changelog_whose_top_entry_is_another_version_refuses(repo: Path) -> None:
    write_release_files(repo, "0.2.0", "0.1.5")
    commit_all(repo)
    message = refusal("0.2.0", repo)
    assert message.startswith("CHANGELOG.md's top entry is '0.1.5', not '0.2.0'")
    assert "## [0.2.0] - <date>" in message


def test_an_unreleased_top_entry_refuses(repo: Path) -> None:
    write_release_files(repo, "0.2.0", "Unreleased")
    commit_all(repo)
    assert "top entry is 'Unreleased', not '0.2.0'" in refusal("0.2.0", repo)


def test_no_changelog_refuses(repo: Path) -> None:
    git(repo, "rm", "-q", "CHANGELOG.md")
    git(repo, "commit", "-q", "-m", "no changelog")
    assert refusal("0.2.0", repo).startswith("no CHANGELOG.md in ")


def test_pyproject_at_another_version_refuses(repo: Path) -> None:
    write_release_files(repo, "0.1.9", "0.2.0", locked="0.2.0")
    commit_all(repo)
    assert refusal("0.2.0", repo).startswith(
        "pyproject.toml's [project] version is '0.1.9', not '0.2.0'"
    )


def test_a_lock_file_not_relocked_after_the_bump_refuses(repo: Path) -> None:
    write_release_files(repo, "0.2.0", "0.2.0", locked="0.1.0")
    commit_all(repo)
    assert refusal("0.2.0", repo).startswith("uv.lock records airloop '0.1.0', not '0.2.0'")


@pytest.mark.parametrize("version", ["", "0.2", "v0.2.0", "0.2.0rc1", "0.2.0 ", "1.2.3.4"])
def test_a_version_that_is_not_three_numbers_refuses(repo: Path, version: str) -> None:
    assert "is not x.y.z" in refusal(version, repo)


def test_the_command_prints_the_commit_or_the_refusal(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "0.2.0", "--root", str(repo)]) == 0
    assert capsys.readouterr().out == git(repo, "rev-parse", "HEAD") + "\n"
    assert main(["check", "0.1.0", "--root", str(repo)]) == 1
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err.startswith("make release: refused: the tag v0.1.0 exists already")


# -- the version's one source -------------------------------------------------------------------


def repo_version() -> str:
    with (REPO / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def test_the_installed_version_is_pyprojects_and_the_changelog_and_lock_name_it() -> None:
    version = repo_version()
    assert airloop_version() == version
    assert project_version(REPO / "pyproject.toml") == version
    assert changelog_top(REPO / "CHANGELOG.md") == version
    assert locked_version(REPO / "uv.lock") == version


def test_the_package_says_its_version_when_asked() -> None:
    import airloop

    assert airloop.__version__ == repo_version()
    with pytest.raises(AttributeError):
        airloop.no_such_thing  # noqa: B018


def test_airloop_version_prints_it_and_exits() -> None:
    result = CliRunner().invoke(app, ["--version"], prog_name="airloop")
    assert result.exit_code == 0, result.output
    assert result.output == f"airloop {repo_version()}\n"


def test_every_mlflow_run_and_model_version_tag_carries_the_version() -> None:
    from airloop.training.train import lineage_tags

    tags = lineage_tags({"dag_id": "model_training", "run_id": "manual__1"})
    assert tags["airloop.version"] == repo_version()
    assert tags["airloop.dag_id"] == "model_training"
    assert tags["airloop.git_commit"] == git_commit()


def test_health_answers_the_version_and_commit_as_its_openapi_declares() -> None:
    from airloop.serving.app import create_app

    service = create_app()
    answer = TestClient(service).get("/health")  # no lifespan: /health needs no model
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "alive",
        "version": repo_version(),
        "git_commit": git_commit(),
    }
    document = service.openapi()
    declared = document["paths"]["/health"]["get"]["responses"]["200"]["content"]
    ref = declared["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    schema = document["components"]["schemas"][ref]
    assert set(schema["required"]) == set(answer.json())
    assert schema["properties"]["status"]["const"] == "alive"
