"""The airloop plugin as Airflow loads it: listed by `airflow plugins`, routes behind the login."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def test_airflow_lists_the_plugin_with_its_listener_page_and_views() -> None:
    out = subprocess.run(
        [AIRFLOW, "plugins", "--output", "json"],
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    plugins = json.loads(out.stdout[out.stdout.index("[") :])
    airloop = next(p for p in plugins if p["name"] == "airloop")
    assert any("airloop.orchestration.listener" in str(x) for x in airloop["listeners"])
    assert "/airloop" in json.dumps(airloop["fastapi_apps"])
    views = {v["url_route"]: v for v in airloop["external_views"]}
    assert views["airloop"]["destination"] == "nav"
    assert views["airloop-run"]["destination"] == "dag_run"
    assert not any(v["href"].startswith(("/", "http")) for v in views.values()), "relative links"


@pytest.fixture(scope="module")
def api_server():
    """Airflow's own API app, plugins mounted as the api-server mounts them."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    return TestClient(create_app())


@pytest.mark.parametrize(
    "path",
    [
        "/airloop/",
        "/airloop/runs/model_training/manual__1",
        "/airloop/evidence/1",
        "/airloop/report/2013-01-20",
    ],
)
def test_every_route_refuses_an_anonymous_or_forged_request(api_server, path: str) -> None:
    client = api_server
    anonymous = client.get(path)
    assert anonymous.status_code == 401, anonymous.text
    assert "airloop" not in anonymous.text
    forged = client.get(path, headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code in (401, 403), forged.text
    cookie = client.get(path, cookies={"_token": "not-a-token"})
    assert cookie.status_code in (401, 403), cookie.text
