"""Corrupted partitions fail at the gate with the reason, are quarantined, and change no store."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.conftest import landing_file, run_interval, store_snapshot, task_states

pytestmark = pytest.mark.integration
DAY = 3


@pytest.fixture(scope="module")
def history(feature_dag, landed, flights):
    """Days 1-2 processed, and a pristine copy of day 3's landing to restore between cases."""
    from airloop.features.offline import partition_file
    from tests.integration.conftest import day

    for d in (1, 2):
        if not partition_file(landed, flights, "_events", day(d)).exists():
            assert str(run_interval(feature_dag, d).state) == "success"
    pristine = landed.home / "pristine-day3"
    if not pristine.exists():
        for source in flights.partitioned_sources:
            target = pristine / source
            target.mkdir(parents=True)
            shutil.copy2(landing_file(landed, flights, source, DAY), target)
    return pristine


def _restore(landed, flights, pristine: Path) -> None:
    from airloop.data.intervals import partition_key
    from tests.integration.conftest import day

    shutil.rmtree(
        landed.quarantine_dir / flights.name / partition_key(day(DAY)), ignore_errors=True
    )
    for source in flights.partitioned_sources:
        shutil.copy2(
            next((pristine / source).iterdir()), landing_file(landed, flights, source, DAY)
        )


def _edit_csv(edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        edit(pd.read_csv(path)).to_csv(path, index=False)

    return apply


CASES = {
    "null-keys": ("flights", _edit_csv(lambda d: d.assign(carrier=None)), "column 'carrier' has"),
    "negative-distance": (
        "flights",
        _edit_csv(lambda d: d.assign(distance=-d["distance"])),
        "column 'distance' has",
    ),
    "missing-column": (
        "weather",
        _edit_csv(lambda d: d.drop(columns=["origin"])),
        "column 'origin' is missing",
    ),
    "wrong-type": (
        "arrivals",
        _edit_csv(lambda d: d.assign(arr_delay="late")),
        "column 'arr_delay' has the wrong type",
    ),
    "empty-file": ("flights", lambda p: p.write_bytes(b""), "empty file"),
    "missing-file": ("weather", lambda p: p.unlink(), "missing file"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_corrupted_partition_is_stopped_and_quarantined(
    case: str, history, feature_dag, landed, flights
) -> None:
    from airloop.data.intervals import partition_key
    from tests.integration.conftest import day

    source, corrupt, reason = CASES[case]
    _restore(landed, flights, history)
    before = store_snapshot(landed, flights)
    corrupt(landing_file(landed, flights, source, DAY))

    run = run_interval(feature_dag, DAY)

    states = task_states(run)
    assert str(run.state) == "failed"
    assert states["validate_partition"] == "failed", states
    assert states["build_offline_features"] == "upstream_failed"
    assert states["materialize_online"] == "upstream_failed"
    qdir = landed.quarantine_dir / flights.name / partition_key(day(DAY))
    report = json.loads((qdir / "report.json").read_text())
    assert report["success"] is False
    assert any(reason in f["reason"] and f["source"] == source for f in report["failures"]), report[
        "failures"
    ]
    for other in flights.partitioned_sources:
        assert not landing_file(landed, flights, other, DAY).exists(), (
            "the partition must leave the landing zone"
        )
    if case != "missing-file" and case != "empty-file":
        assert report["data_docs"] and Path(report["data_docs"]).is_file()
    assert store_snapshot(landed, flights) == before


def test_fixed_partition_passes_after_quarantine(history, feature_dag, landed, flights) -> None:
    _restore(landed, flights, history)
    run = run_interval(feature_dag, DAY)
    assert str(run.state) == "success", task_states(run)
