"""What ``make release VERSION=x.y.z`` checks before it builds, pushes and tags anything.

A release is a commit everyone can name: the tree is clean (what is built is what is
committed), the version is new (no tag ``vX.Y.Z`` yet) and later than the last release, and
the two places that say it agree: pyproject.toml's ``[project] version`` (the one source
``airloop --version``, ``/health`` and every MLflow run read) and the top entry of
CHANGELOG.md. Each refusal says what is wrong and what to do.

    python -m airloop.core.release check 0.2.0 [--root PATH]
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

from airloop.core.git import GitError, git

VERSION = re.compile(r"\d+\.\d+\.\d+")
# A CHANGELOG entry's heading: "## [0.2.0] - 2026-12-07", "## 0.2.0", "## v0.2.0 (...)".
ENTRY = re.compile(r"^##\s+\[?v?(?P<name>[^\]\s]+)\]?")


class ReleaseRefused(Exception):
    """The release cannot go ahead: the message says why and what to do."""


def tag_of(version: str) -> str:
    """The git tag a release is: ``v`` and the version."""
    return f"v{version}"


def parse_version(text: str) -> tuple[int, ...]:
    """``x.y.z`` as numbers, to compare; a :class:`ReleaseRefused` for anything else."""
    if not VERSION.fullmatch(text):
        raise ReleaseRefused(f"version {text!r} is not x.y.z (three numbers, e.g. 0.2.0)")
    return tuple(int(part) for part in text.split("."))


def _git(root: Path, *args: str) -> str:
    try:
        return git(root, *args)
    except GitError as exc:
        raise ReleaseRefused(str(exc)) from None


def released_versions(root: Path) -> list[tuple[int, ...]]:
    """The versions of the ``vX.Y.Z`` tags, in no particular order (other tags ignored)."""
    names = _git(root, "tag", "--list", "v*").split()
    return [parse_version(n[1:]) for n in names if VERSION.fullmatch(n[1:])]


def changelog_top(path: Path) -> str | None:
    """The name of CHANGELOG.md's first entry (its first ``## `` heading), or None."""
    for line in path.read_text(encoding="utf-8").splitlines():
        found = ENTRY.match(line)
        if found:
            return found.group("name")
    return None


def project_version(path: Path) -> str:
    """``[project] version`` of a pyproject.toml."""
    with path.open("rb") as f:
        return str(tomllib.load(f).get("project", {}).get("version", ""))


def locked_version(path: Path) -> str | None:
    """The version uv.lock records for airloop itself, or None without a lock file."""
    if not path.is_file():
        return None
    with path.open("rb") as f:
        packages = tomllib.load(f).get("package", [])
    return next((str(p.get("version")) for p in packages if p.get("name") == "airloop"), None)


def check_release(version: str, root: Path) -> str:
    """Every check, in the order a person fixes them; the commit to release when all pass."""
    wanted = parse_version(version)
    changes = _git(root, "status", "--porcelain", "--untracked-files=normal")
    if changes.strip():
        listed = "\n".join(f"  {line}" for line in changes.splitlines()[:10])
        raise ReleaseRefused(
            "the working tree has changes: a release builds exactly what is committed.\n"
            f"{listed}\ncommit them (or remove them) and run make release again"
        )
    tag = tag_of(version)
    if _git(root, "tag", "--list", tag).strip():
        raise ReleaseRefused(
            f"the tag {tag} exists already: {version} was released; choose the next version"
        )
    earlier = released_versions(root)
    if earlier and wanted <= max(earlier):
        last = ".".join(str(n) for n in max(earlier))
        raise ReleaseRefused(f"{version} is not later than the last release, {last}")
    pyproject = project_version(root / "pyproject.toml")
    if pyproject != version:
        raise ReleaseRefused(
            f"pyproject.toml's [project] version is {pyproject!r}, not {version!r}: set it"
            " (then `make lock`), commit, and run make release again"
        )
    locked = locked_version(root / "uv.lock")
    if locked is not None and locked != version:
        raise ReleaseRefused(
            f"uv.lock records airloop {locked!r}, not {version!r}: run `make lock`, commit,"
            " and run make release again"
        )
    changelog = root / "CHANGELOG.md"
    if not changelog.is_file():
        raise ReleaseRefused(f"no CHANGELOG.md in {root}: a release needs its entry on top")
    top = changelog_top(changelog)
    if top != version:
        raise ReleaseRefused(
            f"CHANGELOG.md's top entry is {top!r}, not {version!r}: add `## [{version}] - "
            "<date>` above the others with what changed (or rename [Unreleased]), and commit"
        )
    return _git(root, "rev-parse", "HEAD").strip()


def main(argv: list[str] | None = None) -> int:
    """``check VERSION``: exit 0 and the commit on stdout, or 1 and the refusal on stderr."""
    parser = argparse.ArgumentParser(prog="python -m airloop.core.release")
    parser.add_argument("command", choices=["check"])
    parser.add_argument("version")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the checkout")
    args = parser.parse_args(argv)
    try:
        commit = check_release(args.version, args.root)
    except ReleaseRefused as exc:
        sys.stderr.write(f"make release: refused: {exc}\n")
        return 1
    sys.stdout.write(f"{commit}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
