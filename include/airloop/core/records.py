"""Small typed records that stages hand on, and the one serialiser at the XCom boundary.

A stage returns a :class:`Record`; Airflow carries it between tasks as strict JSON
(:func:`to_json`) and the next task reads it back with ``Record.from_dict``. Metrics can be
NaN (one class in a slice) and drift scores infinite (a constant reference that moved); they
become ``None`` when a record is built, so a run under Airflow and a run from the CLI see the
same values.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict


def finite_or_none(value: Any) -> Any:
    """NaN and infinity as None; anything else unchanged (numpy scalars as Python numbers)."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


Number = Annotated[float | None, BeforeValidator(finite_or_none)]
"""A metric or score: a finite float, or None where it could not be computed."""


class Record(BaseModel):
    """What a stage returns: ids, URIs and small figures, never data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON: what goes to XCom, to files and to ``--json`` output."""
        return json_safe(self.model_dump(mode="json"))

    @classmethod
    def from_dict(cls, value: Any) -> Self:
        """The record a task receives from XCom (or a JSON file or text), validated."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str | bytes):
            return cls.model_validate_json(value)
        return cls.model_validate(value)


def json_safe(value: Any) -> Any:
    """NaN and infinity as None and numpy scalars as Python values, through dicts and lists."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return finite_or_none(value)


def json_column(values: Any) -> list[Any]:
    """:func:`json_safe` of each value of a column, a numeric numpy array converted at once:
    serving logs every input of every prediction, and per value this was a tenth of a batch's
    time."""
    import numpy as np

    if isinstance(values, np.ndarray) and values.dtype.kind in "iubf":
        out = values.tolist()
        if values.dtype.kind == "f":
            for index in np.flatnonzero(~np.isfinite(values)):
                out[index] = None
        return out
    return [finite_or_none(v) for v in values]


def plain(value: Any) -> Any:
    """A value as JSON can hold it: numbers and text as they are, anything else as text."""
    value = json_safe(value)
    if isinstance(value, dict | list) or value is None:
        return value
    if isinstance(value, int | float | str | bool):
        return value
    return str(value)


def to_json(value: Any) -> Any:
    """A stage's result as strict JSON: records as dicts, lists of them, plain values as is."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return json_safe(value)


RESULT_LINE = "AIRLOOP_RESULT "
"""How ``airloop stage`` prints a stage's record, so the task that ran it in a container finds it."""
