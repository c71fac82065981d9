"""The airloop page's HTML: per use case, what serves, why, what drifted, and what made it.

Pure rendering from the stores (MLflow, the metadata database, the monitoring ledger); the
Airflow plugin (``airloop.orchestration.webui``) serves it behind Airflow's login. Every link
is relative (``root`` climbs to the plugin's root, ``root + "../"`` to Airflow's), so the page
works when Airflow is served under a sub-path. Links to Airflow open in the top window.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from airloop.core.html import html_table
from airloop.data.intervals import as_utc, partition_key
from airloop.lineage.chain import Link, model_lineage
from airloop.metadata.ledger import FeedbackLedger
from airloop.metadata.store import MetadataStore
from airloop.monitoring.checks import interval_dir
from airloop.monitoring.report.charts import history_plot
from airloop.monitoring.report.history import history_frame
from airloop.monitoring.report.page import STYLE
from airloop.registry.evidence import ModelEvent, history, render_evidence, version_label
from airloop.registry.models import CHALLENGER, CHAMPION, alias_version
from airloop.registry.tracking import configure
from airloop.serving.client import service_alive
from airloop.settings import Settings
from airloop.usecase import UseCase, dag_id

PARTITION = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{4})?$")
PAGE_STYLE = STYLE + (
    "h1{font-size:22px}h2{font-size:17px;margin-top:1.6em}.ok{color:#070}.broken{color:#b00}"
    ".changed{color:#a60}ul.tree{list-style:none;padding-left:1.2em}.card{display:inline-block;"
    "vertical-align:top;border:1px solid #ccc;border-radius:6px;padding:8px 14px;margin:4px}"
)


def _partition(iso: str) -> str:
    return partition_key(datetime.fromisoformat(iso))


def report_page(settings: Settings, usecase: UseCase, partition: str) -> str | None:
    """A monitored interval's report, by its partition key (None: no such report)."""
    if not PARTITION.match(partition):
        return None
    start = as_utc(datetime.fromisoformat(partition))
    path = interval_dir(settings, usecase, start) / "report.html"
    return path.read_text() if path.is_file() else None


def _v(version: str | None) -> str:
    return _e(version_label(version))


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{PAGE_STYLE}</style></head><body>{body}</body></html>"
    )


def airflow_run_link(root: str, dag_id: str | None, run_id: str | None) -> str:
    """A link to a DAG run in Airflow's UI, relative to the page, opening in the top window."""
    if not dag_id or not run_id:
        return ""
    href = f"{root}../dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return f'<a target="_top" href="{_e(href)}">{_e(run_id)}</a>'


def _mlflow_version_link(settings: Settings, name: str, version: str | None) -> str:
    if version is None:
        return "none"
    url = f"{settings.mlflow_ui_url}/#/models/{quote(name)}/versions/{version}"
    return f'<a target="_blank" href="{_e(url)}">v{_e(version)}</a>'


def _version_card(settings: Settings, usecase: UseCase, alias: str) -> str:
    name = usecase.training.model_name
    version = alias_version(settings, name, alias)
    if version is None:
        return f"<div class='card' id='{alias}'><b>{alias}</b>: none yet</div>"
    client = configure(settings)
    mv = client.get_model_version(name, version)
    run = client.get_run(mv.run_id)
    metrics = {
        k.removeprefix("test_"): v for k, v in run.data.metrics.items() if k.startswith("test_")
    }
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{v:.4f}</td></tr>" for k, v in sorted(metrics.items()))
    promotion = mv.tags.get("airloop.promotion", "")
    return (
        f"<div class='card' id='{alias}'><b>{alias}</b>: "
        f"{_mlflow_version_link(settings, name, version)}"
        f"<table>{rows}</table><small>{_e(promotion)}</small></div>"
    )


def _for(usecase: UseCase) -> str:
    """The query that keeps a link on this use case's page (one Airflow may run several)."""
    return f"?usecase={quote(usecase.name, safe='')}"


def _events_table(root: str, usecase: UseCase, events: list[ModelEvent]) -> str:
    rows = "".join(
        "<tr>"
        f"<td>{e.effective_at:%Y-%m-%d %H:%M}</td><td>{_e(e.kind)}</td><td>v{_e(e.version)}</td>"
        f"<td>{_v(e.champion_before)} → {_v(e.champion_after)}</td><td>{_e(e.actor)}</td>"
        f"<td>{_e(e.reason)}</td><td>{airflow_run_link(root, e.dag_id, e.run_id)}</td>"
        f"<td><a href='{root}evidence/{e.id}{_for(usecase)}'>evidence</a></td></tr>"
        for e in reversed(events)
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("effective", "decision", "version", "champion", "by", "reason", "run", "")
    )
    return f"<table id='promotions'><tr>{head}</tr>{rows}</table>"


def _requests_table(root: str, training_dag: str, requests: list[dict[str, Any]]) -> str:
    rows = []
    for r in reversed(requests):
        outcome = r.get("outcome") or {}
        checks = ", ".join(str(x.get("check")) for x in r.get("reasons", []))
        rows.append(
            "<tr>"
            f"<td>{_e(r['request_id'])}</td><td>{_e(r.get('interval_start'))}</td>"
            f"<td>{_e(checks)}</td><td>{_e(r.get('status'))}</td>"
            f"<td>{_e(outcome.get('result'))} {_e(outcome.get('version') or '')}</td>"
            f"<td>{airflow_run_link(root, training_dag, outcome.get('dag_run_id'))}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("request", "interval", "checks", "status", "outcome", "training run")
    )
    return f"<table id='requests'><tr>{head}</tr>{''.join(rows)}</table>"


def overview(
    settings: Settings, usecase: UseCase, root: str = "", usecases: Sequence[str] = ()
) -> str:
    """The use case at a glance: champion, challenger, serving, drift, requests, decisions;
    links to the other ``usecases`` this Airflow runs."""
    ledger = FeedbackLedger(settings.monitoring_root(usecase.name))
    requests, decisions = ledger.requests(), ledger.decisions()
    frame = history_frame(settings, usecase)
    latest = decisions[-1] if decisions else None
    serving = "up" if service_alive(settings) else "not running"
    drift = (
        f"{_e(latest['action'])} for the interval from {_e(latest['interval_start'])}: "
        f"{_e(latest.get('detail'))} (<a href='{root}report/"
        f"{_partition(latest['interval_start'])}{_for(usecase)}'>"
        "report</a>)"
        if latest
        else "not monitored yet"
    )
    others = " | ".join(
        f"<b>{_e(name)}</b>"
        if name == usecase.name
        else f"<a href='{root}?usecase={quote(name, safe='')}'>{_e(name)}</a>"
        for name in usecases
    )
    body = f"""<h1>airloop: {_e(usecase.name)}</h1><p>{_e(usecase.description)}</p>
{f"<p id='usecases'>Use cases: {others}</p>" if len(usecases) > 1 else ""}
<h2>Models</h2>{_version_card(settings, usecase, CHAMPION)}{_version_card(settings, usecase, CHALLENGER)}
<p id="serving">Serving: <b>{serving}</b> at {_e(settings.serving_url)}</p>
<h2>Drift and live performance</h2><p id="drift">Latest: {drift}</p>
{history_plot(frame, requests) if not frame.empty else "<p>No monitored intervals yet.</p>"}
<h2>Retrain requests</h2>{_requests_table(root, dag_id("model_training", usecase, settings), requests)}
<h2>Promotions, refusals and rollbacks</h2>{_events_table(root, usecase, history(settings, usecase))}"""
    return _page(f"airloop: {usecase.name}", body)


def _tree(link: Link, root: str) -> str:
    ref = _e(link.ref)
    if link.url and link.url.startswith("dags/"):
        ref = f'<a target="_top" href="{_e(root)}../{_e(link.url)}">{ref}</a>'
    elif link.url:
        ref = f'<a target="_blank" href="{_e(link.url)}">{ref}</a>'
    problem = f" <i>({_e(link.problem)})</i>" if link.problem else ""
    children = "".join(_tree(c, root) for c in link.links)
    inner = f"<ul class='tree'>{children}</ul>" if children else ""
    return f"<li class='{link.status}'>{_e(link.kind)}: {ref}{problem}{inner}</li>"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def _tasks_table(settings: Settings, rows: list[dict[str, Any]]) -> str:
    def mlflow(ids: list[str] | None) -> str:
        return " ".join(
            f'<a target="_blank" href="{_e(settings.mlflow_ui_url)}/#/runs/{_e(i)}">{_e(i[:8])}</a>'
            for i in ids or []
        )

    body = "".join(
        f"<tr><td>{_e(r['task_id'])}</td><td>{r['try_number']}</td><td>{_e(r['state'])}</td>"
        f"<td>{_seconds(r['duration'])}</td>"
        f"<td>{_e(r['hostname'])}</td><td>{_e(r['executor'])}</td><td>{mlflow(r['mlflow_run_ids'])}</td></tr>"
        for r in rows
    )
    head = "".join(
        f"<th>{h}</th>" for h in ("task", "try", "state", "duration", "host", "executor", "MLflow")
    )
    return f"<table id='tasks'><tr>{head}</tr>{body}</table>"


def run_page(
    settings: Settings, usecase: UseCase, dag: str, run_id: str, root: str = "../../"
) -> str:
    """One DAG run: its tasks' records and, by DAG, the model it made or the report it wrote."""
    tasks = MetadataStore(settings).task_runs(dag, run_id)
    parts = [f"<h1>{_e(dag)}: {_e(run_id)}</h1>"]
    if not tasks:
        parts.append("<p>airloop recorded no task of this run.</p>")
    else:
        parts.append(f"<h2>Tasks</h2>{_tasks_table(settings, tasks)}")
    if dag == dag_id("model_training", usecase, settings):
        parts.append(_training_section(settings, usecase, run_id, root))
    elif (
        dag == dag_id("monitoring", usecase, settings)
        and tasks
        and tasks[0]["data_interval_start"] is not None
    ):
        start = tasks[0]["data_interval_start"]
        decision = FeedbackLedger(settings.monitoring_root(usecase.name)).decision_for(start)
        if decision:
            parts.append(
                f"<h2>Decision</h2><p id='decision'><b>{_e(decision['action'])}</b>: "
                f"{_e(decision.get('detail'))}</p>"
                f"<p><a href='{root}report/{partition_key(start)}{_for(usecase)}'>"
                "The interval's monitoring report</a></p>"
            )
    elif dag == dag_id("feature_pipeline", usecase, settings):
        rows = [r for r in MetadataStore(settings).intervals(usecase.name) if r["run_id"] == run_id]
        for r in rows:
            parts.append(
                f"<h2>Interval {_e(r['partition'])}</h2>"
                + html_table(
                    [{"source": k, **v} for k, v in r["raw"].items()],
                    ["source", "sha256", "bytes", "landed"],
                )
                + f"<p>validation: {_e(r['validation'])}</p>"
            )
    return _page(f"{dag} {run_id}", "".join(parts))


def _training_section(settings: Settings, usecase: UseCase, run_id: str, root: str) -> str:
    client = configure(settings)
    name = usecase.training.model_name
    found = client.search_model_versions(f"name = '{name}' and tags.`airloop.run_id` = '{run_id}'")
    if not found:
        return "<h2>Model</h2><p>This run registered no model version (see the tasks above).</p>"
    version = str(found[0].version)
    events = [e for e in history(settings, usecase) if e.run_id == run_id]
    decided = (
        "".join(
            f"<p id='decision'><b>{_e(e.kind)}</b>: {_e(e.reason)} "
            f"(<a href='{root}evidence/{e.id}{_for(usecase)}'>evidence</a>)</p>"
            for e in events
        )
        or "<p>No promotion decision recorded.</p>"
    )
    chain = model_lineage(settings, usecase, f"models:/{name}/{version}")
    return (
        f"<h2>Model</h2><p id='version'>This run made {_mlflow_version_link(settings, name, version)}"
        f" of {_e(name)}.</p>{decided}<h2>Lineage</h2><ul class='tree'>{_tree(chain, root)}</ul>"
    )


def evidence_page(settings: Settings, usecase: UseCase, event_id: int) -> str | None:
    """One decision's evidence, as attached to the model version."""
    event = next((e for e in history(settings, usecase) if e.id == event_id), None)
    return None if event is None else render_evidence(event)
