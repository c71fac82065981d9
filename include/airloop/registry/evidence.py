"""Evidence for every decision about the champion, and the history those decisions make.

A promotion, a refusal, a rollback or an approval writes one record: a row in the metadata
database (the history) and the evidence itself, as JSON and as HTML to read, attached to the
model version's MLflow run (``evidence/``) with the version tagged ``airloop.evidence``.

Each event has an effective time: the end of the data the decision was made on (the training
window's end for a promotion), or the wall clock for a hand-made rollback. "Champion at T" is
the newest decision, in the order they were made, effective at or before T.
"""

from __future__ import annotations

import html
import json
import logging
from datetime import UTC, datetime
from typing import Any

from airloop.core.records import Record
from airloop.metadata.ledger import FeedbackLedger
from airloop.metadata.store import MetadataStore
from airloop.registry.tracking import configure
from airloop.settings import Settings
from airloop.usecase import UseCase

log = logging.getLogger(__name__)
EVIDENCE_DIR = "evidence"
CHAMPION_CHANGES = {"promoted", "rolled_back"}


class ModelEvent(Record):
    """One decision about the champion, as the history keeps it."""

    id: int
    usecase: str
    model: str
    kind: str
    version: str
    champion_before: str | None
    champion_after: str | None
    effective_at: datetime
    recorded_at: datetime
    actor: str
    reason: str
    dag_id: str | None = None
    run_id: str | None = None
    evidence_uri: str | None = None
    evidence: dict[str, Any] = {}


def version_label(version: str | int | None) -> str:
    """A model version for people: ``v3``, or ``none`` where there was none (the champion
    before the first promotion, a run that failed before it registered a version)."""
    return "none" if version is None else f"v{version}"


def drift_state(settings: Settings, usecase: UseCase) -> dict[str, Any] | None:
    """Monitoring's latest decision (drift and live performance) when the decision is made."""
    decisions = FeedbackLedger(settings.monitoring_root(usecase.name)).decisions()
    if not decisions:
        return None
    last = decisions[-1]
    return {k: last.get(k) for k in ("interval_start", "interval_end", "action", "detail")} | {
        "request_id": last.get("request_id")
    }


def record_event(
    settings: Settings,
    usecase: UseCase,
    *,
    kind: str,
    version: str,
    champion_before: str | None,
    champion_after: str | None,
    effective_at: datetime,
    actor: str,
    reason: str,
    evidence: dict[str, Any],
    dag_id: str | None = None,
    run_id: str | None = None,
) -> ModelEvent:
    """Keep the decision in the history and attach its evidence to the version's run.

    A retried task finds the event its earlier try recorded (same version, kind and Airflow
    run) and returns it instead of writing a second one.
    """
    store = MetadataStore(settings)
    name = usecase.training.model_name
    if run_id is not None:
        for known in store.model_events(name):
            if (known["version"], known["kind"], known["run_id"]) == (version, kind, run_id):
                return ModelEvent(**known)
    row = {
        "usecase": usecase.name,
        "model": name,
        "kind": kind,
        "version": version,
        "champion_before": champion_before,
        "champion_after": champion_after,
        "effective_at": effective_at.astimezone(UTC),
        "actor": actor,
        "reason": reason,
        "dag_id": dag_id,
        "run_id": run_id,
        "evidence": evidence,
    }
    event = ModelEvent(**store.record_model_event(row))
    uri = attach_evidence(settings, usecase, event)
    if uri:
        store.set_evidence_uri(event.id, uri)
        event = event.model_copy(update={"evidence_uri": uri})
    return event


def attach_evidence(settings: Settings, usecase: UseCase, event: ModelEvent) -> str | None:
    """The event as JSON and HTML in the version's run; best effort (the history has it)."""
    client = configure(settings)
    try:
        mv = client.get_model_version(event.model, event.version)
        stem = f"{EVIDENCE_DIR}/{event.id:05d}-{event.kind}"
        client.log_text(mv.run_id, json.dumps(event.to_dict(), indent=2), f"{stem}.json")
        client.log_text(mv.run_id, render_evidence(event), f"{stem}.html")
        uri = f"runs:/{mv.run_id}/{stem}.json"
        client.set_model_version_tag(event.model, event.version, "airloop.evidence", uri)
    except Exception as exc:  # the history row is the record; the artifact is a copy to read
        log.warning("could not attach the evidence of event %s: %s", event.id, exc)
        return None
    return uri


def history(settings: Settings, usecase: UseCase) -> list[ModelEvent]:
    """Every decision about the use case's model, in the order they were made."""
    return [
        ModelEvent(**e) for e in MetadataStore(settings).model_events(usecase.training.model_name)
    ]


def champion_at(settings: Settings, usecase: UseCase, at: datetime) -> ModelEvent | None:
    """The decision that made the champion serving at ``at`` (None: there was none yet)."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    current = None
    for event in history(settings, usecase):
        if event.kind in CHAMPION_CHANGES and event.effective_at <= at:
            current = event
    return current


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{_cell(v)}</td></tr>" for k, v in value.items()
        )
        return f"<table>{rows}</table>"
    if isinstance(value, list):
        return "<br>".join(_cell(v) for v in value) or "-"
    return html.escape("-" if value is None else str(value))


def render_evidence(event: ModelEvent) -> str:
    """The evidence as a page a reviewer reads."""
    title = f"{event.model} v{event.version}: {event.kind.replace('_', ' ')}"
    summary = {
        "decision": event.kind,
        "champion before": event.champion_before,
        "champion after": event.champion_after,
        "effective at": event.effective_at.isoformat(),
        "recorded at": event.recorded_at.isoformat(),
        "by": event.actor,
        "reason": event.reason,
        "Airflow run": f"{event.dag_id} / {event.run_id}" if event.run_id else None,
    }
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:1.5em}th{text-align:left;padding-right:1em;"
        "vertical-align:top}td,th{border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{_cell(summary)}<h2>Evidence</h2>{_cell(event.evidence)}"
        "</body></html>"
    )
