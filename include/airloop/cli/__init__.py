"""The ``airloop`` command: one entry point per stage, for shells, notebooks and containers.

Commands live in modules by what they act on (``init``: a use case from a data file; ``data``,
``model``, ``serve``, ``monitor``, ``stack``, ``tools``, and ``stage``: one DAG stage as a
container runs it) and register on one app; errors no retry can fix print their message, not a
traceback.
"""

from __future__ import annotations

import logging
import signal
import sys
import warnings

import typer

from airloop.cli import (  # noqa: F401  (register)
    ci,
    data,
    init,
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
from airloop.core.http import HttpError
from airloop.core.polling import WaitTimeout
from airloop.runtime.airflow_cli import AirflowError, ComponentDied
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
    debug = "--debug" in sys.argv[1:]
    if debug:
        sys.argv.remove("--debug")
    sys.argv[1:] = usecase_first(sys.argv[1:])
    try:
        app()
    except (UseCaseError, SettingsError) as exc:
        _fail(exc, 2, debug)
    except PermanentError as exc:
        _fail(exc, 1, debug)
    except (AirflowError, HttpError, WaitTimeout, ConnectionError) as exc:
        _fail(exc, 1, debug, next_step(exc))


def usecase_first(args: list[str]) -> list[str]:
    """``--usecase X`` moved before the command, so ``airloop demo --usecase X`` works too
    (the option belongs to the ``airloop`` command itself)."""
    for i, arg in enumerate(args):
        if arg == "--usecase" and i + 1 < len(args):
            return [arg, args[i + 1], *args[:i], *args[i + 2 :]]
        if arg.startswith("--usecase="):
            return [arg, *args[:i], *args[i + 1 :]]
    return args


NEXT_STEP_SERVICE = "is the stack up? `airloop up` starts it; `airloop doctor` checks each part"
NEXT_STEP_COMPONENT = (
    "the stack was up and that component stopped past its restarts: its log above says why;"
    " `airloop up` starts the stack again, `airloop doctor` checks each part"
)
NEXT_STEP_REFUSED = (
    "the server is up and refused the request: the message above is its reason (the status"
    " and its own words)"
)


def next_step(exc: BaseException) -> str | None:
    """What to do after a service's error. A server that answered with a 4xx is up: its
    refusal is the news, and asking whether the stack is up would mislead; so would it after
    a component of the stack this command ran died past its restarts. The stack may be down
    on anything else (no connection, a timeout, a 5xx)."""
    if isinstance(exc, ComponentDied):
        return NEXT_STEP_COMPONENT
    status = getattr(exc, "status", None)
    if isinstance(status, int) and 400 <= status < 500:
        return NEXT_STEP_REFUSED
    return NEXT_STEP_SERVICE


def _fail(exc: BaseException, code: int, debug: bool, next_step: str | None = None) -> None:
    """An expected failure: its message and what to do, no traceback (``--debug`` shows it)."""
    if debug:
        raise exc
    typer.echo(f"error: {exc}", err=True)
    if next_step:
        typer.echo(f"next:  {next_step}", err=True)
    typer.echo("(run again with --debug for the traceback)", err=True)
    sys.exit(code)
