"""``/v1/predict``: online features looked up in-process, the champion's scores, a durable log.

The input row is built as numpy columns straight from the request and Feast's online response
(no per-cell pandas work on the request path), by the same input rule training uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from airloop.core.periods import Span
from airloop.core.records import json_column
from airloop.serving.breaker import Breaker, BreakerOpen
from airloop.serving.errors import ApiError
from airloop.serving.freshness import freshness_by_view, is_stale
from airloop.serving.metrics import Metrics
from airloop.serving.model import LoadedModel, ModelHolder
from airloop.serving.prediction_log import PredictionLog
from airloop.serving.schema import EVENT_ID_FIELD, EVENT_TIME_FIELD
from airloop.training.models import input_column, score
from airloop.usecase import UseCase

MISSING_KEY = "__missing__"  # Feast cannot look up a missing key; an unknown one finds nothing


@dataclass
class Predictor:
    """What a prediction needs: the use case, the model holder, Feast, the log and metrics."""

    usecase: UseCase
    holder: ModelHolder
    metrics: Metrics
    store: Any = None
    service: Any = None
    log: PredictionLog | None = None
    store_name: str = "the online store"  # named in a 503 and on /ready (features.store)
    breaker: Breaker = field(default_factory=lambda: Breaker(trips=store_outages()))
    freshness: dict[str, Span] = field(init=False)

    def __post_init__(self) -> None:
        self.freshness = freshness_by_view(self.usecase)

    def serving_model(self) -> LoadedModel:
        """The model serving now, or a 503 that says why there is none."""
        model = self.holder.current
        if model is None:
            raise ApiError(503, "MODEL_NOT_READY", self.holder.last_error or "no model loaded yet")
        return model

    def online_features(self, entity_rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        """The feature service's online values for these entities, with their timestamps."""
        lookup = [{k: MISSING_KEY if v is None else v for k, v in r.items()} for r in entity_rows]
        response = self.store.get_online_features(
            features=self.service, entity_rows=lookup, full_feature_names=True
        )
        return response.to_dict(include_event_timestamps=True)

    def lookup_features(self, entity_rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        """:meth:`online_features` for a prediction: a store that fails is a 503 naming it,
        not a 500 (``/ready`` says the same); while it is known down (the :class:`Breaker`),
        the 503 comes at once instead of after the client's timeouts."""
        try:
            return self.breaker.call(lambda: self.online_features(entity_rows))
        except BreakerOpen as exc:
            raise ApiError(
                503,
                "ONLINE_STORE_UNAVAILABLE",
                f"the online store ({self.store_name}) is down: {exc}; see /ready",
            ) from None
        except Exception as exc:  # whatever the store's client raises
            raise ApiError(
                503,
                "ONLINE_STORE_UNAVAILABLE",
                f"the online store ({self.store_name}) did not answer ({type(exc).__name__});"
                " see /ready",
            ) from exc

    def online_store_ok(self) -> str | None:
        """None when the online store answers a lookup; else what went wrong."""
        probe = [dict.fromkeys(self.usecase.entity_keys, "__probe__")]
        try:
            self.breaker.call(lambda: self.online_features(probe))
        except Exception as exc:  # any failure of the store makes the service not ready
            return f"{self.store_name}: {type(exc).__name__}: {exc}"
        return None

    def predict(self, instances: list[dict[str, Any]], request_id: str | None) -> dict[str, Any]:
        """Score the instances with the serving model; log each prediction for monitoring."""
        model = self.serving_model()
        rows = [dict(instance) for instance in instances]
        events = [(row.pop(EVENT_ID_FIELD), row.pop(EVENT_TIME_FIELD)) for row in rows]
        received = datetime.now(UTC)
        add_calendar(self.usecase, rows, [time or received for _, time in events])
        entity_rows = [{k: row.get(k) for k in self.usecase.entity_keys} for row in rows]
        online = self.lookup_features(entity_rows)
        stamps = view_stamps(online, len(rows))
        timing = [
            time_views(self.freshness, stamps[i], time or received, given=time is not None)
            for i, (_, time) in enumerate(events)
        ]
        if self.usecase.serving.past_events == "refuse":
            refuse_past_events(timing, stamps)
        expire_stale(self.usecase, online, [time for _, time in events])
        if self.usecase.serving.stale == "missing":
            drop_views(online, [t.stale for t in timing])
        data, missing_by_row = input_columns(model, rows, online)
        for problems in missing_by_row:
            for column in problems:
                self.metrics.missing.labels(column).inc()
        for times in timing:
            for view in times.stale:
                self.metrics.stale.labels(view).inc()
        scores = score(
            model.raw, self.usecase.task, pd.DataFrame(data, columns=model.input_columns)
        )
        as_of = [iso_times(row) for row in stamps]
        now = received.isoformat()
        request_id = request_id or uuid.uuid4().hex
        predictions = []
        logged: list[dict[str, Any]] = []
        logged_inputs = {c: json_column(data[c]) for c in model.input_columns}
        for i in range(len(rows)):
            value = float(scores[i])
            self.metrics.scores.observe(value)
            item: dict[str, Any] = {
                "score": value,
                "features_as_of": as_of[i],
                "feature_age_seconds": timing[i].ages,
                "stale_views": timing[i].stale,
                "future_views": timing[i].future,
                "missing_features": missing_by_row[i],
            }
            if self.usecase.task == "classification":
                item["prediction"] = int(value >= 0.5)
            predictions.append(item)
            event_id, event_time = events[i]
            logged.append(
                {
                    "request_id": request_id,
                    "index": i,
                    "time": now,
                    "event_id": event_id,
                    "event_time": event_time.astimezone(UTC).isoformat() if event_time else now,
                    "entities": entity_rows[i],
                    "features": {c: logged_inputs[c][i] for c in model.input_columns},
                    "model": self.holder.model_name,
                    "model_version": model.version,
                    "score": value,
                }
            )
        if self.log is not None:  # written before the answer leaves: an answer is a logged one
            self.log.append_many(logged)
        return {
            "request_id": request_id,
            "model": {"name": self.holder.model_name, "version": model.version},
            "predictions": predictions,
        }


def store_outages() -> tuple[type[BaseException], ...]:
    """The errors that say the online store is down: Redis' connection and timeout errors and
    Python's own (SQLite's missing table or bad value is not an outage)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (ConnectionError, TimeoutError, RedisConnectionError, RedisTimeoutError)


def add_calendar(usecase: UseCase, rows: list[dict[str, Any]], times: list[datetime]) -> None:
    """The use case's calendar features of each event time (or of now, when a request gives
    none), computed by the rule training used on the events table."""
    if not usecase.events.calendar:
        return
    calendar = usecase.events.calendar_columns(pd.Series(times)).to_dict("records")
    for row, values in zip(rows, calendar, strict=True):
        row.update(values)


def expire_stale(
    usecase: UseCase, online: dict[str, list[Any]], times: list[datetime | None]
) -> None:
    """Features from a row older than its view's ttl at the event's time become missing, as in
    the point-in-time join training used (Feast's online store keeps an entity's last row
    whatever the ttl). Only for instances that say when their event happened: without a time,
    the store's clock is taken to be the request's."""
    if not any(times):
        return
    ttls = {view.name: view.ttl for view in usecase.feature_views}
    cutoffs: dict[tuple[str, datetime], float] = {}
    for column, stamps in online.items():
        view, _, rest = column.partition("__")
        feature, _, suffix = rest.partition("__")
        values = online.get(f"{view}__{feature}")
        if suffix != "ts" or view not in ttls or values is None:
            continue
        for i, (stamp, when) in enumerate(zip(stamps, times, strict=True)):
            if when is None or not isinstance(stamp, int) or stamp <= 0:
                continue
            key = (view, when)
            if key not in cutoffs:
                earliest = when - ttls[view]
                cutoffs[key] = earliest.timestamp() if earliest != when else float("-inf")
            if stamp < cutoffs[key]:
                values[i] = None


def input_columns(
    model: LoadedModel, rows: list[dict[str, Any]], online: dict[str, list[Any]]
) -> tuple[dict[str, np.ndarray], list[list[str]]]:
    """Column arrays for the model and, per row, the inputs that were missing.

    Request fields win over online features of the same name; an input neither gives is
    missing (None, or NaN for a number).
    """
    n = len(rows)
    data: dict[str, np.ndarray] = {}
    missing_by_row: list[list[str]] = [[] for _ in range(n)]
    for column in model.input_columns:
        if column in rows[0]:
            values = [row[column] for row in rows]
        elif column in online:
            values = online[column]
        else:
            values = [None] * n
        numeric = column in model.numeric_columns
        array = input_column(values, numeric=numeric)
        missing = (
            np.flatnonzero(np.isnan(array))
            if numeric
            else [i for i, v in enumerate(values) if v is None]
        )
        for index in missing:
            missing_by_row[int(index)].append(column)
        data[column] = array
    return data, missing_by_row


def view_stamps(online: dict[str, list[Any]], n: int) -> list[dict[str, int | None]]:
    """Per row and feature view, the time (epoch seconds) of the row that was served: the
    newest of its features' timestamps; None where the store had no row."""
    out: list[dict[str, int | None]] = [{} for _ in range(n)]
    for column, values in online.items():
        parts = column.split("__")
        if len(parts) != 3 or parts[2] != "ts":
            continue
        for i, value in enumerate(values):
            if isinstance(value, int) and value > 0:
                out[i][parts[0]] = max(value, out[i].get(parts[0]) or 0)
            else:
                out[i].setdefault(parts[0], None)
    return out


def iso_times(stamps: dict[str, int | None]) -> dict[str, str | None]:
    """The stamps of :func:`view_stamps` as ISO 8601 text in UTC."""
    return {
        view: datetime.fromtimestamp(stamp, UTC).isoformat() if stamp else None
        for view, stamp in stamps.items()
    }


def feature_times(online: dict[str, list[Any]], n: int) -> list[dict[str, str | None]]:
    """Per feature view, the timestamp of the row that was served (its freshness)."""
    return [iso_times(row) for row in view_stamps(online, n)]


@dataclass(frozen=True)
class ViewTimes:
    """One instance's views against its event's time: the age of each view's values in
    seconds (negative: computed after the event; None: no row), the stale views and the views
    whose values postdate the event (only for an instance that gave its ``event_time``)."""

    ages: dict[str, float | None]
    stale: list[str]
    future: list[str]


def time_views(
    freshness: Mapping[str, Span],
    stamps: Mapping[str, int | None],
    event_time: datetime,
    given: bool = True,
) -> ViewTimes:
    """The age of each view's values at the event's time, by the rule of
    :mod:`airloop.serving.freshness`. ``given``: the caller sent ``event_time``; without it the
    event is now, and values from after it cannot be told from the store's clock."""
    ages: dict[str, float | None] = {}
    stale: list[str] = []
    future: list[str] = []
    at = event_time.timestamp()
    for view, stamp in stamps.items():
        if not stamp:
            ages[view] = None
            continue
        ages[view] = at - stamp
        as_of = datetime.fromtimestamp(stamp, UTC)
        if given and as_of > event_time:
            future.append(view)
        elif view in freshness and is_stale(as_of, event_time, freshness[view]):
            stale.append(view)
    return ViewTimes(ages, stale, future)


BATCH_SCORING = (
    "score past events with batch scoring instead (`airloop score --start <interval>`, or the"
    " batch_inference DAG), which joins the offline store point-in-time; or set"
    " serving.past_events: flag in the use case to serve them flagged"
)
MAX_NAMED = 20  # instances named in one refusal


def refuse_past_events(
    timing: Sequence[ViewTimes], stamps: Sequence[Mapping[str, int | None]]
) -> None:
    """A 422 when an instance's ``event_time`` is earlier than its online values' as-of time:
    the store holds each entity's latest values only, and those would use the future."""
    late = [i for i, times in enumerate(timing) if times.future]
    if not late:
        return
    fields = []
    for i in late[:MAX_NAMED]:
        views = ", ".join(
            f"{view} (as of {datetime.fromtimestamp(stamps[i][view] or 0, UTC).isoformat()})"
            for view in timing[i].future
        )
        fields.append(
            {
                "field": f"instances.{i}.event_time",
                "problem": f"before the online values of {views}",
            }
        )
    more = f" ({len(late) - MAX_NAMED} more not listed)" if len(late) > MAX_NAMED else ""
    raise ApiError(
        422,
        "EVENT_BEFORE_ONLINE_FEATURES",
        f"{len(late)} instance(s) have an event_time earlier than the online features' as-of"
        f" time{more}: the online store holds each entity's latest values only, computed after"
        f" these events, and answering would use the future; {BATCH_SCORING}",
        fields,
    )


def drop_views(online: dict[str, list[Any]], views_by_row: list[list[str]]) -> None:
    """The features of these views become missing, row by row (``serving.stale: missing``)."""
    if not any(views_by_row):
        return
    for column, values in online.items():
        view, _, rest = column.partition("__")
        if not rest or rest.endswith("__ts"):
            continue
        for i, views in enumerate(views_by_row):
            if view in views:
                values[i] = None
