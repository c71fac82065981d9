"""End-to-end lineage (P4): from a model version back to its data and code, every link checked.

model version → training run → Airflow run and its trigger (schedule, hand, or a retrain
request and its reason) → training set (digest, window) → feature service and views (their
digest in the Feast registry) → the feature-pipeline runs of the window's intervals → their
validation → the raw partitions' digests; and the git commit and lock hash. A link that does
not resolve is reported as broken, with what is missing; the walk goes on past it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from airloop.core.columns import EVENTS_TABLE
from airloop.core.records import Record
from airloop.data.intervals import as_utc, partition_key
from airloop.features.offline import partitions_in
from airloop.metadata.ledger import FeedbackLedger
from airloop.metadata.store import MetadataStore
from airloop.registry.models import feature_view_versions
from airloop.registry.tracking import configure
from airloop.settings import Settings
from airloop.usecase import UseCase

Status = Literal["ok", "broken", "changed"]
REF = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


class LineageError(ValueError):
    """The reference names no model version (the message says what form it takes)."""


class Link(Record):
    """One step of the chain: what it is, whether it resolved, and what hangs off it."""

    kind: str
    ref: str
    status: Status = "ok"
    problem: str | None = None
    detail: dict[str, Any] = {}
    url: str | None = None
    links: list[Link] = []

    def broken(self) -> list[Link]:
        """This link and every link under it that did not resolve."""
        own = [self] if self.status == "broken" else []
        return own + [b for link in self.links for b in link.broken()]


def parse_ref(ref: str, usecase: UseCase) -> tuple[str, str | None, str | None]:
    """``models:/name@alias``, ``models:/name/3``, or just ``@champion`` / ``3`` for the use case."""
    if ref.startswith("@"):
        return usecase.training.model_name, ref[1:], None
    if ref.isdigit():
        return usecase.training.model_name, None, ref
    match = REF.match(ref)
    if match is None:
        raise LineageError(
            f"{ref!r} is not a model reference: use models:/<name>@<alias>, "
            "models:/<name>/<version>, @<alias> or a version number"
        )
    return match["name"], match["alias"], match["version"]


def model_lineage(settings: Settings, usecase: UseCase, ref: str) -> Link:
    """The whole chain behind a model version."""
    name, alias, version = parse_ref(ref, usecase)
    client = configure(settings)
    try:
        mv = (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, version)
        )
    except Exception as exc:  # MLflow's not-found error
        return Link(kind="model version", ref=ref, status="broken", problem=str(exc))
    tags = {k.removeprefix("airloop."): v for k, v in mv.tags.items() if k.startswith("airloop.")}
    return Link(
        kind="model version",
        ref=f"models:/{name}/{mv.version}",
        detail={
            "aliases": list(getattr(mv, "aliases", []) or []),
            "gate": tags.get("gate"),
            "promotion": tags.get("promotion"),
            "evidence": tags.get("evidence"),
        },
        links=[
            _training_run(settings, usecase, client, mv.run_id, tags),
            _code(tags),
        ],
    )


def _training_run(
    settings: Settings, usecase: UseCase, client: Any, run_id: str | None, tags: dict[str, str]
) -> Link:
    try:
        run = client.get_run(run_id)
    except Exception as exc:
        return Link(kind="training run", ref=str(run_id), status="broken", problem=str(exc))
    return Link(
        kind="training run",
        ref=run.info.run_id,
        url=f"{settings.mlflow_ui_url}/#/experiments/{run.info.experiment_id}/runs/{run_id}",
        detail={
            "config": json.loads(tags.get("config", "null")),
            "source": tags.get("config_source"),
        },
        links=[
            _airflow_run(settings, tags),
            _trigger(settings, usecase, tags),
            _training_set(settings, usecase, tags),
        ],
    )


def _airflow_run(settings: Settings, tags: dict[str, str]) -> Link:
    dag_id, run_id = tags.get("dag_id"), tags.get("run_id")
    if not dag_id or not run_id:
        return Link(kind="Airflow run", ref="none", detail={"note": "trained outside Airflow"})
    tasks = MetadataStore(settings).task_runs(dag_id, run_id)
    ref = f"{dag_id}/{run_id}"
    if not tasks:
        return Link(
            kind="Airflow run",
            ref=ref,
            status="broken",
            problem="no task of this run is recorded in the metadata database",
        )
    return Link(
        kind="Airflow run",
        ref=ref,
        url=f"dags/{dag_id}/runs/{run_id}",
        detail={
            "tasks": {t["task_id"]: t["state"] for t in tasks},
            "hosts": sorted({t["hostname"] for t in tasks if t["hostname"]}),
        },
    )


def _trigger(settings: Settings, usecase: UseCase, tags: dict[str, str]) -> Link:
    trigger = tags.get("trigger", "unknown")
    request_id = tags.get("retrain_request")
    if not request_id:
        return Link(kind="trigger", ref=trigger)
    request = FeedbackLedger(settings.monitoring_root(usecase.name)).request(request_id)
    if request is None:
        return Link(
            kind="trigger",
            ref=f"retrain request {request_id}",
            status="broken",
            problem="the request is not in the monitoring ledger",
        )
    return Link(
        kind="trigger",
        ref=f"retrain request {request_id}",
        detail={
            "reasons": request.get("reasons"),
            "opened for interval": [request.get("interval_start"), request.get("interval_end")],
            "status": request.get("status"),
        },
    )


def _training_set(settings: Settings, usecase: UseCase, tags: dict[str, str]) -> Link:
    from airloop.training.dataset import file_digest

    uri, digest = tags.get("training_set_uri", ""), tags.get("training_set_digest")
    start, end = tags.get("window_start"), tags.get("window_end")
    link = Link(kind="training set", ref=str(digest), detail={"window": [start, end], "uri": uri})
    if not uri or not Path(uri).exists():
        link = link.model_copy(update={"status": "broken", "problem": f"{uri or 'no uri'} is gone"})
    elif file_digest(uri) != digest:
        link = link.model_copy(
            update={
                "status": "broken",
                "problem": "the file's digest differs from the recorded one",
            }
        )
    children = [_features(settings, usecase, tags)]
    if start and end:
        lo, hi = as_utc(datetime.fromisoformat(start)), as_utc(datetime.fromisoformat(end))
        children += _intervals(settings, usecase, lo, hi)
    return link.model_copy(update={"links": children})


def _features(settings: Settings, usecase: UseCase, tags: dict[str, str]) -> Link:
    service = tags.get("feature_service", "")
    recorded: dict[str, str] = json.loads(tags.get("feature_views", "{}"))
    try:
        current = json.loads(feature_view_versions(settings, usecase))
    except Exception as exc:  # a view missing from the registry
        return Link(kind="feature service", ref=service, status="broken", problem=str(exc))
    views = [
        Link(
            kind="feature view",
            ref=f"{name}@{digest}",
            status="ok"
            if current.get(name) == digest
            else ("changed" if name in current else "broken"),
            problem=None
            if current.get(name) == digest
            else (
                f"its definition changed since (now {current[name]})"
                if name in current
                else "no longer in the Feast registry"
            ),
        )
        for name, digest in sorted(recorded.items())
    ]
    return Link(kind="feature service", ref=service, links=views)


def _intervals(settings: Settings, usecase: UseCase, lo: datetime, hi: datetime) -> list[Link]:
    """Every offline partition in the window needs the feature-pipeline run that published it."""
    recorded = {r["partition"]: r for r in MetadataStore(settings).intervals(usecase.name, lo, hi)}
    links = []
    for path in partitions_in(settings, usecase, EVENTS_TABLE, lo, hi):
        key = path.stem
        row = recorded.get(key)
        if row is None:
            links.append(
                Link(
                    kind="feature-pipeline run",
                    ref=key,
                    status="broken",
                    problem="the partition is in the offline store but no run record says what made it",
                )
            )
            continue
        links.append(_interval(row))
    if not links:
        links.append(
            Link(
                kind="feature-pipeline run",
                ref=f"{partition_key(lo)}..{partition_key(hi)}",
                status="broken",
                problem="no offline partitions in the training window",
            )
        )
    return links


def _interval(row: dict[str, Any]) -> Link:
    validation = row["validation"]
    report = validation.get("report")
    valid = Link(
        kind="validation",
        ref=str(report),
        detail={"success": validation.get("success"), "rows": validation.get("rows")},
    )
    if not report or not Path(report).exists():
        valid = valid.model_copy(update={"status": "broken", "problem": "the report is gone"})
    raw = [
        Link(kind="raw partition", ref=f"{name}: {f.get('sha256', '')[:16]}", detail=f)
        if f.get("sha256")
        else Link(kind="raw partition", ref=name, status="broken", problem="no digest recorded")
        for name, f in sorted(row["raw"].items())
    ]
    run = f"{row['dag_id']}/{row['run_id']}" if row.get("run_id") else str(row.get("trigger"))
    return Link(
        kind="feature-pipeline run",
        ref=row["partition"],
        url=f"dags/{row['dag_id']}/runs/{row['run_id']}" if row.get("run_id") else None,
        detail={"run": run, "recorded_at": str(row["recorded_at"])},
        links=[valid, *raw],
    )


def _code(tags: dict[str, str]) -> Link:
    commit, lock = tags.get("git_commit"), tags.get("lock_hash")
    if not commit or not lock:
        return Link(kind="code", ref="unknown", status="broken", problem="no commit or lock hash")
    return Link(kind="code", ref=commit, detail={"lock_hash": lock})


def render_text(link: Link, depth: int = 0) -> list[str]:
    """The chain as an indented tree, broken links marked."""
    mark = {"ok": "✓", "broken": "✗", "changed": "~"}[link.status]
    line = f"{'  ' * depth}{mark} {link.kind}: {link.ref}"
    if link.problem:
        line += f"  ({link.problem})"
    return [line] + [line for child in link.links for line in render_text(child, depth + 1)]
