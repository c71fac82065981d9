"""airloop's own tables of events and labels, built from an interval's cleaned sources.

Feature views compute their own rows (``airloop.usecase.views``); these tables are
what every use case has: the prediction events with their entity keys, request-time fields and
calendar features, the outcomes with the moment each became known, and the past rows of the
sources that feature views read back (``source__<name>``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from airloop.core.columns import AVAILABLE_AT, EVENT_ID, EVENT_TS, LABEL
from airloop.usecase import UseCase


def events_table(usecase: UseCase, events: pd.DataFrame) -> pd.DataFrame:
    """Entity rows for training and scoring: id, time, entity keys, request-time fields and
    calendar features of the event time."""
    keys = [usecase.entity(v.entity).join_key for v in usecase.feature_views]
    cols = list(dict.fromkeys([*keys, *usecase.events.request_fields]))
    out = events[[usecase.events.id, usecase.events.timestamp, *cols]].rename(
        columns={usecase.events.id: EVENT_ID, usecase.events.timestamp: EVENT_TS}
    )
    calendar = usecase.events.calendar_columns(out[EVENT_TS])
    for name in calendar.columns:
        out[name] = calendar[name].to_numpy()
    return out.sort_values([EVENT_TS, EVENT_ID]).reset_index(drop=True)


def shift_times(stamps: pd.Series, by: Any) -> pd.Series:
    """``stamps + by`` for a duration that may count calendar months, which only adds to one
    timestamp at a time: done once per distinct time."""
    moved = {t: t + by for t in stamps.dropna().unique()}
    return stamps.map(moved).astype(stamps.dtype)


def labels_table(usecase: UseCase, labels: pd.DataFrame) -> pd.DataFrame:
    """Outcomes with the moment they became known; unlabelled rows (e.g. cancelled) dropped.

    Known at ``label.available_at``, or when the use case names none, at the event's time
    plus ``label.delay``.
    """
    spec = usecase.label
    event_id, event_ts = spec.keys(usecase.events)
    raw = pd.to_numeric(labels[spec.column], errors="coerce")
    stamps = labels[event_ts]
    known = labels[spec.available_at] if spec.available_at else shift_times(stamps, spec.delay)
    out = pd.DataFrame(
        {
            EVENT_ID: labels[event_id].astype(object),
            EVENT_TS: stamps,
            AVAILABLE_AT: known,
            spec.column: raw,
        }
    )
    out = out[raw.notna()].copy()
    if usecase.task == "classification":
        out[LABEL] = (out[spec.column] > spec.threshold).astype("int64")
    else:
        out[LABEL] = out[spec.column].astype("float64")
    return out.sort_values([EVENT_TS, EVENT_ID]).reset_index(drop=True)


def source_history_table(usecase: UseCase, source: str, rows: pd.DataFrame) -> pd.DataFrame:
    """The interval's rows of a source that feature views read back later: only the columns
    they need, timed by the source's ``partition_by``."""
    columns = usecase.source_history()[source]
    stamp = usecase.sources[source].partition_by
    out = rows[columns]
    if stamp is not None:
        out = out[out[stamp].notna()].sort_values(stamp, kind="stable")
    return out.reset_index(drop=True)
