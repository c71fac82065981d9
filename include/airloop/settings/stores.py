"""The stores: Feast's offline, online store and registry; MLflow's tracking store and artifacts.

Embedded, each is a file or folder in the home (or the shared root); production gives each a
server or a database URL (Redis, Feast's SQL registry, an MLflow tracking server).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from airloop.settings.base import SettingsBase


class Stores(SettingsBase):
    """Where Feast and MLflow keep features, models and runs."""

    # Feast: DuckDB offline store, SQLite (or Redis) online store.
    feast_online_store: Literal["sqlite", "redis"] = "sqlite"
    feast_redis_url: str = "127.0.0.1:6379"
    feast_registry_url: str | None = None
    # Tasks that may write the online store at once: the pool `airloop_online_store`, and how
    # many groups of feature views an interval's materialisation is split into. Default: one
    # with SQLite or the registry file (each takes one writer), two with Redis and the SQL
    # registry (each view its own fields and its own registry row).
    online_store_writers: int | None = Field(default=None, ge=1)

    mlflow_ui_port: int = 8500
    # MLflow: SQLite backend and local artifacts unless a tracking server is given.
    mlflow_tracking_uri: str | None = None
    # The tracking server `airloop up --profile production` runs: its store and artifacts.
    mlflow_backend_store_uri: SecretStr | None = None
    mlflow_artifacts_destination: str | None = None  # default: <shared root>/mlflow-artifacts

    @model_validator(mode="after")
    def _check_online_writers(self) -> Stores:
        if (self.online_store_writers or 1) > 1 and not self.concurrent_online_writes:
            raise ValueError(
                "AIRLOOP_ONLINE_STORE_WRITERS: more than one writer needs the Redis online store "
                "(AIRLOOP_FEAST_ONLINE_STORE=redis) and Feast's SQL registry "
                "(AIRLOOP_FEAST_REGISTRY_URL): SQLite and the registry file take one writer at a time"
            )
        return self

    @property
    def concurrent_online_writes(self) -> bool:
        """Whether tasks may write the online store side by side: Redis keeps each view's
        values and timestamps in fields of their own, and the SQL registry each view's
        materialisation record in a row of its own."""
        registry = self.feast_registry_url or ""
        return self.feast_online_store == "redis" and "://" in registry

    @property
    def online_writers(self) -> int:
        """The online store's writers at once (:attr:`online_store_writers`, else by store)."""
        if self.online_store_writers is not None:
            return self.online_store_writers
        return 2 if self.concurrent_online_writes else 1

    @property
    def feast_dir(self) -> Path:
        """Feast's repo path: the offline store, and the embedded registry and online store."""
        return self.home / "feast"

    @property
    def offline_dir(self) -> Path:
        """The offline store's Parquet partitions (every worker writes its own intervals)."""
        return self.shared / "feast" / "offline"

    @property
    def online_store_path(self) -> Path:
        """The embedded (SQLite) online store."""
        return self.feast_dir / "online.db"

    @property
    def feast_registry(self) -> str:
        """The Feast registry: the given SQL URL, else a file in the home."""
        return self.feast_registry_url or str(self.feast_dir / "registry.db")

    @property
    def mlflow_dir(self) -> Path:
        """The embedded MLflow store: its SQLite DB and artifacts."""
        return self.home / "mlflow"

    @property
    def tracking_uri(self) -> str:
        """MLflow's tracking and registry URI: the given server, else SQLite in the home."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> str:
        """Where the embedded MLflow keeps artifacts."""
        return str(self.mlflow_dir / "artifacts")

    @property
    def mlflow_ui_url(self) -> str:
        """Where people browse runs and models: the tracking server, else the local MLflow UI."""
        if self.tracking_uri.startswith(("http://", "https://")):
            return self.tracking_uri.rstrip("/")
        return f"http://127.0.0.1:{self.mlflow_ui_port}"

    @property
    def mlflow_artifacts(self) -> str:
        """Where the tracking server keeps artifacts: the given URI, else the shared root."""
        return self.mlflow_artifacts_destination or (self.shared / "mlflow-artifacts").as_uri()
