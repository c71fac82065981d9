"""Where code and environment came from: git commit and lock file digest (P3, P4).

From the source checkout when there is one; in the image, from what the build recorded
(``AIRLOOP_GIT_COMMIT``, and the lock file it installed from, ``AIRLOOP_LOCK_FILE``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess  # nosec B404 # git, by its full path, with argument lists
from functools import cache
from pathlib import Path

from airloop.core.paths import PACKAGE_DIR, checkout_root


@cache
def git_commit() -> str:
    """The checkout's commit (with ``+dirty`` if it has local changes), or ``unknown``."""
    root = checkout_root()
    if root is None:
        return os.environ.get("AIRLOOP_GIT_COMMIT") or "unknown"
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        head = subprocess.run(  # nosec B603 # git's own arguments, no shell
            [git, "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        changes = subprocess.run(  # nosec B603 # git's own arguments, no shell
            [git, "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    commit, dirty = head.stdout.strip(), changes.stdout.strip()
    return f"{commit}+dirty" if dirty else commit


@cache
def lock_hash() -> str:
    """SHA-256 of ``uv.lock``: the exact environment the code ran in."""
    root = checkout_root() or PACKAGE_DIR
    lock = Path(os.environ.get("AIRLOOP_LOCK_FILE") or root / "uv.lock")
    if not lock.is_file():
        return "unknown"
    return hashlib.sha256(lock.read_bytes()).hexdigest()
