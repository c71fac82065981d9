"""The champion's poller when the registry is down: bounded calls, backoff, the model stays.

Only loopback: a port nothing listens on (connections refused) and a socket that accepts
connections and never answers (a registry that hangs).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from airloop.serving.model import (
    MAX_BACKOFF_SECONDS,
    REGISTRY_CALLS,
    LoadedModel,
    ModelHolder,
    bound_registry_calls,
)
from airloop.settings import Settings
from tests.support import hanging_server


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The serving process's bounds on MLflow's client, undone after the test."""
    for name in REGISTRY_CALLS:
        monkeypatch.delenv(name, raising=False)
    bound_registry_calls()
    for name, value in REGISTRY_CALLS.items():
        monkeypatch.setenv(name, value)  # registered with monkeypatch, so it is undone


def holder_at(settings: Settings, port: int) -> ModelHolder:
    """A holder serving v3, whose registry is at 127.0.0.1:port."""
    remote = settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{port}"})
    holder = ModelHolder(remote, "flight_delay", poll_seconds=0.5)
    holder.current = LoadedModel("flight_delay", "3", pyfunc=None, raw=None, input_columns=[])
    return holder


@pytest.fixture(autouse=True)
def restore_tracking(settings: Settings) -> Iterator[None]:
    """The holder points MLflow's process-wide URI at the dead registry: point it back."""
    yield
    from airloop.registry.tracking import configure

    configure(settings)


def test_the_bounds_are_defaults_an_operator_can_override(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REGISTRY_CALLS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    bound_registry_calls()
    import os

    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "3"
    assert (
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        == REGISTRY_CALLS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    )
    for name in REGISTRY_CALLS:
        monkeypatch.setenv(name, os.environ[name])  # undone by monkeypatch


def test_a_refused_registry_fails_a_poll_fast_and_the_champion_stays(
    settings: Settings, bounded: None
) -> None:
    """MLflow's defaults retry 7 times over about two minutes; the serving bounds, once."""
    holder = holder_at(settings, closed_port())
    started = time.monotonic()
    assert holder.refresh() is False
    assert time.monotonic() - started < 5
    assert holder.current is not None and holder.current.version == "3"
    assert holder.last_error is not None
    assert holder.last_error.startswith("registry unreachable (v3 keeps serving)")
    assert holder.failed_polls == 1 and holder.failed_loads == 0


def test_a_hanging_registry_fails_a_poll_within_its_timeout(
    settings: Settings, bounded: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")  # an operator's setting wins
    with hanging_server() as port:
        holder = holder_at(settings, port)
        started = time.monotonic()
        assert holder.refresh() is False
        took = time.monotonic() - started
    # two tries of 1 s (MLflow's defaults: 8 tries of up to 120 s, with backoff)
    assert 1 <= took < 6, took
    assert holder.current is not None and holder.current.version == "3"
    assert holder.last_error is not None and "registry unreachable" in holder.last_error


def test_the_poller_backs_off_while_the_registry_is_down_and_resets_after(
    settings: Settings, bounded: None
) -> None:
    holder = holder_at(settings, closed_port())
    waits = []
    for _ in range(9):
        holder.refresh()
        waits.append(holder.next_poll_seconds())
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0]
    assert waits[-1] == MAX_BACKOFF_SECONDS and waits == sorted(waits)
    holder.settings = settings  # the registry is back (the embedded one: no champion there)
    holder.refresh()
    assert holder.failed_polls == 0 and holder.next_poll_seconds() == 0.5
    assert holder.last_error is None or "unreachable" not in holder.last_error
    assert holder.current is not None and holder.current.version == "3"


def test_a_registry_that_does_not_answer_is_never_read_as_no_champion(
    settings: Settings, bounded: None, tmp_path
) -> None:
    """The gate and promotion read the champion through ``alias_version``: an outage must fail
    the task (retried), never pass for "no champion yet", which would promote unopposed."""
    from airloop.registry.models import RegistryUnreachable, alias_version

    local = settings.model_copy(update={"home": tmp_path / "home"})
    assert alias_version(local, "no_such_model") is None  # answered: there is none
    port = closed_port()
    remote = settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{port}"})
    with pytest.raises(RegistryUnreachable, match=f"127.0.0.1:{port}.*flight_delay@champion"):
        alias_version(remote, "flight_delay")


class AliasFollower(ModelHolder):
    """A holder whose alias moves along a given list of versions; it records what it loads."""

    def __init__(self, settings: Settings, moves: list[str]) -> None:
        super().__init__(settings, "flight_delay")
        self.moves, self.loads = iter(moves), list[str]()

    def target_version(self) -> str | None:
        return next(self.moves)

    def load(self, version: str) -> LoadedModel:
        self.loads.append(version)
        return LoadedModel("flight_delay", version, pyfunc=None, raw=None, input_columns=[])


def test_a_rollback_puts_back_the_version_still_loaded(tmp_path) -> None:
    """The champion and the version before it stay loaded: promoting v2 over v1 and rolling
    back needs no second download of v1; a version two moves back is loaded again."""
    holder = AliasFollower(Settings(home=tmp_path), ["1", "2", "1", "3", "2"])
    for expected in ("1", "2", "1", "3", "2"):
        assert holder.refresh() is True
        assert holder.current is not None and holder.current.version == expected
    assert holder.loads == ["1", "2", "3", "2"]
