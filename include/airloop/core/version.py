"""airloop's version: one source, ``[project] version`` in pyproject.toml.

Installed, the package's metadata carries it (``importlib.metadata``); a release
(``make release``, ``airloop.core.release``) refuses to tag a version that pyproject.toml and
CHANGELOG.md do not both name. Read when asked, never at import time.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from functools import cache

from airloop.core.paths import checkout_root

DISTRIBUTION = "airloop"
UNKNOWN = "unknown"


@cache
def airloop_version() -> str:
    """The installed distribution's version; from the checkout's pyproject.toml when airloop
    runs from source without being installed; else ``unknown``."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    root = checkout_root()
    if root is None:
        return UNKNOWN
    with (root / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f).get("project", {}).get("version", UNKNOWN))
