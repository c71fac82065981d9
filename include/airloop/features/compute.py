"""airloop's own tables of events and labels, built from an interval's cleaned sources.

Feature views compute their own rows (``airloop.usecase.feature_views``); these two tables are
what every use case has: the prediction events with their entity keys and request-time fields,
and the outcomes with the moment each became known.
"""

from __future__ import annotations

import pandas as pd

from airloop.core.columns import AVAILABLE_AT, EVENT_ID, EVENT_TS, LABEL
from airloop.usecase import UseCase


def events_table(usecase: UseCase, events: pd.DataFrame) -> pd.DataFrame:
    """Entity rows for training and scoring: id, time, entity keys and request-time fields."""
    keys = [usecase.entity(v.entity).join_key for v in usecase.feature_views]
    cols = list(dict.fromkeys([*keys, *usecase.events.request_fields]))
    out = events[[usecase.events.id, usecase.events.timestamp, *cols]].rename(
        columns={usecase.events.id: EVENT_ID, usecase.events.timestamp: EVENT_TS}
    )
    return out.sort_values([EVENT_TS, EVENT_ID]).reset_index(drop=True)


def labels_table(usecase: UseCase, labels: pd.DataFrame) -> pd.DataFrame:
    """Outcomes with the moment they became known; unlabelled rows (e.g. cancelled) dropped."""
    spec = usecase.label
    raw = pd.to_numeric(labels[spec.column], errors="coerce")
    out = pd.DataFrame(
        {
            EVENT_ID: labels[spec.event_id].astype(object),
            EVENT_TS: labels[spec.event_timestamp],
            AVAILABLE_AT: labels[spec.available_at],
            spec.column: raw,
        }
    )
    out = out[raw.notna()].copy()
    if usecase.task == "classification":
        out[LABEL] = (out[spec.column] > spec.threshold).astype("int64")
    else:
        out[LABEL] = out[spec.column].astype("float64")
    return out.sort_values([EVENT_TS, EVENT_ID]).reset_index(drop=True)
