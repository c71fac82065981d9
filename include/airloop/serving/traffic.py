"""A replay client: sends an interval's events to the serving API as a caller would.

Each instance carries the event's id and time, so the prediction log can later be joined to
the labels that arrive for it. Rows the service refuses (4xx) are counted, not retried.
"""

from __future__ import annotations

import json
import urllib.error
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from airloop.features.compute import EVENT_ID, EVENT_TS
from airloop.features.store import EVENTS_TABLE, read_partitions
from airloop.settings import Settings
from airloop.usecase import UseCase


def request_fields(usecase: UseCase) -> list[str]:
    """What a caller sends per prediction: the entity keys and the request-time model inputs."""
    return list(
        dict.fromkeys(
            [
                *(usecase.entity(v.entity).join_key for v in usecase.service_views),
                *usecase.training.categorical,
                *usecase.training.numeric,
            ]
        )
    )


def instances_for(usecase: UseCase, events: pd.DataFrame) -> list[dict[str, Any]]:
    fields = request_fields(usecase)
    frame = events[fields].copy()
    frame["event_id"] = events[EVENT_ID].astype("string")
    frame["event_time"] = pd.to_datetime(events[EVENT_TS], utc=True).map(lambda t: t.isoformat())
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return records


def post(settings: Settings, path: str, body: Any, timeout: float = 60.0) -> tuple[int, Any]:
    """The service's status and answer; a 4xx is an answer here, not an error."""
    from airloop.serving.deploy import call_service

    try:
        return 200, call_service(settings, "POST", path, body, timeout=timeout)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def send_interval(
    settings: Settings,
    usecase: UseCase,
    start: datetime,
    end: datetime,
    batch: int = 200,
    step: timedelta | None = timedelta(hours=1),
) -> dict[str, Any]:
    """Ask the service about every event of [start, end), in time order; count its answers.

    With ``step``, the events go slice by slice and the online store is first set to the
    slice's start: each request meets the features a live store would have held then. The
    store is left as of ``end`` (what the feature pipeline wrote).
    """
    events = read_partitions(settings, usecase, EVENTS_TABLE, start, end)
    counts: dict[str, Any] = {"sent": 0, "predicted": 0, "refused": 0, "versions": {}}
    if events is None:
        return counts
    events = events.sort_values(EVENT_TS)
    stamps = pd.to_datetime(events[EVENT_TS], utc=True)
    if step is None:
        _send(settings, instances_for(usecase, events), batch, counts)
        return counts
    from airloop.features.store import ensure_registered, materialize_as_of

    store = ensure_registered(settings, usecase)
    lo = pd.Timestamp(start)
    while lo < pd.Timestamp(end):
        hi = lo + step
        part = events[(stamps >= lo) & (stamps < hi)]
        if not part.empty:
            materialize_as_of(settings, usecase, lo.to_pydatetime(), store)
            _send(settings, instances_for(usecase, part), batch, counts)
        lo = hi
    materialize_as_of(settings, usecase, end, store)
    return counts


def _send(
    settings: Settings, instances: list[dict[str, Any]], batch: int, counts: dict[str, Any]
) -> None:
    versions: dict[str, int] = counts["versions"]
    for i in range(0, len(instances), batch):
        chunk = instances[i : i + batch]
        counts["sent"] += len(chunk)
        status, answer = post(settings, "/v1/predict", {"instances": chunk})
        if status == 200:
            counts["predicted"] += len(answer["predictions"])
            version = str(answer["model"]["version"])
            versions[version] = versions.get(version, 0) + len(answer["predictions"])
        elif 400 <= status < 500:
            # One bad row refuses its batch: send the rows one by one to keep the good ones.
            for instance in chunk:
                one_status, one = post(settings, "/v1/predict", {"instances": [instance]})
                if one_status == 200:
                    counts["predicted"] += 1
                    version = str(one["model"]["version"])
                    versions[version] = versions.get(version, 0) + 1
                else:
                    counts["refused"] += 1
        else:
            raise RuntimeError(f"the service answered {status}: {answer.get('message')}")
