"""``airloop init --ci``: the pipeline of a use case in its own repository, linted as airloop's
own workflow is; ``airloop check``, the step that validates the use case."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from typer.testing import CliRunner

from airloop.cli import app
from airloop.initiation.workflow import render_dockerfile, render_workflow
from airloop.usecase import UseCaseError
from tests.git_repo import usecase_repo

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


def test_the_workflow_passes_actionlint_and_zizmor(tmp_path):
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    path = folder / "airloop-mine.yml"
    path.write_text(render_workflow("mine", "usecases/mine", "0.1.0"))

    lint = subprocess.run(
        [str(BIN / "actionlint"), str(path)], capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    audit = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--no-progress", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_the_workflow_runs_the_checks_on_pull_requests_and_deploys_on_main():
    workflow = yaml.safe_load(render_workflow("mine", "usecases/mine", "0.1.0"))
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["pull_request"]["paths"][0] == "usecases/mine/**"
    assert triggers["push"] == {"branches": ["main"], "paths": ["usecases/mine/**"]}
    assert workflow["env"]["AIRLOOP_USECASE"] == "usecases/mine/usecase.yaml"
    steps = [s.get("run", "") for s in workflow["jobs"]["check"]["steps"]]
    assert "airloop check" in steps
    assert any("airloop ci --base" in s and "--skip-unaffected" in s for s in steps)
    for job, way in (("deploy-image", "image"), ("deploy-folder", "folder")):
        assert workflow["jobs"][job]["needs"] == "check"
        assert f"vars.AIRLOOP_DEPLOY == '{way}'" in workflow["jobs"][job]["if"]
    dockerfile = render_dockerfile("mine", "usecases/mine")
    assert "COPY --chown=airloop usecases/mine/ /opt/airloop/usecases/mine/" in dockerfile
    assert "ENV AIRLOOP_USECASE=/opt/airloop/usecases/mine/usecase.yaml" in dockerfile


def test_init_ci_writes_the_pipeline_of_an_existing_folder(tmp_path, home):
    folder = usecase_repo(tmp_path, "mine")

    answer = CliRunner().invoke(app, ["init", "mine", "--ci", "--into", str(folder)])

    assert answer.exit_code == 0, answer.output
    workflow = tmp_path / ".github" / "workflows" / "airloop-mine.yml"
    assert "usecases/mine/**" in workflow.read_text()
    assert (folder / "Dockerfile").is_file()
    assert "AIRLOOP_IMAGE" in answer.output and "AIRLOOP_DEPLOY" in answer.output


def test_init_ci_needs_a_use_case_folder(tmp_path, home):
    from airloop.initiation import InitError

    answer = CliRunner().invoke(app, ["init", "mine", "--ci", "--into", str(tmp_path)])
    assert isinstance(answer.exception, InitError)  # airloop's main prints it, exit 1
    assert "holds no usecase.yaml" in str(answer.exception)
    assert not (tmp_path / "Dockerfile").exists()


def test_init_without_data_names_what_is_missing(home):
    answer = CliRunner().invoke(app, ["init", "mine", "--data", "rows.csv"])
    assert answer.exit_code == 2
    assert "missing --entity, --timestamp, --target" in " ".join(answer.output.split())


def test_check_validates_the_use_case(home, tmp_path, monkeypatch):
    answer = CliRunner().invoke(app, ["check"])
    assert answer.exit_code == 0, answer.output
    assert "use case 'flights' is valid" in answer.output
    broken = tmp_path / "usecase.yaml"
    broken.write_text("name: Not-A-Name\n")
    monkeypatch.setenv("AIRLOOP_USECASE", str(broken))
    from airloop.settings import get_settings

    get_settings.cache_clear()
    answer = CliRunner().invoke(app, ["check"])
    assert isinstance(answer.exception, UseCaseError)  # airloop's main prints it, exit 2
    assert "invalid use case" in str(answer.exception)
