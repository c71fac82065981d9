"""Corrupted partitions fail at the gate with the reason, are quarantined, and change no store;
a partition with a file not landed yet fails and stays where it is."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    """Day 3 as it first landed, and as if it never ran: the record of the files its features
    were built from goes too (else each corruption below is a partition landed twice, which
    ``test_bad_raw_data.py`` covers)."""
    from airloop.data.intervals import partition_key
    from airloop.data.landing import used_record_path
    from tests.integration.conftest import day

    shutil.rmtree(
        landed.quarantine_dir / flights.name / partition_key(day(DAY)), ignore_errors=True
    )
    used_record_path(landed, flights, day(DAY)).unlink(missing_ok=True)
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
        "values that are not numbers ('late')",  # read with the declared type: the value named
    ),
    "empty-file": ("flights", lambda p: p.write_bytes(b""), "empty file"),
    "missing-file": ("weather", lambda p: p.unlink(), "missing file"),
}


# Through Airflow, a failed gate fails the run and skips what follows; one case of a bad value
# and one of a missing file show that. The stage decides the same way for every case, so the
# others run the stages themselves (a DAG run costs ~20 s; the stage well under one).
THROUGH_AIRFLOW = ["negative-distance", "missing-file"]


@pytest.mark.parametrize("case", THROUGH_AIRFLOW, ids=THROUGH_AIRFLOW)
def test_corrupted_partition_fails_its_run_and_is_quarantined(
    case: str, history, feature_dag, landed, flights
) -> None:
    source, corrupt, _ = CASES[case]
    _restore(landed, flights, history)
    before = store_snapshot(landed, flights)
    corrupt(landing_file(landed, flights, source, DAY))

    run = run_interval(feature_dag, DAY)

    states = task_states(run)
    assert str(run.state) == "failed"
    assert states["validate_partition"] == "failed", states
    assert states["build_offline_features"] == "upstream_failed"
    assert states["materialize_online"] == "upstream_failed"
    _assert_quarantined(case, landed, flights, before)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c not in THROUGH_AIRFLOW], ids=lambda c: str(c)
)
def test_the_gate_stops_and_quarantines_each_kind_of_corruption(
    case: str, history, landed, flights
) -> None:
    from airloop.features.pipeline import validate_partition
    from airloop.quality.gate import ValidationFailed
    from tests.integration.conftest import day

    source, corrupt, _ = CASES[case]
    _restore(landed, flights, history)
    before = store_snapshot(landed, flights)
    corrupt(landing_file(landed, flights, source, DAY))

    start, end = day(DAY), day(DAY + 1)
    with pytest.raises(ValidationFailed):
        validate_partition(start, end, flights, landed)
    _assert_quarantined(case, landed, flights, before)


def _assert_quarantined(case: str, landed, flights, before: dict) -> None:
    from airloop.data.intervals import partition_key
    from tests.integration.conftest import day

    source, _, reason = CASES[case]
    qdir = landed.quarantine_dir / flights.name / partition_key(day(DAY))
    if case == "missing-file":  # a late file: refused, nothing moved, so a rerun picks it up
        _assert_waiting(source, reason, landed, flights, before)
        return
    report = json.loads((qdir / "report.json").read_text())
    assert report["success"] is False
    assert any(reason in f["reason"] and f["source"] == source for f in report["failures"]), report[
        "failures"
    ]
    for other in flights.partitioned_sources:
        assert not landing_file(landed, flights, other, DAY).exists(), (
            "the partition must leave the landing zone"
        )
    if case != "empty-file":
        assert report["data_docs"] and Path(report["data_docs"]).is_file()
    assert store_snapshot(landed, flights) == before


def _assert_waiting(source: str, reason: str, landed, flights, before: dict) -> None:
    from airloop.data.intervals import partition_key
    from airloop.quality.gate import validation_report_path
    from tests.integration.conftest import day

    key = partition_key(day(DAY))
    report = json.loads(validation_report_path(landed, flights.name, key).read_text())
    assert report["success"] is False
    assert [(f["source"], f["check"]) for f in report["failures"]] == [(source, "landed")]
    assert reason in report["failures"][0]["reason"]
    assert not (landed.quarantine_dir / flights.name / key).exists()
    for other in flights.partitioned_sources:
        if other != source:
            assert landing_file(landed, flights, other, DAY).exists(), "nothing is moved"
    assert store_snapshot(landed, flights) == before


def test_fixed_partition_passes_after_quarantine(history, feature_dag, landed, flights) -> None:
    _restore(landed, flights, history)
    run = run_interval(feature_dag, DAY)
    assert str(run.state) == "success", task_states(run)


def test_a_reference_table_is_validated_again_only_when_its_file_changes(
    history, landed, flights
) -> None:
    """Every interval stages the same planes and airlines: a file that passed its suite is
    not checked again, and a changed one is, and fails the partition when it is bad."""
    from airloop.data.landing import landing_path
    from airloop.features.pipeline import validate_partition
    from airloop.quality.gate import ValidationFailed
    from tests.integration.conftest import day

    _restore(landed, flights, history)
    start, end = day(DAY), day(DAY + 1)
    passed = validate_partition(start, end, flights, landed)
    report = json.loads(Path(passed.report).read_text())
    assert set(report["reused"]) == set(flights.reference_sources), report["reused"]
    assert report["rows"]["planes"] > 100  # reused, the table is still read and counted

    planes = landing_path(landed, flights, "planes", None)
    kept = planes.read_bytes()
    try:
        _edit_csv(lambda d: d.assign(seats=-1))(planes)
        with pytest.raises(ValidationFailed, match="planes: column 'seats' has"):
            validate_partition(start, end, flights, landed)
    finally:
        planes.write_bytes(kept)
        _restore(landed, flights, history)


def test_a_reference_table_is_validated_again_when_its_extra_columns_rule_changes(
    history, landed, flights
) -> None:
    """A file that passed while its extra columns were ignored is checked again, and refused,
    once the source refuses them: the rule is part of what a passed validation vouches for."""
    from airloop.features.pipeline import validate_partition
    from airloop.quality.gate import ValidationFailed
    from tests.integration.conftest import day

    planes = flights.sources["planes"]
    fewer = planes.model_copy(update={"columns": [c for c in planes.columns if c.name != "engine"]})

    def with_planes(spec: Any) -> Any:
        return flights.model_copy(update={"sources": {**flights.sources, "planes": spec}})

    _restore(landed, flights, history)
    start, end = day(DAY), day(DAY + 1)
    try:
        passed = validate_partition(start, end, with_planes(fewer), landed)
        report = json.loads(Path(passed.report).read_text())
        assert report["ignored_columns"]["planes"] == ["engine"], report["ignored_columns"]
        _restore(landed, flights, history)
        strict = fewer.model_copy(update={"extra_columns": "refuse"})
        with pytest.raises(ValidationFailed, match="column 'engine' is not declared"):
            validate_partition(start, end, with_planes(strict), landed)
    finally:
        _restore(landed, flights, history)
