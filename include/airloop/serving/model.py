"""The served model: follows a registry alias, loads new versions in the background, swaps atomically.

A request takes a reference to the current :class:`LoadedModel` once and uses it to the end,
so a swap never changes the model under a request in flight; a failed load leaves the old
model serving and is reported on ``/ready`` and ``/metrics``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from airloop.registry.models import CHAMPION, alias_version
from airloop.registry.tracking import configure
from airloop.settings import Settings

log = logging.getLogger(__name__)
NUMERIC_TYPES = {"double", "float", "long", "integer"}


@dataclass(frozen=True)
class LoadedModel:
    """A loaded version: MLflow's pyfunc, the raw model, and its input columns from the signature."""

    name: str
    version: str
    pyfunc: Any
    raw: Any
    input_columns: list[str]
    numeric_columns: frozenset[str] = frozenset()
    loaded_at: float = field(default_factory=time.time)


class ModelHolder:
    """Holds the current model for an alias and keeps it in step with the registry."""

    def __init__(
        self,
        settings: Settings,
        model_name: str,
        alias: str = CHAMPION,
        poll_seconds: float = 5.0,
    ) -> None:
        self.settings = settings
        self.model_name = model_name
        self.alias = alias
        self.poll_seconds = poll_seconds
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self.failed_loads = 0
        self._failed_version: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def target_version(self) -> str | None:
        """The version the alias points at now."""
        return alias_version(self.settings, self.model_name, self.alias)

    def load(self, version: str) -> LoadedModel:
        """Load a version and read its input columns (and which are numbers) from its signature."""
        import mlflow

        configure(self.settings)
        pyfunc = mlflow.pyfunc.load_model(f"models:/{self.model_name}/{version}")
        schema = pyfunc.metadata.get_input_schema()
        columns = schema.input_names() if schema is not None else []
        numeric = frozenset(
            spec.name
            for spec in (schema.inputs if schema is not None else [])
            if str(getattr(spec.type, "name", spec.type)) in NUMERIC_TYPES
        )
        return LoadedModel(
            self.model_name, version, pyfunc, pyfunc.get_raw_model(), list(columns), numeric
        )

    def refresh(self) -> bool:
        """Load the alias's version if it changed; True when a new model now serves."""
        with self._lock:
            target = self.target_version()
            if target is None:
                if self.current is None:
                    self.last_error = f"no version of {self.model_name!r} has alias {self.alias!r}"
                return False
            if self.current is not None and self.current.version == target:
                return False
            # A version that failed to load is not retried each poll: wait for the alias to move.
            if target == self._failed_version:
                return False
            try:
                loaded = self.load(target)
            except Exception as exc:  # keep serving the old model
                self.failed_loads += 1
                self._failed_version = target
                self.last_error = (
                    f"loading {self.model_name} v{target} failed: {type(exc).__name__}: {exc}"
                )
                log.error(self.last_error)
                return False
            self.current = loaded  # one reference assignment: atomic for readers
            self.last_error = None
            self._failed_version = None
            log.info("now serving %s v%s", self.model_name, target)
            return True

    def start(self) -> None:
        """Load the current version, then follow the alias in a background thread."""
        self.refresh()
        self._thread = threading.Thread(
            target=self._poll, name="airloop-model-refresh", daemon=True
        )
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as exc:  # the poller must survive a registry outage
                self.last_error = f"registry unreachable: {exc}"

    def stop(self) -> None:
        """Stop following the alias."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
