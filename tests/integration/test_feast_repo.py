"""`feature_repo/` holds the same objects airloop registers: `feast plan` sees no change."""

from __future__ import annotations

import subprocess

import pytest

from tests.support import AIRLOOP

pytestmark = pytest.mark.integration


def test_feast_plan_on_feature_repo(landed) -> None:
    out = subprocess.run([AIRLOOP, "feast", "plan"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "No changes to registry" in out.stdout, out.stdout
