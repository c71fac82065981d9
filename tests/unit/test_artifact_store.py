"""Where MLflow keeps artifacts, seen from a task, and why a write there would fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from airloop.registry.tracking import (
    ArtifactStoreError,
    artifact_store,
    artifact_store_problem,
    artifacts_stored,
)
from airloop.settings import Settings


def server(tmp_path: Path, destination: str | None) -> Settings:
    return Settings(
        home=tmp_path / "home",
        mlflow_tracking_uri="http://127.0.0.1:9",
        mlflow_artifacts_destination=destination,
    )


def test_the_store_is_the_embedded_root_or_the_servers_destination_when_local(
    tmp_path: Path,
) -> None:
    embedded = Settings(home=tmp_path)
    assert artifact_store(embedded) == Path(embedded.mlflow_artifact_root)
    assert artifact_store(server(tmp_path, f"file://{tmp_path}/art")) == tmp_path / "art"
    assert artifact_store(server(tmp_path, "s3://bucket/art")) is None
    assert artifact_store_problem(server(tmp_path, "s3://bucket/art")) is None


def test_a_missing_store_is_named_and_a_writable_one_has_no_problem(tmp_path: Path) -> None:
    settings = server(tmp_path, f"file://{tmp_path}/art")
    assert artifact_store_problem(settings) == (
        f"the artifact store {tmp_path}/art does not exist or is not a folder"
    )
    (tmp_path / "art").mkdir()
    assert artifact_store_problem(settings) is None
    assert list((tmp_path / "art").iterdir()) == []  # the probe leaves nothing behind


def test_a_failed_write_says_the_reason_when_there_is_one_and_passes_on_otherwise(
    tmp_path: Path,
) -> None:
    settings = server(tmp_path, f"file://{tmp_path}/gone")
    gone = r"gone does not exist .* retry the task"
    with pytest.raises(ArtifactStoreError, match=gone), artifacts_stored(settings):
        raise RuntimeError("too many 500 error responses")
    (tmp_path / "gone").mkdir()
    with pytest.raises(RuntimeError, match="too many 500"), artifacts_stored(settings):
        raise RuntimeError("too many 500 error responses")
