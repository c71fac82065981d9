"""Feature tables, computed point-in-time correct from cleaned partitions.

Every output row carries ``event_timestamp``: the moment from which the values were known.
Feast's as-of join then hands an event only rows stamped at or before the event.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from airloop.data.intervals import as_utc
from airloop.usecase import FeatureViewSpec, UseCase, window_suffix

EVENT_TS = "event_timestamp"
LABEL = "label"
AVAILABLE_AT = "available_at"
EVENT_ID = "event_id"

_DTYPES = {"float": "float64", "int": "Int64", "string": "object"}


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


def source_rows_view(usecase: UseCase, view: FeatureViewSpec, rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of a timestamped source, e.g. hourly weather per airport."""
    key = usecase.entity(view.entity).join_key
    out = pd.DataFrame({key: rows[key].astype(object), EVENT_TS: rows[view.timestamp]})
    for feature in view.features:
        out[feature.name] = rows[feature.source_column].astype(_DTYPES[feature.dtype])
    return out.dropna(subset=[key]).sort_values([EVENT_TS, key]).reset_index(drop=True)


def reference_snapshot_view(
    usecase: UseCase, view: FeatureViewSpec, table: pd.DataFrame, as_of: datetime
) -> pd.DataFrame:
    """The reference table's attributes as known at the start of the interval."""
    key = usecase.entity(view.entity).join_key
    rows = table.dropna(subset=[key]).drop_duplicates(subset=[key], keep="last")
    out = pd.DataFrame({key: rows[key].astype(object)})
    out[EVENT_TS] = pd.Timestamp(as_utc(as_of))
    for feature in view.features:
        out[feature.name] = rows[feature.source_column].astype(_DTYPES[feature.dtype])
    return out.sort_values(key).reset_index(drop=True)


def label_rate_view(
    usecase: UseCase,
    view: FeatureViewSpec,
    labels: pd.DataFrame,
    events: pd.DataFrame,
    as_of: datetime,
) -> pd.DataFrame:
    """Per entity, share and count of positive labels over each window, as known at ``as_of``.

    A label counts only if its event happened before ``as_of`` (within the window) and the
    label itself had arrived strictly before ``as_of``: no feature sees its own future.
    """
    key = usecase.entity(view.entity).join_key
    as_of_ts = pd.Timestamp(as_utc(as_of))
    longest = max(view.windows)
    known = labels[
        (labels[AVAILABLE_AT] < as_of_ts)
        & (labels[EVENT_TS] < as_of_ts)
        & (labels[EVENT_TS] >= as_of_ts - longest)
    ]
    joined = known[[EVENT_ID, EVENT_TS, LABEL]].merge(
        events[[EVENT_ID, key]].drop_duplicates(EVENT_ID), on=EVENT_ID, how="inner"
    )
    joined = joined.dropna(subset=[key])
    entities = pd.Index(sorted(joined[key].unique()), name=key)
    out = pd.DataFrame(index=entities)
    for window in sorted(view.windows):
        suffix = window_suffix(window)
        in_window = joined[joined[EVENT_TS] >= as_of_ts - window]
        grouped = in_window.groupby(key)[LABEL]
        out[f"rate_{suffix}"] = grouped.mean().reindex(entities).astype("float64")
        out[f"count_{suffix}"] = grouped.size().reindex(entities).fillna(0).astype("Int64")
    out = out.reset_index()
    out[key] = out[key].astype(object)
    out.insert(1, EVENT_TS, as_of_ts)
    ordered = [key, EVENT_TS, *view.feature_names()]
    if out.empty:
        return empty_view(usecase, view)
    return out[ordered]


def empty_view(usecase: UseCase, view: FeatureViewSpec) -> pd.DataFrame:
    """A zero-row table with the view's schema, so readers see the columns they expect."""
    key = usecase.entity(view.entity).join_key
    cols: dict[str, pd.Series] = {
        key: pd.Series([], dtype=object),
        EVENT_TS: pd.Series([], dtype="datetime64[ns, UTC]"),
    }
    if view.kind == "label_rate":
        for name in view.feature_names():
            cols[name] = pd.Series([], dtype="float64" if name.startswith("rate_") else "Int64")
    else:
        for feature in view.features:
            cols[feature.name] = pd.Series([], dtype=_DTYPES[feature.dtype])
    return pd.DataFrame(cols)


def feature_dtype_kind(view: FeatureViewSpec, name: str) -> str:
    """float, int or string: what Feast's schema says for a feature of this view."""
    if view.kind == "label_rate":
        return "float" if name.startswith("rate_") else "int"
    return next(f.dtype for f in view.features if f.name == name)


__all__ = [
    "AVAILABLE_AT",
    "EVENT_ID",
    "EVENT_TS",
    "LABEL",
    "empty_view",
    "events_table",
    "label_rate_view",
    "labels_table",
    "reference_snapshot_view",
    "source_rows_view",
]
