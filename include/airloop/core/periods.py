"""Spans of time that know calendar months, and the cadence a use case's intervals follow.

A ``timedelta`` cannot say "one month": 1 February plus 30 days is 3 March. A :class:`Span`
holds whole calendar months and a fixed part, and adds to a datetime or a pandas Timestamp
the way people count (``2003-03-31 - 1mo`` is ``2003-02-28``). A :class:`Cadence` is the
rhythm of a use case's data intervals (hourly, daily, weekly, monthly or any cron), so the
CLI, the replay and the DAGs all cut time the same way Airflow's timetable does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, overload

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

_SPAN = re.compile(r"^\s*(\d+)\s*(mo|[smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AVERAGE_MONTH = timedelta(days=365.2425 / 12)

T = TypeVar("T", datetime, date)
Interval = tuple[datetime, datetime]
"""A data interval [start, end), in UTC."""


@dataclass(frozen=True, eq=False)
class Span:
    """A length of time: whole calendar ``months`` plus a fixed ``delta``.

    Without months it equals the timedelta of the same length.
    """

    months: int = 0
    delta: timedelta = timedelta(0)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, timedelta):
            return not self.months and self.delta == other
        if isinstance(other, Span):
            return (self.months, self.delta) == (other.months, other.delta)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.delta) if not self.months else hash((self.months, self.delta))

    @classmethod
    def parse(cls, value: Any) -> Span:
        """``30m``, ``6h``, ``7d``, ``2w``, ``3mo``; a timedelta; or a Span."""
        if isinstance(value, Span):
            return value
        if isinstance(value, timedelta):
            return cls(delta=value)
        if isinstance(value, str):
            match = _SPAN.match(value)
            if match:
                count, unit = int(match.group(1)), match.group(2)
                if unit == "mo":
                    return cls(months=count)
                return cls(delta=timedelta(**{_UNITS[unit]: count}))
        raise ValueError(
            f"expected a duration like '30m', '6h', '7d', '2w' or '3mo', got {value!r}"
        )

    @classmethod
    def of(cls, **parts: int) -> Span:
        """``Span.of(days=28)``, ``Span.of(months=12)``: a literal in code."""
        months = parts.pop("months", 0)
        return cls(months=months, delta=timedelta(**parts))

    # -- arithmetic with points in time ---------------------------------------------------------

    def after(self, point: Any) -> Any:
        """``point`` moved forward by this span (datetime, date, Timestamp or Series)."""
        return self._shift(point, 1)

    def before(self, point: Any) -> Any:
        """``point`` moved back by this span."""
        return self._shift(point, -1)

    def _shift(self, point: Any, sign: int) -> Any:
        if self.months:
            import pandas as pd

            offset = pd.DateOffset(months=sign * self.months)
            if isinstance(point, (pd.Series, pd.Index, pd.Timestamp)):
                point = point + offset
            elif isinstance(point, datetime):
                point = (pd.Timestamp(point) + offset).to_pydatetime()
            elif isinstance(point, date):
                point = (pd.Timestamp(point) + offset).date()
            else:
                return NotImplemented
        if self.delta:
            whole_days = not self.delta % timedelta(days=1)
            if isinstance(point, date) and not isinstance(point, datetime) and not whole_days:
                raise ValueError(f"{self} is not a whole number of days: cannot move a date")
            point = point + sign * self.delta
        return point

    @overload
    def __radd__(self, other: T) -> T: ...
    @overload
    def __radd__(self, other: Any) -> Any: ...
    def __radd__(self, other: Any) -> Any:
        return self._shift(other, 1)

    @overload
    def __rsub__(self, other: T) -> T: ...
    @overload
    def __rsub__(self, other: Any) -> Any: ...
    def __rsub__(self, other: Any) -> Any:
        return self._shift(other, -1)

    def __add__(self, other: Span | timedelta) -> Span:
        other = Span.parse(other)
        return Span(self.months + other.months, self.delta + other.delta)

    def __mul__(self, factor: int) -> Span:
        return Span(self.months * factor, self.delta * factor)

    __rmul__ = __mul__

    # -- comparisons and conversions ------------------------------------------------------------

    @property
    def approximate(self) -> timedelta:
        """The length with months at their average (for ordering and sizes, not for dates)."""
        return self.months * _AVERAGE_MONTH + self.delta

    @property
    def longest(self) -> timedelta:
        """An upper bound of the length (31-day months): a time to live, a timeout."""
        return timedelta(days=31 * self.months) + self.delta

    @property
    def shortest(self) -> timedelta:
        """A lower bound of the length (28-day months): how long a row surely stays fresh."""
        return timedelta(days=28 * self.months) + self.delta

    def exact(self, what: str = "this duration") -> timedelta:
        """The length as a timedelta; months have no fixed length, so they are refused."""
        if self.months:
            raise ValueError(f"{what} must be in s, m, h, d or w, not months (got {self})")
        return self.delta

    def __lt__(self, other: Span) -> bool:
        return self.approximate < Span.parse(other).approximate

    def __le__(self, other: Span) -> bool:
        return self.approximate <= Span.parse(other).approximate

    def __gt__(self, other: Span) -> bool:
        return self.approximate > Span.parse(other).approximate

    def __ge__(self, other: Span) -> bool:
        return self.approximate >= Span.parse(other).approximate

    def __bool__(self) -> bool:
        return bool(self.months or self.delta)

    def suffix(self) -> str:
        """A short name for feature names and messages: ``3mo``, ``7d``, ``6h``, ``30m``."""
        parts = [f"{self.months}mo"] if self.months else []
        seconds = int(self.delta.total_seconds())
        if seconds or not parts:
            for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
                if seconds % size == 0:
                    parts.append(f"{seconds // size}{unit}")
                    break
        return "".join(parts)

    def __str__(self) -> str:
        return self.suffix()

    def __repr__(self) -> str:
        return f"Span({self.suffix()!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )


PRESETS = {
    "@hourly": Span.of(hours=1),
    "@daily": Span.of(days=1),
    "@weekly": Span.of(weeks=1),
    "@monthly": Span.of(months=1),
    "@yearly": Span.of(months=12),
}
_CRON = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
}


@dataclass(frozen=True)
class Cadence:
    """The rhythm of a use case's data intervals, as Airflow's cron timetable cuts them (UTC)."""

    schedule: str

    @classmethod
    def of(cls, schedule: str) -> Cadence:
        """A cadence from ``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly`` or a cron."""
        cadence = cls(schedule.strip())
        try:
            cadence._iter(datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
        except (ValueError, KeyError) as exc:
            raise ValueError(
                f"schedule {schedule!r} is not a cadence: use @hourly, @daily, @weekly, @monthly"
                f" or a cron expression ({exc})"
            ) from None
        return cadence

    @property
    def cron(self) -> str:
        """The cron expression (what Airflow's ``CronDataIntervalTimetable`` takes)."""
        return _CRON.get(self.schedule, self.schedule)

    @property
    def step(self) -> Span:
        """One interval's length (a month for @monthly); for a cron, the typical gap."""
        if self.schedule in PRESETS:
            return PRESETS[self.schedule]
        lo, hi = self.interval_at(datetime(2001, 1, 1, tzinfo=UTC))
        return Span(delta=hi - lo)

    @property
    def name(self) -> str:
        """``monthly``, ``daily``...; the cron itself otherwise."""
        return self.schedule.removeprefix("@")

    def _iter(self, start: datetime) -> Any:
        from croniter import croniter

        return croniter(self.cron, start)

    def floor(self, point: datetime | date | str) -> datetime:
        """The start of the interval that holds ``point``."""
        point = to_utc(point)
        it = self._iter(point + timedelta(microseconds=1))
        prev: datetime = it.get_prev(datetime)
        return prev.astimezone(UTC).replace(fold=0)

    def next_start(self, start: datetime) -> datetime:
        """The start of the interval after the one starting at ``start``."""
        following: datetime = self._iter(to_utc(start)).get_next(datetime)
        return following.astimezone(UTC).replace(fold=0)

    def interval_at(self, point: datetime | date | str) -> tuple[datetime, datetime]:
        """The data interval [start, end) that holds ``point``."""
        start = self.floor(point)
        return start, self.next_start(start)

    def intervals(
        self, start: datetime | date | str, end: datetime | date | str
    ) -> list[tuple[datetime, datetime]]:
        """The intervals from the one holding ``start`` up to those starting before ``end``."""
        lo, hi = self.floor(start), to_utc(end)
        out = []
        while lo < hi:
            nxt = self.next_start(lo)
            out.append((lo, nxt))
            lo = nxt
        return out

    def ending_within(
        self, start: datetime | date | str, end: datetime | date | str
    ) -> tuple[datetime, datetime] | None:
        """The last interval that ends after ``start`` and no later than ``end``: the run a
        scheduler starts within that stretch of time (None: no interval ends there)."""
        last_end = self.floor(end)
        if last_end <= to_utc(start):
            return None
        return self.floor(last_end - timedelta(microseconds=1)), last_end

    def count(self, start: datetime | date | str, n: int) -> list[tuple[datetime, datetime]]:
        """``n`` consecutive intervals, the first holding ``start``."""
        lo = self.floor(start)
        out = []
        for _ in range(n):
            nxt = self.next_start(lo)
            out.append((lo, nxt))
            lo = nxt
        return out

    def label(self, start: datetime) -> str:
        """How people name an interval: ``2003-01`` monthly, ``2013-01-05`` daily, else ISO."""
        start = to_utc(start)
        if self.schedule in ("@monthly", "@yearly"):
            return start.strftime("%Y-%m")
        if start.hour == start.minute == 0:
            return start.strftime("%Y-%m-%d")
        return start.strftime("%Y-%m-%dT%H:%M")


def to_utc(value: datetime | date | str | Any) -> datetime:
    """A timezone-aware UTC datetime from a datetime, a date, a Timestamp or ISO text
    (``2003-01`` is the first of January 2003)."""
    import pandas as pd

    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    out: datetime = ts.to_pydatetime()
    return out
