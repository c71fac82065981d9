"""Reading times as sources write them: ISO 8601 or a strftime form, whole-number dates,
weeks with no day, times of day."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


WEEK_DIRECTIVES = ("%V", "%W", "%U")
WEEKDAY_DIRECTIVES = ("%u", "%w", "%a", "%A")


def parse_times(values: pd.Series, fmt: str | None = None) -> pd.Series:
    """Times as UTC datetimes, read in the strftime form ``fmt`` (None: ISO 8601); NaT where
    a value does not parse. Naive times are taken as UTC; datetimes pass as they are.

    Dates written as whole numbers (``20130301``, read as numbers) are read as their digits,
    and a week with no day (``1991 W06``, ``%G W%V``) as its first day (Monday; Sunday for
    ``%U``).
    """
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        text = values.astype("Float64").round().astype("Int64").astype("string")
    else:
        text = values.astype("string").str.strip()
    if fmt is not None:
        text = text.str.replace(r"^(\d+)\.0$", r"\1", regex=True)  # 20130301.0 from a float
        if any(d in fmt for d in WEEK_DIRECTIVES) and not any(d in fmt for d in WEEKDAY_DIRECTIVES):
            first = "0" if "%U" in fmt else "1"
            text = text + " " + first
            fmt = f"{fmt} {'%u' if '%V' in fmt else '%w'}"
    return pd.to_datetime(text, utc=True, errors="coerce", format=fmt or "ISO8601")


def check_time_format(fmt: str) -> None:
    """A ValueError naming the problem when ``fmt`` is not a form times can be read in."""
    import pandas as pd

    try:
        parse_times(pd.Series(["2000-01-01"]), fmt)
    except ValueError as exc:
        raise ValueError(f"timestamp format {fmt!r}: {exc}") from None


def clock_times(values: pd.Series) -> pd.Series:
    """Times of day as durations since midnight: ``10:00``, ``9:30:15``, ``24:00`` (the end of
    the day); missing where the text is not a time of day."""
    import pandas as pd

    text = values.astype("string").str.strip()
    parts = text.str.extract(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$").astype("float64")
    valid = (parts[0] <= 24) & (parts[1] < 60) & (parts[2].fillna(0) < 60)
    seconds = parts[0] * 3600 + parts[1] * 60 + parts[2].fillna(0)
    return pd.to_timedelta(seconds.where(valid), unit="s")
