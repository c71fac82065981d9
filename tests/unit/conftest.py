"""Fixtures several unit-test modules share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airloop.settings import get_settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh airloop home that commands find through the environment (not created yet)."""
    path = tmp_path / "home"
    monkeypatch.setenv("AIRLOOP_HOME", str(path))
    monkeypatch.setenv("AIRLOOP_USECASE", "flights")
    monkeypatch.delenv("AIRLOOP_REPLAY_END", raising=False)
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()
