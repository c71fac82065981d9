"""What the model predicts: the prediction events, their label, and the entities that key the
features; the feature views read these, so they sit below them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import model_validator

from airloop.usecase.base import Duration, Spec

if TYPE_CHECKING:
    import pandas as pd


CalendarPart = Literal[
    "month", "quarter", "day_of_week", "day_of_year", "week_of_year", "hour", "is_weekend"
]


class EventsSpec(Spec):
    """The prediction events: one row per thing the model scores.

    ``calendar``: parts of the event time (UTC) given to the model as ``event_<part>``
    features, computed the same way for training (in the events table) and at serving (from
    the request's ``event_time``); use them in ``training`` like request fields.
    """

    source: str
    id: str
    timestamp: str
    request_fields: list[str] = []
    calendar: list[CalendarPart] = []
    # One request instance, as a caller of /v1/predict sends it: the service's API page shows
    # it, and the tests and benchmarks send it. Its fields are the use case's request keys.
    example: dict[str, Any] | None = None

    @property
    def calendar_features(self) -> list[str]:
        """The calendar features' names: ``event_month``, ``event_is_weekend``..."""
        return [f"event_{part}" for part in self.calendar]

    def calendar_columns(self, stamps: pd.Series) -> pd.DataFrame:
        """The calendar features of these event times, one row each; missing for a missing time.

        Month 1-12, quarter 1-4, day_of_week 0 (Monday) to 6, day_of_year 1-366, week_of_year
        the ISO week 1-53, hour 0-23, is_weekend 0 or 1.
        """
        import pandas as pd

        times = pd.to_datetime(pd.Series(stamps).reset_index(drop=True), utc=True)
        parts = {
            "month": lambda: times.dt.month,
            "quarter": lambda: times.dt.quarter,
            "day_of_week": lambda: times.dt.dayofweek,
            "day_of_year": lambda: times.dt.dayofyear,
            "week_of_year": lambda: times.dt.isocalendar().week,
            "hour": lambda: times.dt.hour,
            "is_weekend": lambda: (times.dt.dayofweek >= 5).where(times.notna()),
        }
        out = pd.DataFrame(index=times.index)
        for part, name in zip(self.calendar, self.calendar_features, strict=True):
            values = pd.to_numeric(parts[part](), errors="coerce").astype("float64")
            out[name] = values if values.isna().any() else values.astype("int64")
        return out


class LabelSpec(Spec):
    """The outcome of an event, known ``delay`` after it: a column of a source of its own
    (outcomes landing later) or of the events' own source.

    ``event_id`` and ``event_timestamp`` default to the events' ``id`` and ``timestamp`` when
    the label comes from the events' source; without ``available_at`` a label is known at
    its event's time plus ``delay``, which must be longer than 0 (a label known at its own
    event's time would be in that event's features).
    """

    source: str
    column: str
    name: str
    event_id: str | None = None
    event_timestamp: str | None = None
    available_at: str | None = None
    delay: Duration
    threshold: float | None = None

    @model_validator(mode="after")
    def _check_delay(self) -> LabelSpec:
        if not self.delay:
            raise ValueError(
                "label.delay must be longer than 0: a label known at its event's own time"
                " would leak into that event's features"
            )
        return self

    def keys(self, events: EventsSpec) -> tuple[str, str]:
        """The label source's columns naming the event and its time."""
        if self.event_id is None or self.event_timestamp is None:
            assert self.source == events.source  # nosec B101 # an invariant: UseCase refuses anything else
        return (self.event_id or events.id, self.event_timestamp or events.timestamp)


class EntitySpec(Spec):
    """A Feast entity: what features are keyed by, and the events' column that names it."""

    name: str
    join_key: str
    description: str = ""
