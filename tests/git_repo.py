"""A throwaway git repository holding a use case, as a user's repository would (model CI tests)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from airloop.core.paths import PACKAGE_DIR

FLIGHTS_YAML = PACKAGE_DIR / "usecases" / "flights" / "usecase.yaml"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def usecase_repo(root: Path, name: str = "flights") -> Path:
    """``root`` as a git repository with the flights use case at ``usecases/<name>/``, committed
    on ``main``; returns the use case's folder."""
    folder = root / "usecases" / name
    folder.mkdir(parents=True)
    shutil.copy(FLIGHTS_YAML, folder / "usecase.yaml")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "config", "user.email", "ci@example.org")
    git(root, "config", "user.name", "airloop ci test")
    git(root, "config", "commit.gpgsign", "false")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "the use case")
    return folder
