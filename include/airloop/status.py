"""What airloop holds right now: runs, validated and quarantined rows, store contents.

Read straight from the stores (and Airflow's metadata DB), so it works with Airflow stopped.
Reading state writes nothing: not even the keys the Airflow components share.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from airloop.core.http import answers
from airloop.quality.gate import validation_report_path
from airloop.settings import Settings
from airloop.usecase import UseCase, dag_id


def _dag_runs(settings: Settings) -> dict[str, dict[str, int]] | None:
    from sqlalchemy import create_engine, text

    url = settings.airflow_db_conn
    if url.startswith("sqlite:///") and not settings.airflow_home.joinpath("airflow.db").exists():
        return None
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT dag_id, state, COUNT(*) FROM dag_run GROUP BY dag_id, state")
            ).fetchall()
    except Exception:  # no DB yet, or not migrated: nothing has run
        return None
    finally:
        engine.dispose()
    out: dict[str, dict[str, int]] = {}
    for dag, state, count in rows:
        out.setdefault(dag, {})[str(state)] = int(count)
    return out


def _validation(settings: Settings, usecase: UseCase) -> dict[str, Any]:
    passed: list[str] = []
    failed: list[str] = []
    rows = 0
    for path in sorted(validation_report_path(settings, usecase.name, "*").parent.glob("*.json")):
        report = json.loads(path.read_text())
        if report.get("usecase") != usecase.name:
            continue
        (passed if report["success"] else failed).append(report["partition"])
        if report["success"]:
            rows += sum(report["rows"].get(s, 0) for s in usecase.partitioned_sources)
    quarantined: list[dict[str, Any]] = []
    qroot = settings.quarantine_dir / usecase.name
    for report_path in sorted(qroot.glob("*/report.json")):
        report = json.loads(report_path.read_text())
        quarantined.append(
            {
                "partition": report["partition"],
                "rows": sum(report["rows"].get(s, 0) for s in usecase.partitioned_sources),
                "reasons": [f"{f['source']}: {f['reason']}" for f in report["failures"]],
                "report": str(report_path),
                "data_docs": report.get("data_docs"),
            }
        )
    return {
        "partitions_passed": len(passed),
        "partitions_failed": len(failed),
        "rows_validated": rows,
        "rows_quarantined": sum(q["rows"] for q in quarantined),
        "quarantined": quarantined,
    }


def _offline(settings: Settings, usecase: UseCase) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from airloop.features.offline import offline_root

    tables: dict[str, Any] = {}
    root = offline_root(settings, usecase)
    for table_dir in sorted(p for p in root.glob("*") if p.is_dir()):
        files = sorted(table_dir.glob("*.parquet"))
        tables[table_dir.name] = {
            "partitions": len(files),
            "rows": sum(pq.ParquetFile(f).metadata.num_rows for f in files),
            "first": files[0].stem if files else None,
            "last": files[-1].stem if files else None,
        }
    return {"path": str(root), "tables": tables}


def _count_entities(table: str) -> str:
    """SQLite's count of a table's distinct entities, the table's name quoted by SQLAlchemy."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import sqlite

    stmt = sa.select(sa.func.count(sa.distinct(sa.column("entity_key")))).select_from(
        sa.table(table)
    )
    return str(stmt.compile(dialect=sqlite.dialect()))


def _online(settings: Settings, usecase: UseCase) -> dict[str, Any]:
    if settings.feast_online_store != "sqlite":
        return {"store": settings.feast_online_store, "entities": None}
    path = settings.online_store_path
    counts: dict[str, int] = {}
    if path.exists():
        with sqlite3.connect(path) as conn:
            for view in usecase.feature_views:
                table = f"{usecase.name}_{view.name}"
                try:
                    (n,) = conn.execute(_count_entities(table)).fetchone()
                except sqlite3.OperationalError:
                    n = 0
                counts[view.name] = int(n)
    return {"store": "sqlite", "path": str(path), "entities": counts}


def collect_status(settings: Settings, usecase: UseCase) -> dict[str, Any]:
    """Everything ``airloop status --json`` prints, read from the stores."""
    return {
        "usecase": usecase.name,
        "home": str(settings.home),
        "airflow": {"url": settings.api_base_url, "dag_runs": _dag_runs(settings)},
        "validation": _validation(settings, usecase),
        "offline_store": _offline(settings, usecase),
        "online_store": _online(settings, usecase),
        "champion": _champion(settings, usecase),
        "monitoring": _monitoring(settings, usecase),
    }


def _champion(settings: Settings, usecase: UseCase) -> dict[str, Any] | None:
    if settings.mlflow_tracking_uri is None and not (settings.mlflow_dir / "mlflow.db").exists():
        return None
    if settings.mlflow_tracking_uri is not None and not answers(
        f"{settings.tracking_uri.rstrip('/')}/health"
    ):
        return None  # a tracking server that is not running knows no champion now
    from airloop.registry.models import describe_champion

    return describe_champion(settings, usecase)


def _monitoring(settings: Settings, usecase: UseCase) -> dict[str, Any]:
    """Monitored intervals, breaches and every retrain request with its reason and outcome."""
    from airloop.metadata.ledger import FeedbackLedger

    root = settings.monitoring_root(usecase.name)
    ledger = FeedbackLedger(root)
    decisions = ledger.decisions()
    actions: dict[str, int] = {}
    for decision in decisions:
        actions[decision["action"]] = actions.get(decision["action"], 0) + 1
    return {
        "path": str(root),
        "intervals": len(decisions),
        "breaches": sum(1 for d in decisions if d["breach"]),
        "actions": actions,
        "requests": [
            {
                "request_id": r["request_id"],
                "interval_end": r["interval_end"],
                "checks": [reason["check"] for reason in r.get("reasons", [])],
                "status": r.get("status"),
                "outcome": (r.get("outcome") or {}).get("result"),
                "version": (r.get("outcome") or {}).get("version"),
            }
            for r in ledger.requests()
        ],
    }


LINEAGE_SHOWN = (
    "window_start",
    "window_end",
    "feature_service",
    "training_set_digest",
    "dag_id",
    "run_id",
    "mlflow_run_id",
    "git_commit",
    "promotion",
    "deploy",
    "retrain_request",
)


def up_command(settings: Settings) -> str:
    """``make up``, or the ``airloop up`` that brings back this home and use case."""
    defaults = Settings.model_fields
    home = settings.home != defaults["home"].default_factory()  # type: ignore[misc,call-arg]
    usecase = settings.usecase != defaults["usecase"].default
    if not (home or usecase or settings.usecases):
        return "make up"
    prefix = f"AIRLOOP_HOME={settings.home} " if home else ""
    if settings.usecases:
        prefix += f"AIRLOOP_USECASES={settings.usecases} "
    option = f"--usecase {settings.usecase} " if usecase else ""
    return f"{prefix}.venv/bin/airloop {option}up"


def summary_lines(
    settings: Settings, usecase: UseCase, state: dict[str, Any], elapsed: float
) -> list[str]:
    """The state as people read it: what ``airloop status`` and the end of the demo print."""
    pipeline = dag_id("feature_pipeline", usecase, settings)
    runs = (state["airflow"]["dag_runs"] or {}).get(pipeline, {})
    val = state["validation"]
    lines = [
        "",
        f"== airloop: {usecase.name} ==",
        f"intervals run:        {runs.get('success', 0)} succeeded, {runs.get('failed', 0)} failed",
        f"rows validated:       {val['rows_validated']:,} in {val['partitions_passed']} partitions",
        f"rows quarantined:     {val['rows_quarantined']:,} in {len(val['quarantined'])} partitions",
    ]
    for name, table in state["offline_store"]["tables"].items():
        lines.append(
            f"offline {name:<20} {table['rows']:>9,} rows in {table['partitions']} partitions"
        )
    for name, count in (state["online_store"]["entities"] or {}).items():
        lines.append(f"online  {name:<20} {count:>9,} entities")
    champion = state.get("champion")
    if champion:
        metrics = ", ".join(
            f"{k.removeprefix('test_')} {v:.3f}" for k, v in sorted(champion["metrics"].items())
        )
        lines.append(f"champion:             {champion['name']} v{champion['version']} ({metrics})")
        lines.append(f"  aliases:            {champion['aliases']}")
        lineage = champion["lineage"]
        lines += [f"  {key + ':':<19} {lineage[key]}" for key in LINEAGE_SHOWN if key in lineage]
    monitoring = state["monitoring"]
    if monitoring["intervals"]:
        actions = ", ".join(f"{k} {v}" for k, v in monitoring["actions"].items())
        lines.append(
            f"monitored intervals:  {monitoring['intervals']}, {monitoring['breaches']} breached"
            f" a threshold ({actions})"
        )
        for request in monitoring["requests"]:
            version = f"v{request['version']} " if request["version"] else ""
            lines.append(
                f"  {request['request_id']}: {', '.join(request['checks'])} → "
                f"{version}{request['outcome'] or request['status']}"
            )
    lines += [
        f"seconds taken:        {elapsed:.0f}",
        "",
        "where to look next:",
        f"  {up_command(settings)}   the Airflow UI with these runs",
        "  airloop status --json    this summary as JSON",
        f"  {state['offline_store']['path']}   the offline store (Parquet, one file per interval)",
        f"  {validation_report_path(settings, usecase.name, '*').parent}   validation reports",
        (
            f"  {settings.mlflow_ui_url}   MLflow: runs, models, lineage"
            if settings.mlflow_tracking_uri
            else f"  .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri}   runs, models, lineage"
        ),
    ]
    return lines
