"""Corrupted partitions fail at the gate with the reason, are quarantined, and change no store;
a partition with a file not landed yet fails and stays where it is."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

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


class Case(NamedTuple):
    """A corruption of one source's file, and the failure the gate must report for it: its
    check, column and exact reason, given the pristine file's row count and the landed path."""

    source: str
    corrupt: Callable[[Path], object]
    failure: Callable[[int, Path], tuple[str, str | None, str]]


CASES = {
    "null-keys": Case(
        "flights",
        _edit_csv(lambda d: d.assign(carrier=None)),
        lambda rows, _: (
            "column_values_to_not_be_null",
            "carrier",
            f"column 'carrier' has {rows} null values",
        ),
    ),
    "negative-distance": Case(
        "flights",
        _edit_csv(lambda d: d.assign(distance=-d["distance"])),
        lambda rows, _: (  # the bounds: the use case's distance column
            "column_values_to_be_between",
            "distance",
            f"column 'distance' has {rows} values outside [1.0, 6000.0]",
        ),
    ),
    "missing-column": Case(
        "weather",
        _edit_csv(lambda d: d.drop(columns=["origin"])),
        lambda rows, _: (
            "column_to_exist",
            "origin",
            # The raw weather file's undeclared columns, named as a renamed column's suspects.
            "column 'origin' is missing; the file has columns the use case does not declare:"
            " ['day', 'hour', 'month', 'year'] (renamed?): rename it back in the data, or"
            " declare the new name in usecase.yaml",
        ),
    ),
    "wrong-type": Case(  # read with the declared type: the value named
        "arrivals",
        _edit_csv(lambda d: d.assign(arr_delay="late")),
        lambda rows, _: (
            "castable",
            "arr_delay",
            f"column 'arr_delay' has {rows} values that are not numbers ('late'); declare such"
            " markers in the column's na_values (read as missing) or replace (read as a number)"
            " in usecase.yaml, or fix the data",
        ),
    ),
    "empty-file": Case(
        "flights",
        lambda p: p.write_bytes(b""),
        lambda _, path: ("readable", None, f"empty file: {path} has no content"),
    ),
    "missing-file": Case(
        "weather",
        lambda p: p.unlink(),
        lambda _, path: ("landed", None, f"missing file: {path} has not landed"),
    ),
}


def expected_failure(case: str, landed, flights, pristine: Path) -> dict[str, Any]:
    """The failure the gate must report for a case, worked out from the pristine file."""
    source = CASES[case].source
    rows = len(pd.read_csv(next((pristine / source).iterdir())))
    check, column, reason = CASES[case].failure(rows, landing_file(landed, flights, source, DAY))
    return {"source": source, "check": check, "column": column, "reason": reason}


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
    _assert_quarantined(case, landed, flights, before, history)


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
    _assert_quarantined(case, landed, flights, before, history)


def _assert_quarantined(case: str, landed, flights, before: dict, pristine: Path) -> None:
    from airloop.data.intervals import partition_key
    from tests.integration.conftest import day

    source = CASES[case].source
    expected = expected_failure(case, landed, flights, pristine)
    qdir = landed.quarantine_dir / flights.name / partition_key(day(DAY))
    if case == "missing-file":  # a late file: refused, nothing moved, so a rerun picks it up
        _assert_waiting(source, expected, landed, flights, before)
        return
    report = json.loads((qdir / "report.json").read_text())
    assert report["success"] is False
    found = [{k: f[k] for k in expected} for f in report["failures"]]
    assert expected in found, found
    for other in flights.partitioned_sources:
        assert not landing_file(landed, flights, other, DAY).exists(), (
            "the partition must leave the landing zone"
        )
    if case != "empty-file":
        assert report["data_docs"] and Path(report["data_docs"]).is_file()
    assert store_snapshot(landed, flights) == before


def _assert_waiting(source: str, expected: dict[str, Any], landed, flights, before: dict) -> None:
    from airloop.data.intervals import partition_key
    from airloop.quality.gate import validation_report_path
    from tests.integration.conftest import day

    key = partition_key(day(DAY))
    report = json.loads(validation_report_path(landed, flights.name, key).read_text())
    assert report["success"] is False
    assert [{k: f[k] for k in expected} for f in report["failures"]] == [expected]
    assert not (landed.quarantine_dir / flights.name / key).exists()
    for other in flights.partitioned_sources:
        if other != source:
            assert landing_file(landed, flights, other, DAY).exists(), "nothing is moved"
    assert store_snapshot(landed, flights) == before


def test_fixed_partition_passes_after_quarantine(history, feature_dag, landed, flights) -> None:
    """What a person finds after a quarantine, and does as its message says: the partition's
    files and report in its quarantine folder, none in the landing zone; the data fixed and
    landed again, the run cleared. The quarantine folder stays: it is the record."""
    from airloop.data.intervals import partition_key
    from airloop.features.offline import partition_file
    from airloop.features.pipeline import validate_partition
    from airloop.quality.gate import ValidationFailed
    from tests.integration.conftest import day

    _restore(landed, flights, history)
    source, corrupt, _ = CASES["negative-distance"]
    corrupt(landing_file(landed, flights, source, DAY))
    with pytest.raises(ValidationFailed, match="Fix the data, land it again, then clear this run"):
        validate_partition(day(DAY), day(DAY + 1), flights, landed)
    qdir = landed.quarantine_dir / flights.name / partition_key(day(DAY))
    assert json.loads((qdir / "report.json").read_text())["success"] is False
    for name in flights.partitioned_sources:
        assert not landing_file(landed, flights, name, DAY).exists()
        assert (qdir / name / landing_file(landed, flights, name, DAY).name).exists()

    for name in flights.partitioned_sources:  # fixed, and landed again
        shutil.copy2(next((history / name).iterdir()), landing_file(landed, flights, name, DAY))
    run = run_interval(feature_dag, DAY)

    assert str(run.state) == "success", task_states(run)
    assert partition_file(landed, flights, "_events", day(DAY)).exists()
    assert (qdir / "report.json").exists(), "the quarantine's record stays"


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
