"""What changed against the base ref, sorted by what it can affect, and the base's use case."""

from __future__ import annotations

import shutil
from pathlib import Path

from airloop.core.errors import PermanentError
from airloop.core.git import GitError, git, git_bytes, toplevel
from airloop.core.records import Record

ENVIRONMENT_FILES = ("uv.lock", "pyproject.toml")
ENGINE_FOLDERS = ("include/airloop/", "dags/", "plugins/", "feature_repo/", "docker/")


class CiSetupError(PermanentError, ValueError):
    """``airloop ci`` cannot start: no checkout, an unknown base ref, a use case outside it."""


class Changes(Record):
    """The files that differ from the base (committed, staged, unstaged or new), by kind."""

    base: str
    merge_base: str
    usecase: list[str] = []  # the use case's own files (its YAML and data declarations)
    transforms: list[str] = []  # Python files in the use case's folder
    engine: list[str] = []  # airloop's code, DAGs, plugins, images
    environment: list[str] = []  # the lock file and the project's dependencies
    other: list[str] = []  # docs, tests, anything that cannot change the model

    @property
    def affects_model(self) -> bool:
        """Whether anything changed that can change the trained model or how it serves."""
        return bool(self.usecase or self.transforms or self.engine or self.environment)


def checkout_root(path: Path) -> Path:
    """The top of the git checkout holding ``path``."""
    root = toplevel(path)
    if root is None:
        raise CiSetupError(
            f"{path} is not in a git checkout: airloop ci compares a change with its base"
            " ref, so run it in the repository that holds the use case"
        )
    return root


def resolve_base(root: Path, base: str) -> str:
    """The commit the change forked from: the merge base of ``base`` and HEAD."""
    try:
        git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    except GitError:
        raise CiSetupError(
            f"the base ref {base!r} is not in this checkout: fetch it (e.g. `git fetch origin "
            f"{base}`, or check out with fetch-depth: 0 in GitHub Actions) or pass --base"
        ) from None
    try:
        return git(root, "merge-base", base, "HEAD").strip()
    except GitError:
        return git(root, "rev-parse", base).strip()


def relative_folder(root: Path, folder: Path) -> str | None:
    """The use case's folder relative to the checkout, or None when it lies outside it."""
    try:
        return folder.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def changed_files(root: Path, base: str, usecase_folder: str | None) -> Changes:
    """Every file that differs from the merge base, working tree included, sorted by kind."""
    merge_base = resolve_base(root, base)
    names = set(git(root, "diff", "--name-only", merge_base).split("\n"))
    names |= set(git(root, "ls-files", "--others", "--exclude-standard").split("\n"))
    kinds: dict[str, list[str]] = {
        "usecase": [],
        "transforms": [],
        "engine": [],
        "environment": [],
        "other": [],
    }
    prefix = f"{usecase_folder}/" if usecase_folder else None
    for name in sorted(n for n in names if n):
        if prefix and name.startswith(prefix):
            kinds["transforms" if name.endswith(".py") else "usecase"].append(name)
        elif name in ENVIRONMENT_FILES:
            kinds["environment"].append(name)
        elif name.startswith(ENGINE_FOLDERS):
            kinds["engine"].append(name)
        else:
            kinds["other"].append(name)
    return Changes(base=base, merge_base=merge_base, **kinds)


def base_usecase_folder(root: Path, merge_base: str, folder: str, target: Path) -> Path | None:
    """The use case's folder as it was at the merge base, written to ``target``.

    Files git ignores there (a data file the replay reads, kept out of the repository) are
    linked from the checkout: the base and the candidate replay the same rows. None when
    the use case did not exist at the base (a new use case has no champion to beat).
    """
    listed = git(root, "ls-tree", "-r", "--name-only", merge_base, "--", folder).split("\n")
    tracked = [name for name in listed if name]
    if not any(name.endswith("usecase.yaml") for name in tracked):
        return None
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in tracked:
        path = target / Path(name).relative_to(folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(git_bytes(root, "show", f"{merge_base}:{name}"))
    ignored = git(
        root, "ls-files", "--others", "--ignored", "--exclude-standard", "--", folder
    ).split("\n")
    for name in (n for n in ignored if n and "__pycache__" not in n):
        path = target / Path(name).relative_to(folder)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to((root / name).resolve())
    return target
