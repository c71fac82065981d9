"""Waiting for something outside the process: one loop, with a deadline and a reason to give up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """What was awaited did not happen in time; the message says what and how long."""


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 1.0,
    on_tick: Callable[[], None] | None = None,
    progress: Callable[[], object] | None = None,
) -> T:
    """Call ``check`` until it returns something other than None (or False), and return that.

    ``on_tick`` runs before each check (e.g. to stop early when a supervised process died).
    With ``progress``, the timeout counts from the last time its value changed: a long
    wait that keeps moving is not cut off, a stalled one is.
    """
    deadline = time.monotonic() + timeout
    seen = progress() if progress else None
    while True:
        if on_tick is not None:
            on_tick()
        result = check()
        if result is not None and result is not False:
            return result
        if progress is not None:
            now = progress()
            if now != seen:
                seen, deadline = now, time.monotonic() + timeout
        if time.monotonic() >= deadline:
            stalled = "without progress " if progress else ""
            raise WaitTimeout(f"{what}: nothing after {timeout:.0f}s {stalled}of waiting")
        time.sleep(interval)
