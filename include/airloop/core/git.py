"""git, run by its full path with argument lists: the one way airloop asks a checkout anything
(``make release``'s checks, ``airloop ci``'s changed files and the base's use case)."""

from __future__ import annotations

import shutil
import subprocess  # nosec B404 # git, by its full path, with argument lists
from pathlib import Path


class GitError(Exception):
    """git is missing or refused a command: the message says which and why."""


def git(root: Path, *args: str) -> str:
    """git's standard output for ``args`` in the checkout ``root``, as text; a
    :class:`GitError` when git is missing or the command fails (with git's own message)."""
    return git_bytes(root, *args).decode()


def git_bytes(root: Path, *args: str) -> bytes:
    """Like :func:`git`, for output that is not text (a file's contents at a commit)."""
    found = shutil.which("git")
    if found is None:
        raise GitError("git is not installed: this needs a git checkout and git on the PATH")
    done = subprocess.run(  # nosec B603 # git's own arguments, no shell
        [found, "-C", str(root), *args], capture_output=True, check=False
    )
    if done.returncode != 0:
        raise GitError(
            f"git {' '.join(args)} failed in {root}: {done.stderr.decode(errors='replace').strip()}"
        )
    return done.stdout


def toplevel(path: Path) -> Path | None:
    """The top of the git checkout holding ``path``; None outside one (or without git)."""
    try:
        return Path(git(path, "rev-parse", "--show-toplevel").strip())
    except GitError:
        return None
