"""``airloop init`` on public tables nobody here wrote (benchmarks/owndata.py's small ones, shipped
in a dev dependency): the proposal holds for the file it was built from, as a whole and
partition by partition as the pipeline reads them. ``make bench-own-data`` runs the loop on
all of them; tests/e2e/test_own_data.py runs it on the Texas housing table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from airloop.cli import app
from airloop.initiation.selfcheck import own_file_failures
from airloop.usecase import load_usecase
from benchmarks.owndata import SMALL, data_set
from tests.builders import replay_through_the_gate

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", SMALL)
def test_init_on_a_public_table_holds_for_its_own_file(name: str, tmp_path: Path) -> None:
    data = data_set(name)
    csv = data.csv(tmp_path)
    case = tmp_path / "case"
    done = CliRunner().invoke(
        app, ["init", name, "--data", str(csv), *data.init, "--into", str(case)]
    )
    assert done.exit_code == 0, done.output
    usecase = load_usecase(str(case))
    frame = pd.read_csv(csv, na_values=["NA"], low_memory=False)
    assert own_file_failures(usecase, frame) == []
    assert replay_through_the_gate(usecase, tmp_path / "home", intervals=60) == []
