"""Fail fast while a dependency is known down: the serving API's guard on its online store.

A Redis that hangs (accepting connections, never answering) costs each lookup the client's
timeouts and retries, 15 to 20 s with redis-py's defaults, which Feast does not let us bound.
After one lookup fails, the next ones within :data:`RETRY_SECONDS` fail at once with the
reason, and then a single request tries the store again while the others keep failing fast;
its success closes the breaker. Nothing here waits: a caller either calls the store or is
told at once why not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
RETRY_SECONDS = 5.0


class BreakerOpen(Exception):
    """The dependency failed ``age`` seconds ago with ``error``; it is not called now."""

    def __init__(self, error: str, age: float, retry_seconds: float) -> None:
        super().__init__(f"{error} ({age:.0f} s ago; tried again {retry_seconds:.0f} s after)")
        self.error = error
        self.age = age


@dataclass
class Breaker:
    """Calls through to a dependency, or refuses at once while it is known down."""

    retry_seconds: float = RETRY_SECONDS
    clock: Callable[[], float] = time.monotonic
    # What says the dependency is down (its client's connection and timeout errors); any other
    # failure (a value it refused, say) is the caller's and leaves the breaker closed.
    trips: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    _failed_at: float | None = None
    _error: str = ""
    _probing: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def is_open(self) -> bool:
        """Whether the last call failed (and no call has succeeded since)."""
        return self._failed_at is not None

    def call(self, function: Callable[[], T]) -> T:
        """``function()``, unless the dependency failed less than ``retry_seconds`` ago or
        another caller is trying it again: then :class:`BreakerOpen` at once."""
        with self._lock:
            if self._failed_at is not None:
                age = self.clock() - self._failed_at
                if age < self.retry_seconds or self._probing:
                    raise BreakerOpen(self._error, age, self.retry_seconds)
                self._probing = True  # this caller tries it; the others are refused meanwhile
        try:
            result = function()
        except self.trips as exc:
            with self._lock:
                self._failed_at, self._probing = self.clock(), False
                self._error = f"{type(exc).__name__}: {exc}"
            raise
        except BaseException:
            with self._lock:
                self._probing = False  # not an outage: the breaker stays as it was
            raise
        with self._lock:
            self._failed_at, self._probing, self._error = None, False, ""
        return result
