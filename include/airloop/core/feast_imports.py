"""Feast without typeguard's run-time instrumentation.

Feast decorates its feature views, data sources and feature services with typeguard's
``@typechecked``, which recompiles every decorated function from its source when the module
is imported and checks every argument on every call. Importing Feast took 10 s of CPU instead
of 2.8 s, in every process that touches it (each CLI command, the scheduler's preload, the
serving API, every test session). The decorator is a no-op under ``python -O``, as typeguard
documents; this makes it one for Feast in airloop's processes, whose arguments to Feast are
built from use cases validated when they load (and mypy checks those calls). Feast is the
only one of airloop's dependencies that uses the decorator; ``typeguard.check_type`` and the
rest of typeguard are untouched.
Another project did the same for the same reason: featurebyte/featurebyte#2363.
"""

from __future__ import annotations

import sys
from typing import Any


def _as_written(target: Any = None, **_: Any) -> Any:
    """``typechecked`` under ``python -O``: the target itself (as ``@typechecked`` or as
    ``@typechecked(...)``)."""
    if target is None:
        return _as_written
    return target


def without_feast_type_instrumentation() -> None:
    """Before Feast's first import, give it a ``typechecked`` that leaves functions as written.
    Once Feast is imported it is too late, and nothing is changed."""
    if any(name == "feast" or name.startswith("feast.") for name in sys.modules):
        return
    try:
        import typeguard
    except ImportError:  # a Feast without typeguard has nothing to undo
        return
    typeguard.typechecked = _as_written
