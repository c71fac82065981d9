"""What every airloop task and DAG shares: the header, the call of a stage, the run's lineage.

A task body imports its stage inside the task (DAG files stay light to parse) and calls it
through :func:`run_stage`: the stage's record goes to XCom as strict JSON, and an error no
retry can fix (any :class:`~airloop.core.errors.PermanentError`) fails the task at once with
its message instead of retrying.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec

from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException

from airloop.core.errors import PermanentError
from airloop.core.records import to_json
from airloop.settings import Settings, get_settings
from airloop.usecase import UseCase, active_usecases

P = ParamSpec("P")
log = logging.getLogger(__name__)

DEFAULT_ARGS: dict[str, Any] = {
    "retries": 1,
    "retry_delay": timedelta(seconds=15),
}

TAGS = ("airloop", "features", "experimentation", "training", "serving", "monitoring")


def dags_per_usecase(
    build: Callable[[UseCase, str, str | None], DAG], doc_md: str | None
) -> dict[str, DAG]:
    """One DAG per use case this Airflow runs (``AIRLOOP_USECASES``), by DAG id: a DAG file puts
    them in its globals. Tasks refer to their use case by its name or path."""
    built = (build(usecase, ref, doc_md) for usecase, ref in active_usecases(get_settings()))
    return {dag.dag_id: dag for dag in built}


def dag_header(usecase: UseCase, stage: str) -> dict[str, Any]:
    """The arguments every airloop DAG shares: owner, retries, tags, no catch-up."""
    if stage not in TAGS:
        raise ValueError(f"unknown stage tag {stage!r}; use one of {TAGS}")
    return {
        "catchup": False,
        "default_args": {**DEFAULT_ARGS, "owner": usecase.owner},
        "tags": ["airloop", stage, f"usecase:{usecase.name}"],
    }


def schedule_bounds(usecase: UseCase) -> tuple[datetime, datetime | None]:
    """When the DAG's intervals start and, for a replayed data set, where its data ends.

    A replay has no data after its window, so the DAG ends there and an unpaused DAG does not
    schedule runs for days that will never land. ``AIRLOOP_REPLAY_END`` moves the end.
    """
    if usecase.replay is None:
        return datetime(2024, 1, 1, tzinfo=UTC), None
    start = datetime.combine(usecase.replay.start, datetime.min.time(), UTC)
    end_day = get_settings().replay_end or usecase.replay.end
    if end_day <= usecase.replay.start:  # moved for another use case's replay
        end_day = usecase.replay.end
    return start, datetime.combine(end_day, datetime.min.time(), UTC) - timedelta(seconds=1)


def data_interval(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The run's data interval, which Airflow hands every task of a scheduled or manual run."""
    if start is None or end is None:
        raise AirflowFailException("this task needs a data interval: run it from its DAG")
    return start, end


def run_stage(stage: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> Any:
    """Call a stage; its result as strict JSON for XCom; permanent errors fail without retries."""
    try:
        result = stage(*args, **kwargs)
    except PermanentError as exc:
        raise AirflowFailException(str(exc)) from exc
    return to_json(result)


def run_lineage() -> dict[str, Any]:
    """Who and what started this run (from the task's context): see :func:`lineage_of`."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    return lineage_of(context["dag_run"], context.get("triggering_asset_events"))


def lineage_of(run: Any, triggering_asset_events: Any = None) -> dict[str, Any]:
    """Who and what started a run: recorded on every MLflow run and model version.

    A run opened by a retrain request also carries the request's id and its reason. Also a
    template macro (``airloop_lineage``), for a stage run in a container.
    """
    triggered_by = getattr(run, "triggered_by", None)
    run_type = getattr(run, "run_type", "unknown")
    trigger = str(getattr(run_type, "value", run_type))
    if triggered_by is not None:
        trigger = f"{trigger}/{getattr(triggered_by, 'value', triggered_by)}"
    lineage: dict[str, Any] = {"dag_id": run.dag_id, "run_id": run.run_id, "trigger": trigger}
    request = request_of(triggering_asset_events)
    if request:
        lineage["retrain_request"] = request.get("request_id")
        lineage["retrain_reason"] = reason_tag(request.get("reasons", []))
    return lineage


REASON_TAG_MAX = 4000  # an MLflow tag's value is bounded; the request keeps the whole reasons


def reason_tag(reasons: list[dict[str, Any]]) -> str:
    """A retrain request's reasons as JSON short enough for an MLflow tag: whole when they
    fit, else each reason's plain figures (check, metric, scores) without its per-feature
    detail, so the tag always parses."""
    text = json.dumps(reasons, sort_keys=True)
    if len(text) <= REASON_TAG_MAX:
        return text
    plain = [{k: v for k, v in r.items() if not isinstance(v, list | dict)} for r in reasons]
    while plain and len(text := json.dumps(plain, sort_keys=True)) > REASON_TAG_MAX:
        plain = plain[:-1]
    return text if plain else "[]"


def triggering_request() -> dict[str, Any] | None:
    """The retrain request (an Asset event's extra) that triggered this run, if any."""
    from airflow.sdk import get_current_context

    return request_of(get_current_context().get("triggering_asset_events"))


def request_of(events: Any) -> dict[str, Any] | None:
    """The extra of the newest of these triggering Asset events, if any."""
    events = events or {}
    found = [event for key in events for event in events[key]]
    if not found:
        return None
    newest = max(found, key=lambda event: event.timestamp)
    return dict(newest.extra or {}) or None


def set_run_note(dag_run: Any, note: str, settings: Settings | None = None) -> None:
    """Put a note on the run (Markdown, shown in the Airflow UI), through the REST API.

    Best effort: it needs the API's credentials, which the embedded profile has; elsewhere the
    note stays in the task's log and return value.
    """
    from airloop.runtime.api import ApiClient

    log.info("run note: %s", note)
    try:
        ApiClient(settings or get_settings()).set_note(dag_run.dag_id, dag_run.run_id, note)
    except Exception as exc:  # the note is a convenience; the task's work is done either way
        log.warning("could not set the run note: %s", exc)
