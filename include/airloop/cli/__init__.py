"""The ``airloop`` command: one entry point per stage, for shells, notebooks and containers.

Commands live in modules by what they act on (``data``, ``model``, ``serve``, ``monitor``,
``stack``, ``tools``, and ``stage``: one DAG stage as a container runs it) and register on one app; errors no retry can fix print their message,
not a traceback.
"""

from __future__ import annotations

import logging
import signal
import sys
import warnings

import typer

from airloop.cli import (  # noqa: F401  (register)
    data,
    lineage,
    model,
    monitor,
    serve,
    stack,
    stage,
    tools,
)
from airloop.cli.common import app
from airloop.core.errors import PermanentError
from airloop.usecase import UseCaseError

__all__ = ["app", "main"]


def _stop_on_sigterm(signum: int, frame: object) -> None:
    # Like Ctrl-C: commands that started servers stop them on the way out.
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: logging from the settings, clean errors, SIGTERM ends commands cleanly."""
    from airloop.settings import SettingsError, get_settings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        level = get_settings().log_level
    except SettingsError:
        level = "WARNING"  # the command reports the settings' problem itself
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        app()
    except (UseCaseError, SettingsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except PermanentError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
