"""The release path (issue 35 §2): ``make release`` pushed the image to a registry on
loopback, the local image was removed and pulled back by digest, and the stack the other
tests use runs from that digest. These tests check the registry, the pulled image, and that
every airloop container runs it."""

from __future__ import annotations

import json
import tomllib

import pytest

from tests.conftest import REPO, descendants
from tests.containers.conftest import (
    AIRLOOP_SERVICES,
    TIER_TIMEOUT,
    _run,
    compose,
    settings_for,
)
from tests.containers.release import Registry, Released, inspect_image
from tests.production.sockets import beyond_loopback, listening
from tests.support import get_text

pytestmark = [pytest.mark.containers, pytest.mark.timeout(TIER_TIMEOUT)]


def test_the_registry_answers_on_loopback_only(registry: Registry) -> None:
    """The tier's own docker-registry (in CI it must start: the tier fails naming it)."""
    pids = {registry.process.pid} | descendants(registry.process.pid)
    sockets = listening(pids)
    assert [s.port for s in sockets] == [int(registry.address.rsplit(":", 1)[1])], sockets
    assert not beyond_loopback(sockets), sockets
    catalog = json.loads(get_text(f"http://{registry.address}/v2/_catalog"))
    assert isinstance(catalog.get("repositories"), list), catalog


def test_the_pulled_image_carries_the_version_and_the_commit(
    registry: Registry, released: Released
) -> None:
    """The labels ``make release`` put on the image came back through the registry: the
    version pyproject.toml names and the commit released (this working tree, committed in a
    clone), and the commit in ``AIRLOOP_GIT_COMMIT`` too."""
    with (REPO / "pyproject.toml").open("rb") as f:
        version = tomllib.load(f)["project"]["version"]
    image = inspect_image(released.reference)
    assert image is not None, released.reference
    labels = image["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == version
    assert labels["org.opencontainers.image.revision"] == released.commit
    assert labels["org.opencontainers.image.title"] == "airloop"
    assert f"AIRLOOP_GIT_COMMIT={released.commit}" in image["Config"]["Env"]
    # Known to the engine by its digest only: no tag survived the removal before the pull.
    assert image["RepoTags"] == [] and image["RepoDigests"] == [released.reference], image
    assert json.loads(get_text(f"http://{registry.address}/v2/_catalog")) == {
        "repositories": ["airloop"]
    }
    tags = json.loads(get_text(f"http://{registry.address}/v2/airloop/tags/list"))
    assert tags == {"name": "airloop", "tags": [version]}


def test_every_airloop_container_runs_the_pulled_image(stack, released: Released) -> None:
    """Each service's container was created from the pulled digest, and the serving API
    reports the version and commit the release labelled."""
    for service in AIRLOOP_SERVICES:
        [container] = compose(stack, "ps", "-q", service).stdout.split()
        created = _run("docker", "inspect", "-f", "{{.Config.Image}} {{.Image}}", container)
        assert created.stdout.split() == [released.reference, released.image_id], service
    settings = settings_for(stack)
    health = json.loads(get_text(f"{settings.serving_url}/health"))
    assert health == {
        "status": "alive",
        "version": released.version,
        "git_commit": released.commit,
    }
