"""docker-compose.yml and docker/ without an engine: the file is valid, every command is a real
entry point of the image, and nothing shipped holds a credential."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import yaml
from typer.main import get_command

from tests.conftest import REPO, require_service

COMPOSE = REPO / "docker-compose.yml"
SHIPPED = [COMPOSE, REPO / ".env.example", *sorted((REPO / "docker").rglob("*"))]
SECRETS = ("PASSWORD", "SECRET", "TOKEN", "FERNET", "KEY")


def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def example_env(tmp_path: Path) -> Path:
    """The example's variables, the empty (required) ones filled with generated values."""
    generated = subprocess.run(
        ["python3", str(REPO / "docker" / "new-env.py")], capture_output=True, text=True, check=True
    ).stdout
    values = dict(line.split("=", 1) for line in generated.splitlines())
    lines = []
    for line in (REPO / ".env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#") and not value:
            line = f"{name}={values[name]}"
        lines.append(line)
    path = tmp_path / ".env"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_docker_compose_accepts_the_file_with_the_example_variables(tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        require_service("docker-compose", "not installed (make docker-engine installs it)")
    base = ["docker-compose", "--project-directory", str(REPO), "-f", str(COMPOSE)]
    filled = subprocess.run(
        [*base, "--env-file", str(example_env(tmp_path)), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert filled.returncode == 0, filled.stderr
    as_shipped = subprocess.run(
        [*base, "--env-file", str(REPO / ".env.example"), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert as_shipped.returncode != 0, "an empty required value must stop docker-compose"
    assert "in .env (see .env.example)" in as_shipped.stderr


def test_the_example_env_ships_no_value_for_a_secret() -> None:
    names = []
    for line in (REPO / ".env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            names.append(name)
            assert value == "", f"{name} has a value in .env.example"
    assert {"POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET", "SERVING_TOKEN"} <= set(names)


def test_no_credential_literal_in_anything_shipped() -> None:
    names = "|".join(SECRETS)
    assignment = re.compile(rf"^\s*-?\s*([A-Z0-9_]*(?:{names})[A-Z0-9_]*)\s*[:=]\s*(\S*)")
    for path in SHIPPED:
        if not path.is_file() or path.suffix in (".crt", ".json") or path.name == "README.md":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for name, value in assignment.findall(line.split(" #")[0]):
                value = value.strip("\"',")
                allowed = value.startswith("${") or value.startswith("<") or value in ("", "#")
                assert allowed, f"{path.relative_to(REPO)}:{number}: {name} has a literal value"
    for service in services().values():
        for value in (service.get("environment") or {}).values():
            if isinstance(value, str) and any(s in value for s in ("password=", "://")):
                assert "${" in value, value


def airloop_commands() -> set[str]:
    from airloop.cli import app

    return set(get_command(app).commands)  # type: ignore[attr-defined]


def airflow_commands() -> set[str]:
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def commands_of(service: dict) -> list[list[str]]:
    found = [service["command"]] if isinstance(service.get("command"), list) else []
    test = (service.get("healthcheck") or {}).get("test") or []
    if test[:1] == ["CMD"]:
        found.append(test[1:])
    return found


def test_every_airloop_service_runs_a_real_entry_point_of_the_image() -> None:
    mine, airflow = airloop_commands(), airflow_commands()
    checked = 0
    for name, service in services().items():
        if service.get("image") != "${AIRLOOP_IMAGE:-airloop:latest}":
            continue
        for command in commands_of(service):
            if command[0] == "python":
                continue
            assert command[0] == "airloop", f"{name}: {command}"
            assert command[1] in mine, f"{name}: `airloop {command[1]}` is no command"
            if command[1] == "airflow":
                assert command[2] in airflow, f"{name}: `airflow {command[2]}` is no command"
            checked += 1
    assert checked >= 12


def test_every_long_running_service_has_a_healthcheck_and_host_networking() -> None:
    for name, service in services().items():
        assert service["network_mode"] == "host", name
        if name != "airflow-init":  # runs once and exits
            assert service["healthcheck"]["test"], name
        if name not in ("postgres", "redis", "prometheus"):
            assert service["depends_on"], name
