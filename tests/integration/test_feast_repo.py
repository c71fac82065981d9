"""`feature_repo/` holds the same objects airloop registers: `feast plan` sees no change."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support import AIRLOOP

pytestmark = pytest.mark.integration


def test_feast_plan_on_feature_repo(settings, flights, tmp_path) -> None:
    from airloop.features.store import apply_definitions

    # A home of its own, with exactly what airloop registers: the session's registry also
    # carries other tests' own Feast calls (Feast's materialize, say), which feast plan shows.
    home = settings.model_copy(update={"home": tmp_path})
    apply_definitions(home, flights)
    out = subprocess.run(
        [AIRLOOP, "feast", "plan"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AIRLOOP_HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "No changes to registry" in out.stdout, out.stdout
