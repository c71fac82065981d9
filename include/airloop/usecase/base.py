"""What every part of a use case file shares: strict models, durations, the error type."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from airloop.core.errors import PermanentError

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class UseCaseError(PermanentError, ValueError):
    """A use case file that cannot be used; the message names the file and the field."""


def _parse_duration(value: Any) -> Any:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected a duration like '6h', '7d' or '30m', got {value!r}")
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]
"""A duration written as ``30m``, ``6h``, ``7d`` or ``2w``."""


class Spec(BaseModel):
    """A part of a use case: unknown fields are refused, and nothing changes once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def window_suffix(window: timedelta) -> str:
    """A feature-name suffix for a window: 7d, 6h, 30m."""
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
