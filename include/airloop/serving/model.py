"""The served model: follows a registry alias, loads new versions in the background, swaps atomically.

A request takes a reference to the current :class:`LoadedModel` once and uses it to the end,
so a swap never changes the model under a request in flight; a failed load leaves the old
model serving and is reported on ``/ready`` and ``/metrics``.

No request waits for the registry: the poller runs in its own thread, and while the registry
does not answer the champion already loaded keeps serving. Each of the poller's calls is
bounded (MLflow's client otherwise retries 7 times with exponential backoff and waits up to
120 s a try: minutes per call, :data:`REGISTRY_CALLS`), and the poller backs off between
polls that failed, up to :data:`MAX_BACKOFF_SECONDS`.

The version replaced stays loaded (:data:`KEEP_LOADED`): a rollback, which puts it back, swaps
within one poll instead of waiting for a download.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from airloop.registry.models import CHAMPION, RegistryUnreachable, alias_version
from airloop.registry.tracking import configure
from airloop.settings import Settings

log = logging.getLogger(__name__)
NUMERIC_TYPES = {"double", "float", "long", "integer"}
# MLflow's HTTP client, in the serving process (an operator's own setting wins): one retry
# (urllib3 waits before a second retry only), 10 s without an answer is a failure. The next
# poll is the retry after that.
REGISTRY_CALLS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
MAX_BACKOFF_SECONDS = 60.0
KEEP_LOADED = 2  # the champion and the one before it: what a rollback puts back
UNREACHABLE = "registry unreachable"


def bound_registry_calls() -> None:
    """Bound MLflow's HTTP calls in this process (:data:`REGISTRY_CALLS`)."""
    for name, value in REGISTRY_CALLS.items():
        os.environ.setdefault(name, value)


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
        self.failed_polls = 0  # in a row: the registry did not answer
        self._failed_version: str | None = None
        self._loaded: dict[str, LoadedModel] = {}  # by version, the most recent last
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def target_version(self) -> str | None:
        """The version the alias points at now; None when the model or alias does not exist.
        An outage raises :class:`RegistryUnreachable`: the poller backs off and says so."""
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
            try:
                target = self.target_version()
            except RegistryUnreachable as exc:
                self.failed_polls += 1
                serving = f"v{self.current.version} keeps serving" if self.current else "no model"
                self.last_error = f"{UNREACHABLE} ({serving}): {exc}"
                log.warning(self.last_error)
                return False
            self.failed_polls = 0
            if self.last_error is not None and self.last_error.startswith(UNREACHABLE):
                self.last_error = None  # it answers again
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
                loaded = self._loaded.pop(target, None) or self.load(target)
            except Exception as exc:  # keep serving the old model
                self.failed_loads += 1
                self._failed_version = target
                self.last_error = (
                    f"loading {self.model_name} v{target} failed: {type(exc).__name__}: {exc}"
                )
                log.error(self.last_error)
                return False
            self.current = loaded  # one reference assignment: atomic for readers
            self._loaded[target] = loaded
            for version in list(self._loaded)[:-KEEP_LOADED]:
                del self._loaded[version]
            self.last_error = None
            self._failed_version = None
            log.info("now serving %s v%s", self.model_name, target)
            return True

    def start(self) -> None:
        """Load the current version, then follow the alias in a background thread."""
        bound_registry_calls()
        self.refresh()
        self._thread = threading.Thread(
            target=self._poll, name="airloop-model-refresh", daemon=True
        )
        self._thread.start()

    def next_poll_seconds(self) -> float:
        """The wait before the next poll: ``poll_seconds``, doubled for each poll in a row the
        registry did not answer, up to :data:`MAX_BACKOFF_SECONDS`."""
        if not self.failed_polls:
            return self.poll_seconds
        backoff = self.poll_seconds * 2.0 ** min(self.failed_polls, 16)
        return max(self.poll_seconds, min(backoff, MAX_BACKOFF_SECONDS))

    def _poll(self) -> None:
        while not self._stop.wait(self.next_poll_seconds()):
            try:
                self.refresh()
            except Exception as exc:  # the poller must survive anything a load raises
                self.last_error = f"refreshing the model failed: {type(exc).__name__}: {exc}"

    def stop(self) -> None:
        """Stop following the alias."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
