"""What every group of settings builds on: the profile, the home and the use cases.

The fields here say which profile runs, where its state lives (the home, the shared root) and
which use cases it serves; the other modules of this package add a topic each on top
(:mod:`airloop.settings.folders`, :mod:`airloop.settings.keys`, :mod:`airloop.settings.airflow`,
:mod:`airloop.settings.stores`, :mod:`airloop.settings.serving`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from airloop.core.errors import PermanentError
from airloop.core.paths import checkout_root

Profile = Literal["embedded", "production"]


class SettingsError(PermanentError, ValueError):
    """A setting that is missing or wrong; the message names the variable and what it takes."""


def _default_home() -> Path:
    root = checkout_root()
    return (root if root else Path.cwd()) / ".airloop"


def _default_dags_folder() -> Path:
    root = checkout_root()
    return (root if root else Path.cwd()) / "dags"


def _default_plugins_folder() -> Path:
    root = checkout_root()
    return (root if root else Path.cwd()) / "plugins"


class SettingsBase(BaseSettings):
    """The profile, the home, the shared root and the use cases: what every group reads."""

    model_config = SettingsConfigDict(env_prefix="AIRLOOP_", extra="ignore")

    profile: Profile = "embedded"
    home: Path = Field(default_factory=_default_home)
    # State another host's worker needs (landing, staging, offline store, prediction log,
    # monitoring, reports): on a volume every host mounts. Default: the home.
    shared_root: Path | None = None
    usecase: str = "flights"
    # The use cases one Airflow runs side by side, comma-separated names or paths (default:
    # ``usecase`` alone). The first keeps the plain DAG ids and ``serving_port``; each next one
    # has DAG ids ``<dag>__<name>`` and the next port (airloop.usecase.active).
    usecases: str = ""
    replay_end: date | None = None
    dags_folder: Path = Field(default_factory=_default_dags_folder)
    plugins_folder: Path = Field(default_factory=_default_plugins_folder)
    log_level: str = "WARNING"

    @field_validator("usecase")
    @classmethod
    def _absolute_usecase_path(cls, value: str) -> str:
        return _absolute_ref(value)

    @field_validator("usecases")
    @classmethod
    def _absolute_usecase_paths(cls, value: str) -> str:
        return ",".join(_absolute_ref(ref.strip()) for ref in value.split(",") if ref.strip())

    @property
    def usecase_refs(self) -> list[str]:
        """The use cases this Airflow runs, in order: ``usecases``, else ``usecase`` alone."""
        return self.usecases.split(",") if self.usecases else [self.usecase]

    @property
    def usecase_slot(self) -> int:
        """The active use case's place among :attr:`usecase_refs` (0 when not among them)."""
        refs = self.usecase_refs
        return refs.index(self.usecase) if self.usecase in refs else 0

    @property
    def shared(self) -> Path:
        """The root of the state every host must see: ``shared_root``, else the home."""
        return self.shared_root or self.home

    def environment(self) -> dict[str, str]:
        """Every setting as the ``AIRLOOP_*`` variable that gives it, secrets included.

        Child processes (Airflow components, workers, the service) get these, so they build
        exactly the settings this process has, whatever was set here rather than in the shell.
        """
        env: dict[str, str] = {}
        for name, value in self:
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"AIRLOOP_{name.upper()}"] = (
                value.isoformat() if isinstance(value, date) else str(value)
            )
        return env


def _absolute_ref(value: str) -> str:
    """A use case given by path made absolute: it must mean the same file to every process
    (Airflow's components, workers, the service), whatever their working directory."""
    path = Path(value).expanduser()
    if ("/" in value or path.suffix in (".yaml", ".yml")) and path.exists():
        return str(path.resolve())
    return value
