"""How old a served view's values may be: the freshness rule, in one place.

A view's online values carry the time they were computed for (their row's
``event_timestamp``, reported as ``features_as_of``). At an event's time they are:

- **from after the event** when that time is later than the event's: the online store holds
  each entity's latest row only, and the point-in-time join training used would never have
  handed the event those values (``serving.past_events`` decides: refused or flagged);
- **stale** when the view's next values were due before the event: a snapshot is stamped
  with the moment it is computed as of (an interval's start, or each ``every`` for a view
  whose rows move within an interval), from the rows known then (its source's delay already
  applied); the next is due one interval later. Values stamped ``s`` are fresh for the events
  of ``[s, s + interval)``: later, the data they summarise is older than the view's interval
  plus its source's delay, which is what training never saw (a "lag of one day" two days old).
  ``serving.stale`` decides: flagged or missing.
"""

from __future__ import annotations

from datetime import datetime

from airloop.core.periods import Span
from airloop.usecase import FeatureView, UseCase


def expected_freshness(usecase: UseCase, view: FeatureView) -> Span:
    """How long a view's values serve before the next are due: its interval (the use case's
    cadence, or the view's own ``every``). Its source's delay is already in the values: a
    snapshot holds only rows known at its moment."""
    every = view.moves_every() if view.moves_within_interval() else None
    return every if every is not None else usecase.cadence.step


def is_stale(as_of: datetime, event_time: datetime, freshness: Span) -> bool:
    """Whether values computed at ``as_of`` are stale at ``event_time`` (months counted the
    calendar's way): at ``as_of + freshness`` and after, not before."""
    due: datetime = freshness.after(as_of)
    return event_time >= due


def freshness_by_view(usecase: UseCase) -> dict[str, Span]:
    """The expected freshness of each view the feature service serves."""
    return {view.name: expected_freshness(usecase, view) for view in usecase.service_views}
