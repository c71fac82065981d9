"""Strict JSON for what airloop hands on: XCom values, monitoring records, the feedback ledger.

Metrics can be NaN (one class in a slice) and drift scores infinite (a constant reference that
moved); Airflow's API and ``jq`` refuse both, so they are written as null.
"""

from __future__ import annotations

import math
from typing import Any


def json_safe(value: Any) -> Any:
    """NaN and infinity as None, recursively through dicts, lists and tuples."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
