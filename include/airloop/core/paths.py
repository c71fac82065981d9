"""Where the package and, in a development install, its source checkout live."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def checkout_root() -> Path | None:
    """The source checkout when the package is installed in editable mode, else None."""
    root = PACKAGE_DIR.parent.parent
    if (root / "pyproject.toml").is_file() and (root / "dags").is_dir():
        return root
    return None
