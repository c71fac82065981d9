"""The release path the container tier runs its stack from (issue 35 §2).

Debian's ``docker-registry`` on a free port of 127.0.0.1 (its own config file, storage in a
folder of its own); ``make release`` in a clone of this working tree, pushing there; the local
image removed and pulled back by digest. The stack then runs from
``127.0.0.1:PORT/airloop@sha256:...``, so every test of the tier proves the image that went
through the registry, as a deployment gets it.

``make release`` refuses a tree with changes and a version already tagged, so it runs in a
clone made without tags whose tree is this working tree: the changes and new files that
``make image`` would build are committed there (in the clone only), and the version released
is the one ``pyproject.toml`` and CHANGELOG.md's top entry name.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airloop.core.git import git
from tests.conftest import REPO
from tests.reliability.servers import free_port
from tests.support import wait_for

# The base `make test-docker` builds from Debian's packages (no registry can be pulled from
# here); where one can, AIRLOOP_BASE_IMAGE=python:3.11-slim-bookworm (the Dockerfile's default).
LOCAL_BASE_IMAGE = "airloop-base:bookworm"
BASE_IMAGE = os.environ.get("AIRLOOP_BASE_IMAGE", LOCAL_BASE_IMAGE)
IDENTITY = ("-c", "user.name=airloop tests", "-c", "user.email=tests@airloop.invalid")
IDENTITY_ENV = {
    "GIT_AUTHOR_NAME": "airloop tests",
    "GIT_AUTHOR_EMAIL": "tests@airloop.invalid",
    "GIT_COMMITTER_NAME": "airloop tests",
    "GIT_COMMITTER_EMAIL": "tests@airloop.invalid",
}

# Plain HTTP on loopback only, no authentication, deletes allowed; quiet unless wrong.
REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
  fields:
    service: airloop-test-registry
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


class RegistryUnavailable(Exception):
    """The registry could not be started here: the message says why."""


@dataclass(frozen=True)
class Registry:
    """A running ``docker-registry``: its address (``127.0.0.1:PORT``) and process."""

    address: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass(frozen=True)
class Released:
    """An image released by ``make release`` and pulled back from the registry by digest."""

    version: str
    commit: str
    reference: str  # REGISTRY/airloop@sha256:...
    image_id: str
    seconds: dict[str, float]  # each step's wall time, for the tier's report

    def __str__(self) -> str:
        steps = ", ".join(f"{step} {took:.0f} s" for step, took in self.seconds.items())
        return f"released airloop {self.version} ({self.commit[:12]}) as {self.reference}: {steps}"


def docker(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def insecure_loopback_refused() -> str | None:
    """Why the engine would refuse plain HTTP from a registry on 127.0.0.1, or None (Docker
    allows 127.0.0.0/8 by default: ``RegistryConfig.InsecureRegistryCIDRs``)."""
    info = docker("info", "--format", "{{json .RegistryConfig.InsecureRegistryCIDRs}}")
    if info.returncode != 0:
        return f"docker info failed: {info.stderr.strip()[-300:]}"
    cidrs = json.loads(info.stdout) or []
    loopback = ipaddress.ip_address("127.0.0.1")
    if any(loopback in ipaddress.ip_network(c) for c in cidrs):
        return None
    return f"the engine's insecure registries {cidrs} leave out 127.0.0.1"


def start_registry(folder: Path) -> Registry:
    """Debian's ``docker-registry`` with a config file of its own, answering ``/v2/`` on a
    free port of 127.0.0.1; a :class:`RegistryUnavailable` naming why it cannot."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RegistryUnavailable("not installed (make docker-engine installs it from Debian)")
    port = free_port()
    config = folder / "config.yml"
    config.write_text(REGISTRY_CONFIG.format(root=folder / "storage", port=port))
    log = folder / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "serve", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, stopped as one
        )
    url = f"http://127.0.0.1:{port}/v2/"

    def answers() -> bool:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:]
            raise RegistryUnavailable(f"exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # nosec B310 # loopback
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_for(answers, f"docker-registry answering {url}", timeout=60, log=log)
    except (AssertionError, RegistryUnavailable) as exc:
        process.kill()
        process.wait(timeout=30)
        raise RegistryUnavailable(str(exc)) from None
    return Registry(f"127.0.0.1:{port}", process, log)


def clone_working_tree(into: Path) -> str:
    """A clone of this repository without its tags whose tree is this working tree (its
    changes and new, not ignored files committed in the clone); the clone's commit."""
    git(REPO.parent, "clone", "--quiet", "--no-tags", str(REPO), str(into))
    changed = git(REPO, "diff", "--name-only", "-z", "HEAD").split("\0")
    new = git(REPO, "ls-files", "-z", "--others", "--exclude-standard").split("\0")
    for name in filter(None, {*changed, *new}):
        source, target = REPO / name, into / name
        if source.is_symlink() or source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
        else:
            target.unlink(missing_ok=True)
    git(into, "add", "--all")
    if git(into, "status", "--porcelain").strip():
        message = "The working tree of the container tier's run (a throwaway clone)"
        git(into, *IDENTITY, "commit", "--quiet", "--no-verify", "-m", message)
    return git(into, "rev-parse", "HEAD").strip()


def project_version(root: Path) -> str:
    with (root / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def make_release(clone: Path, version: str, registry: str) -> subprocess.CompletedProcess[str]:
    """``make release VERSION=... REGISTRY=...`` in the clone, with this environment's .venv
    (``-o`` its stamp: the clone's fresh files would otherwise make it sync a .venv there)."""
    venv = Path(sys.prefix)
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(clone),
            "-o",
            f"{venv}/.synced",
            "release",
            f"VERSION={version}",
            f"REGISTRY={registry}",
            f"VENV={venv}",
            f"BASE_IMAGE={BASE_IMAGE}",
        ],
        capture_output=True,
        text=True,
        env={**without_git_variables(), **IDENTITY_ENV},
        timeout=3600,
    )


def without_git_variables() -> dict[str, str]:
    """This environment without ``GIT_*`` (a hook's GIT_DIR or GIT_INDEX_FILE would point
    the release's git at this checkout instead of the clone)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def inspect_image(reference: str) -> dict[str, Any] | None:
    """``docker image inspect`` of one image, or None when the engine has no such image."""
    found = docker("image", "inspect", reference, timeout=60)
    if found.returncode != 0:
        return None
    [image] = json.loads(found.stdout)
    return dict(image)


def push_digest(output: str) -> str | None:
    """The manifest digest ``docker push`` reported (``TAG: digest: sha256:... size: N``)."""
    found = re.search(r"digest: (sha256:[0-9a-f]{64})", output)
    return found.group(1) if found else None


def remove_local(image: dict[str, Any]) -> None:
    """Every local tag of the image, so that it is gone from the engine and a pull must fetch
    its manifest and configuration from the registry. Its build's intermediate layers stay
    (``--no-prune``): they are the builder's cache, so the next run of the tier does not
    install the unchanged dependencies again."""
    tags = list(image.get("RepoTags") or [])
    removed = docker("rmi", "--no-prune", *tags, timeout=300) if tags else None
    if inspect_image(image["Id"]) is not None:
        said = removed.stderr if removed else "it has no tags"
        raise AssertionError(f"the image {image['Id']} is still on the engine: {said}")


def release_through(registry: str, clone: Path) -> Released:
    """``make release`` in a clone, pushing to the registry; the local image removed and
    pulled back by the digest the push reported. Fails with the step's own output."""
    started = time.monotonic()
    commit = clone_working_tree(clone)
    version = project_version(clone)
    made = make_release(clone, version, registry)
    seconds = {"make release (build, push)": time.monotonic() - started}
    said = f"{made.stdout[-4000:]}\n{made.stderr[-6000:]}"
    if made.returncode != 0:
        raise AssertionError(f"make release {version} failed:\n{said}")
    pushed = inspect_image(f"{registry}/airloop:{version}")
    assert pushed is not None, f"make release left no {registry}/airloop:{version}:\n{said}"
    digest = push_digest(made.stdout + made.stderr)
    assert digest is not None, f"docker push reported no digest:\n{said}"
    reference = f"{registry}/airloop@{digest}"
    assert reference in (pushed.get("RepoDigests") or []), (reference, pushed.get("RepoDigests"))
    remove_local(pushed)
    started = time.monotonic()
    pulled = docker("pull", reference, timeout=1200)
    assert pulled.returncode == 0, f"docker pull {reference}:\n{pulled.stdout}{pulled.stderr}"
    seconds["docker pull"] = time.monotonic() - started
    image = inspect_image(reference)
    assert image is not None and image["Id"] == pushed["Id"], "the pull gave another image"
    return Released(version, commit, reference, image["Id"], seconds)
