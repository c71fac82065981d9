"""A replay client: sends an interval's events to the serving API as a caller would.

Each instance carries the event's id and time, so the prediction log can later be joined to
the labels that arrive for it. Rows the service refuses (4xx) are counted, not retried.
The replay clock: before each slice of events, the online store is set to hold what a live
store fed as the data arrived would have held at that moment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from airloop.core.columns import EVENT_ID, EVENT_TS, EVENTS_TABLE
from airloop.core.http import HttpError
from airloop.data.intervals import as_utc
from airloop.features.offline import read_partitions
from airloop.features.store import OnlineRows, ensure_registered
from airloop.serving.client import call_service
from airloop.serving.schema import EVENT_ID_FIELD, EVENT_TIME_FIELD
from airloop.settings import Settings
from airloop.usecase import UseCase


@dataclass
class Traffic:
    """What the service answered: predictions per model version, and refusals."""

    sent: int = 0
    predicted: int = 0
    refused: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    refusal: str | None = None  # the first refusal's status and message, to say why

    def answered(self, answer: dict[str, Any]) -> None:
        """Count a 200 answer's predictions under the version that made them."""
        count = len(answer["predictions"])
        version = str(answer["model"]["version"])
        self.predicted += count
        self.versions[version] = self.versions.get(version, 0) + count

    def add(self, other: Traffic) -> None:
        """Count another interval's traffic in this one."""
        self.sent += other.sent
        self.predicted += other.predicted
        self.refused += other.refused
        self.refusal = self.refusal or other.refusal
        for version, count in other.versions.items():
            self.versions[version] = self.versions.get(version, 0) + count


def instances_for(usecase: UseCase, events: pd.DataFrame) -> list[dict[str, Any]]:
    """Request instances for events: the request fields, the event's id and its time."""
    frame = events[usecase.request_keys].copy()
    frame[EVENT_ID_FIELD] = events[EVENT_ID].astype("string")
    frame[EVENT_TIME_FIELD] = pd.to_datetime(events[EVENT_TS], utc=True).map(
        lambda t: t.isoformat()
    )
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return records


def post(settings: Settings, path: str, body: Any, timeout: float = 60.0) -> tuple[int, Any]:
    """The service's status and answer; a 4xx is an answer here, not an error."""
    try:
        return 200, call_service(settings, "POST", path, body, timeout=timeout)
    except HttpError as exc:
        return exc.status, exc.body if isinstance(exc.body, dict) else {"message": exc.body}


class ReplayClock:
    """The online store through one replayed interval, moved forward step by step.

    The feature pipeline has already materialised the interval: the views stamped at its
    start (snapshots) are right for all of it, and the views whose rows move within it hold
    each entity's row of the interval's end, which a request earlier in the interval must not
    see. The clock takes those back to the interval's start: each entity with a row in the
    interval gets its latest row from before (within the view's ttl), or an empty row where
    it had none. Each step then writes, per entity, the latest row stamped since the step
    before. That is what a live store fed as the data arrived would have held, at a few
    milliseconds a step instead of a materialisation; and with the rows' own times, the
    service's ttl rule (``serving.predict.expire_stale``) gives each event what the
    point-in-time join gave training. It needs an online store that takes an older row over a
    newer one, as SQLite's does; Redis's keeps the newest (docs/production.md).
    """

    def __init__(
        self, settings: Settings, usecase: UseCase, store: Any, start: datetime, end: datetime
    ) -> None:
        self.usecase, self.store = usecase, store
        self.moving: dict[str, _MovingRows] = {}
        lo, hi = pd.Timestamp(as_utc(start)), pd.Timestamp(as_utc(end))
        for view in usecase.feature_views:
            if not view.moves_within_interval():
                continue
            # From the partition that holds the moment a ttl before the start: a partition
            # holds its interval's rows, so one interval further back.
            rows = read_partitions(settings, usecase, view.name, lo - view.ttl - (hi - lo), hi)
            if rows is None:
                continue
            key = usecase.entity(view.entity).join_key
            rows = rows.assign(**{EVENT_TS: pd.to_datetime(rows[EVENT_TS], utc=True)})
            rows = rows.sort_values(EVENT_TS, kind="stable").reset_index(drop=True)
            mine = rows[rows[EVENT_TS] >= lo]
            if mine.empty:
                continue
            self.moving[view.name] = _MovingRows(
                store, view.name, key, changes_only(mine, key, view.ttl.shortest)
            )
            known = rows[(rows[EVENT_TS] < lo) & (rows[EVENT_TS] >= lo - view.ttl)]
            before = known.groupby(key, sort=False).tail(1).set_index(key)
            rewound = before.reindex(pd.Index(mine[key].unique(), name=key))
            if rewound.drop(columns=EVENT_TS).isna().all(axis=None):
                continue  # nothing was known; Feast refuses a write with no feature values
            # An entity nothing was known of gets an empty row stamped beyond the ttl, which
            # the service serves as missing (an int column's empty value reads back as 0).
            never = lo - view.ttl - pd.Timedelta(seconds=1)
            rewound[EVENT_TS] = rewound[EVENT_TS].fillna(never)
            rewound = rewound.reset_index().astype(object)
            self.store.write_to_online_store(view.name, rewound.where(rewound.notna(), None))
        self.at: pd.Timestamp | None = None  # the interval's rows stamped up to here are written

    def advance(self, when: datetime) -> None:
        """Hold each moving view's latest row stamped at or before ``when``."""
        now = pd.Timestamp(as_utc(when))
        for rows in self.moving.values():
            rows.write_between(self.at, now)
        self.at = now


class _MovingRows:
    """A moving view's rows of the interval, in time order, converted for the online store
    once (:class:`~airloop.features.store.OnlineRows`): a step writes, per entity, the latest
    row stamped since the step before."""

    def __init__(self, store: Any, view_name: str, key: str, rows: pd.DataFrame) -> None:
        self.online = OnlineRows(store, view_name, rows)
        self.stamps = pd.DatetimeIndex(rows[EVENT_TS]).as_unit("ns").asi8
        self.entities = pd.factorize(rows[key])[0]

    def write_between(self, after: pd.Timestamp | None, until: pd.Timestamp) -> None:
        """Each entity's latest row stamped in (after, until]."""
        first = 0 if after is None else int(np.searchsorted(self.stamps, after.value, "right"))
        end = int(np.searchsorted(self.stamps, until.value, "right"))
        if end <= first:
            return
        # The last row of each entity in the slice: the first one met reading it backwards.
        _, from_the_end = np.unique(self.entities[first:end][::-1], return_index=True)
        self.online.write(np.sort(end - 1 - from_the_end))


def changes_only(rows: pd.DataFrame, key: str, ttl: timedelta) -> pd.DataFrame:
    """The rows of an interval (in time order) that change what the store holds: a store fed
    as the data arrived is written when an entity's values change, not at every snapshot.

    An hourly snapshot repeats an aircraft's row for the twelve hours its departure stays in
    the window: three in four rows of a day change nothing, and writing them was most of the
    replay clock's time. A repeated row is left out only while the row it repeats is still
    within ``ttl`` when the entity's next row comes, so every event is served a row its
    view's ttl admits (``serving.predict.expire_stale``), with the values the point-in-time
    join gives it. Each entity's last row is kept: the store ends as the pipeline left it.
    """
    values = [column for column in rows.columns if column not in (key, EVENT_TS)]
    entity = rows.groupby(key, sort=False)
    before = entity[values].shift()
    repeats = entity.cumcount() > 0
    for column in values:
        now, then = rows[column], before[column]
        repeats &= (now == then).fillna(False).astype(bool) | (now.isna() & then.isna())
    # The run of repeats starts at the last row that changed something: the row the store holds.
    held_since = rows[EVENT_TS].where(~repeats).groupby(rows[key], sort=False).ffill()
    following = entity[EVENT_TS].shift(-1)
    redundant = repeats & following.notna() & (following - held_since <= ttl)
    return rows[~redundant]


REPLAY_STEP = timedelta(hours=3)  # the clock's step when no view asks for a finer one


def clock_step(usecase: UseCase) -> timedelta:
    """The replay clock's step: :data:`REPLAY_STEP`, or the finest ``every`` of a view that
    moves within an interval, so that each of its snapshots serves the events of its own
    moment, as the training set's point-in-time join gave them."""
    declared = [v.moves_every() for v in usecase.feature_views]
    return min([REPLAY_STEP, *(every.approximate for every in declared if every is not None)])


def send_interval(
    settings: Settings,
    usecase: UseCase,
    start: datetime,
    end: datetime,
    batch: int = 200,
    step: timedelta | None = timedelta(hours=1),
) -> Traffic:
    """Ask the service about every event of [start, end), in time order; count its answers.

    With ``step``, the events go slice by slice and the online store is first set to the
    slice's start. The store is left as of ``end`` (what the feature pipeline wrote).
    """
    traffic = Traffic()
    events = read_partitions(settings, usecase, EVENTS_TABLE, start, end)
    if events is None:
        return traffic
    events = events.sort_values(EVENT_TS)
    if step is None:
        _send(settings, instances_for(usecase, events), batch, traffic)
        return traffic
    stamps = pd.to_datetime(events[EVENT_TS], utc=True)
    store = ensure_registered(settings, usecase)
    clock = ReplayClock(settings, usecase, store, start, end)
    lo = pd.Timestamp(start)
    while lo < pd.Timestamp(end):
        hi = lo + step
        part = events[(stamps >= lo) & (stamps < hi)]
        if not part.empty:
            clock.advance(lo.to_pydatetime())
            _send(settings, instances_for(usecase, part), batch, traffic)
        lo = hi
    clock.advance(pd.Timestamp(end).to_pydatetime())  # as the feature pipeline left it
    return traffic


def _send(
    settings: Settings, instances: list[dict[str, Any]], batch: int, traffic: Traffic
) -> None:
    for i in range(0, len(instances), batch):
        chunk = instances[i : i + batch]
        traffic.sent += len(chunk)
        status, answer = post(settings, "/v1/predict", {"instances": chunk})
        if status == 200:
            traffic.answered(answer)
        elif 400 <= status < 500:
            # One bad row refuses its batch: send the rows one by one to keep the good ones.
            for instance in chunk:
                one_status, one = post(settings, "/v1/predict", {"instances": [instance]})
                if one_status == 200:
                    traffic.answered(one)
                else:
                    traffic.refused += 1
                    if traffic.refusal is None:
                        traffic.refusal = f"{one_status}: {one.get('message') or one}"
        else:
            raise RuntimeError(f"the service answered {status}: {answer.get('message')}")
