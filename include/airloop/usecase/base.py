"""What every part of a use case file shares: strict models, durations, the error type."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from airloop.core.errors import PermanentError
from airloop.core.periods import Span


class UseCaseError(PermanentError, ValueError):
    """A use case file that cannot be used; the message names the file and the field."""


Duration = Span
"""A duration written as ``30m``, ``6h``, ``7d``, ``2w`` or ``3mo`` (calendar months)."""


_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class Tolerance(BaseModel):
    """How much worse a metric may get: in the metric's units (``0.02``), or as a share of
    the reference value (``"5%"``: for an error in dollars, 5 % of the reference error)."""

    model_config = ConfigDict(frozen=True)

    value: float
    relative: bool = False

    def allowed(self, reference: float | None) -> float:
        """The margin in the metric's units, for this reference value."""
        if not self.relative:
            return self.value
        return abs(reference) * self.value if reference is not None else 0.0

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


def _parse_tolerance(value: Any) -> Any:
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if not match:
            raise ValueError(f"expected a number or a percentage like '5%', got {value!r}")
        return Tolerance(value=float(match.group(1)) / 100, relative=True)
    if isinstance(value, bool) or not isinstance(value, (int, float, Tolerance, dict)):
        raise ValueError(f"expected a number or a percentage like '5%', got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a tolerance cannot be negative, got {value}")
        return Tolerance(value=float(value))
    return value


ToleranceSpec = Annotated[Tolerance, BeforeValidator(_parse_tolerance)]
"""A tolerance written as a number in the metric's units, or as ``"5%"`` of the reference."""


class Spec(BaseModel):
    """A part of a use case: unknown fields are refused, and nothing changes once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def window_suffix(window: Span | timedelta) -> str:
    """A feature-name suffix for a window: 3mo, 7d, 6h, 30m."""
    return Span.parse(window).suffix()
