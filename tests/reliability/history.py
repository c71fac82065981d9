"""The history a training run leaves, read back from the registry and the databases, and the
rules it must satisfy whatever faults the run went through."""

from __future__ import annotations

from typing import Any

from tests.reliability.conftest import MODEL, registry_state
from tests.reliability.servers import PostgresCluster

# The lineage every registered version must carry (a version without them is half-written).
LINEAGE_TAGS = (
    "airloop.run_id",
    "airloop.dag_id",
    "airloop.mlflow_run_id",
    "airloop.window_start",
    "airloop.window_end",
    "airloop.training_set_digest",
    "airloop.feature_service",
    "airloop.validation",
    "airloop.gate",
)


def training_runs(cluster: PostgresCluster, run_id: str) -> list[tuple[str, str]]:
    """The MLflow runs (uuid, status) tagged with this Airflow run id, from the tracking
    server's own database."""
    rows = cluster.sql(
        "SELECT r.run_uuid, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid"
        f" WHERE t.key = 'airloop.run_id' AND t.value = '{run_id}' ORDER BY r.start_time",
        database="mlflow",
    )
    return [(str(uuid), str(status)) for uuid, status in rows]


def model_events(settings: Any, run_id: str) -> list[dict[str, Any]]:
    """The champion decisions recorded for this Airflow run (airloop's metadata database)."""
    from airloop.metadata.store import MetadataStore

    return [e for e in MetadataStore(settings).model_events(MODEL) if e["run_id"] == run_id]


def check_one_run(
    settings: Any, cluster: PostgresCluster, before: dict[str, Any], run_id: str, promoted: bool
) -> str:
    """The run made exactly one version, with its lineage, one finished MLflow run, one
    decision; the versions that were there are untouched; the aliases agree with the
    decision. Returns the new version."""
    after = registry_state(settings)
    new = sorted(set(after["versions"]) - set(before["versions"]), key=int)
    assert len(new) == 1, f"versions made by the run: {new}"
    [version] = new
    tags = after["versions"][version]
    assert tags["airloop.run_id"] == run_id
    missing = [t for t in LINEAGE_TAGS if not tags.get(t)]
    assert not missing, f"v{version} is missing its lineage tags {missing}"
    for old, old_tags in before["versions"].items():
        assert after["versions"][old] == old_tags, f"v{old} changed"
    # One finished MLflow run, the version's; a try that failed may leave its own run, ended
    # as FAILED (never left RUNNING: half-written).
    runs = training_runs(cluster, run_id)
    assert [u for u, status in runs if status == "FINISHED"] == [tags["airloop.mlflow_run_id"]], (
        runs
    )
    assert all(status in ("FINISHED", "FAILED") for _, status in runs), runs
    events = model_events(settings, run_id)
    assert [(e["version"], e["kind"]) for e in events] == [
        (version, "promoted" if promoted else "refused")
    ], events
    aliases = after["aliases"]
    assert aliases["challenger"] == version
    if promoted:
        assert aliases["champion"] == version
        assert aliases.get("previous") == before["aliases"]["champion"]
    else:
        assert aliases["champion"] == before["aliases"]["champion"]
        assert aliases.get("previous") == before["aliases"].get("previous")
    return version
