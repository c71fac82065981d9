"""Bad raw data, through the real feature pipeline stages: refused or quarantined with a
report naming the file and the reason, nothing lost, no store touched.

One test, one interval, in the order such things happen to a partition: it lands broken
(cut off, in the wrong encoding, a column renamed, a column added), it is fixed but one file
is late, the late file lands and a rerun picks it up, then the partition lands again with other
contents. It runs in a home of its own, so the session's stores (which other tests compare
with the data they landed) never see its interval.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.conftest import day, store_snapshot

pytestmark = pytest.mark.integration
D = 2  # the interval under test


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_raw_data_is_refused_or_quarantined_and_a_rerun_picks_up_late_data(
    tmp_path_factory, flights
) -> None:
    from airloop.data.landing import landing_path, used_record_path
    from airloop.data.replay import land_window
    from airloop.features.pipeline import run_interval, validate_partition
    from airloop.features.store import apply_definitions
    from airloop.quality.gate import LandedTwice, PartitionIncomplete, ValidationFailed
    from airloop.settings import Settings

    settings = Settings(home=tmp_path_factory.mktemp("bad-raw"))
    land_window(flights, settings, date(2013, 1, D), date(2013, 1, D + 1))
    apply_definitions(settings, flights)  # the stores exist, empty
    start, end = day(D), day(D + 1)
    landed = {s: landing_path(settings, flights, s, start) for s in flights.partitioned_sources}
    pristine = {s: p.read_bytes() for s, p in landed.items()}
    before = store_snapshot(settings, flights)

    # 1. It lands broken: quarantined whole, with a report naming each file and its reason.
    weather = landed["weather"]
    weather.write_bytes(pristine["weather"][: len(pristine["weather"]) // 2])  # cut mid-row
    lines = pristine["arrivals"].decode().split("\n")
    lines[2] = "é" + lines[2]
    landed["arrivals"].write_bytes("\n".join(lines).encode("latin-1"))
    departures = pd.read_csv(landed["departures"], dtype=str)
    renamed = departures.columns[1]
    departures.rename(columns={renamed: f"{renamed}_code"}).to_csv(
        landed["departures"], index=False
    )
    pd.read_csv(landed["flights"], dtype=str).assign(gate="A1").to_csv(
        landed["flights"], index=False
    )
    broken = {s: p.read_bytes() for s, p in landed.items()}

    with pytest.raises(ValidationFailed) as refused:
        validate_partition(start, end, flights, settings)
    qdir = settings.quarantine_dir / flights.name / "2013-01-02"
    report = json.loads((qdir / "report.json").read_text())
    reasons = {f["source"]: f["reason"] for f in report["failures"]}
    assert set(reasons) == {"weather", "arrivals", "departures"}, reasons
    assert f"truncated file: {weather} ends in the middle of row" in reasons["weather"]
    assert f"wrong encoding: {landed['arrivals']} is not utf-8 text" in reasons["arrivals"]
    assert "on line 3" in reasons["arrivals"]
    assert f"column {renamed!r} is missing" in reasons["departures"]
    assert f"['{renamed}_code'] (renamed?)" in reasons["departures"]
    assert report["ignored_columns"]["flights"] == ["gate"]  # a new column: accepted, listed
    assert str(qdir) in str(refused.value)
    for source, path in landed.items():  # nothing lost: each file moved aside, byte for byte
        assert not path.exists(), source
        assert (qdir / source / path.name).read_bytes() == broken[source], source
    assert store_snapshot(settings, flights) == before

    # 2. Fixed, but the weather is late: refused, and nothing is moved this time.
    shutil.rmtree(qdir)
    for source, path in landed.items():
        if source != "weather":
            path.write_bytes(pristine[source])
    with pytest.raises(PartitionIncomplete, match=r"weather: missing file: .*2013-01-02\.csv"):
        validate_partition(start, end, flights, settings)
    assert all(landed[s].exists() for s in landed if s != "weather")
    assert not qdir.exists() and store_snapshot(settings, flights) == before

    # 3. The weather lands: the rerun picks it up, and the record says what it used.
    weather.write_bytes(pristine["weather"])
    run_interval(start, end, flights, settings)
    published = store_snapshot(settings, flights)
    assert published != before
    record = json.loads(used_record_path(settings, flights, start).read_text())
    assert set(record["files"]) == set(flights.sources)
    for source, path in landed.items():
        used = record["files"][source]
        assert used["landed"] == str(path) and used["sha256"] == sha256(path), source
    kept = Path(record["files"]["weather"]["kept"])

    # 4. The weather lands again with other contents: refused; both versions kept.
    other = pd.read_csv(weather, dtype=str)
    other.loc[0, "temp"] = "99.0"
    other.to_csv(weather, index=False)
    with pytest.raises(LandedTwice) as twice:
        validate_partition(start, end, flights, settings)
    message = str(twice.value)
    assert str(kept) in message and str(weather) in message, message
    assert kept.read_bytes() == pristine["weather"] and sha256(weather) != sha256(kept)
    assert store_snapshot(settings, flights) == published
    conflict = json.loads((qdir / "report.json").read_text())
    assert [f["source"] for f in conflict["failures"]] == ["weather"]

    # 5. A person decides the new file is right: deletes the record, and the rerun uses it.
    used_record_path(settings, flights, start).unlink()
    run_interval(start, end, flights, settings)
    record = json.loads(used_record_path(settings, flights, start).read_text())
    assert record["files"]["weather"]["sha256"] == sha256(weather)
    assert store_snapshot(settings, flights) != published
