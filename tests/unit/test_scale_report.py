"""``make bench-scale``'s report (benchmarks/scale.py): the stages' and the anchors' figures
per scale, airloop ÷ anchor, both slopes, and scale.md written from scale.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks import scale


def stage(wall: float, cpu: float, peak: float, before: float, **extra: Any) -> dict[str, Any]:
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak, "rss_before_mb": before, **extra}


def measured(n: int, anchors: bool = True) -> dict[str, Any]:
    """A scale's record as run_scale writes it, its costs growing linearly with ``n``."""
    day = {"stages": {"materialize online": stage(0.5 * n, 0.25 * n, 500 + n, 480)}}
    record: dict[str, Any] = {
        "scale": n,
        "days": 2,
        "land": {"stages": {"land": stage(0.1 * n, 0.1 * n, 490, 480)}},
        "features": [
            {**day, "made": {"rows": {"flights": 900 * n}}},
            {**day, "made": {"rows": {"flights": 900 * n}}},
        ],
        "training": {
            "stages": {"build training set": stage(1.0 * n, 0.5 * n, 600 + 10 * n, 480)},
            "made": {"training_rows": 1800 * n},
        },
    }
    if anchors:
        first = {
            "stages": {
                "anchor: set up its Feast repository": stage(0.2, 0.1, 480, 470),
                "anchor: Feast materialize": stage(2.0 * n, 1.0 * n, 520 + n, 480),
            }
        }
        second = {"stages": {"anchor: Feast materialize": stage(2.0 * n, 1.0 * n, 520 + n, 480)}}
        http = "/v1/predict over HTTP, one row"
        sdk = "anchor: Feast lookup + mlflow models serve, one row"
        record["anchors"] = {
            "materialize": [first, second],
            "training-set": {
                "stages": {"anchor: Feast get_historical_features": stage(4.0 * n, 2 * n, 700, 480)}
            },
            "serving": {
                "stages": {
                    http: stage(3.0, 1.5, 900, 880, p50_ms=8.0, p99_ms=20.0),
                    sdk: stage(6.0, 3.0, 1000, 950, p50_ms=16.0, p99_ms=40.0),
                },
                "made": {
                    "online_store_mb": 3.1 * n,
                    "anchor_online_store_mb": 3.0 * n,
                    "requests": 300,
                },
            },
        }
    return record


def test_day_means_average_each_stage_over_the_days_that_ran_it() -> None:
    days = measured(10)["anchors"]["materialize"]
    means = scale.day_means(days)
    assert means["anchor: Feast materialize"]["wall_s"] == pytest.approx(20.0)
    assert means["anchor: Feast materialize"]["grew_mb"] == pytest.approx(50.0)
    # Run on the first day only: its own figures, not halved.
    assert means["anchor: set up its Feast repository"]["wall_s"] == pytest.approx(0.2)


def test_the_stage_table_holds_the_anchors_beside_the_stages() -> None:
    table = scale.stage_table(measured(1))
    for _, anchor, _ in scale.ANCHORS:
        assert anchor in table
    assert "materialize online" in table and "build training set" in table
    assert "anchor: Feast materialize" not in scale.stage_table(measured(1, anchors=False))


def test_anchors_grow_with_their_own_slopes() -> None:
    grown = scale.slopes([measured(1), measured(10)])
    assert grown["anchor: Feast materialize"]["wall x1→x10"] == pytest.approx(1.0)
    assert grown["anchor: Feast get_historical_features"]["wall x1→x10"] == pytest.approx(1.0)


def test_ratio_is_airloop_over_the_anchor_and_a_dash_without_one() -> None:
    assert scale.ratio(1.0, 4.0) == "0.25"
    assert scale.ratio(1.0, None) == "-"
    assert scale.ratio(None, 1.0) == "-"
    assert scale.ratio(1.0, 0.0) == "-"


def test_the_anchor_table_gives_each_stage_its_anchor_ratio_and_both_slopes() -> None:
    scales = [{**measured(n), "measured_at": "now", "machine": {}} for n in (1, 10)]
    lines = scale.anchor_lines(scales)
    text = "\n".join(lines)
    row = next(
        line for line in lines if line.startswith("| materialize online |") and "x10" in line
    )
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "anchor: Feast materialize"
    assert cells[5] == "0.25"  # wall: 5 s against 20 s
    assert cells[8] == "1.0; 1.0"  # slope wall x1→x10, airloop's; the anchor's
    assert "| x10 | 8.0 / 20.0 | 16.0 / 40.0 | 0.50 / 0.50 |" in text
    assert scale.anchor_lines([{**measured(1, anchors=False), "measured_at": "now"}]) == []


def test_a_scale_measured_without_anchors_shows_a_dash(tmp_path: Path) -> None:
    scales = [
        {**measured(1), "measured_at": "now"},
        {**measured(10, anchors=False), "measured_at": "then"},
    ]
    rows = [
        line for line in scale.anchor_lines(scales) if line.startswith("| build training set |")
    ]
    assert [r.split("|")[3].strip() for r in rows] == ["x1", "x10"]
    assert rows[1].split("|")[5].strip() == "-"


def test_scale_md_is_written_from_scale_json_with_the_anchors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scale, "RESULTS", tmp_path)
    machine = {"cpus": 2, "memory_gb": 23.5, "load_start": [1.0, 1.0, 1.0], "load_end": [1, 1, 1]}
    older = {
        "measured_at": "2026-12-07T07:00:00+00:00",
        "machine": machine,
        "scales": [measured(100, anchors=False)],
    }
    (tmp_path / "scale.json").write_text(json.dumps({"runs": [older]}))
    run = {
        "measured_at": "2026-12-07T10:00:00+00:00",
        "machine": machine,
        "note": "x100 earlier",
        "scales": [measured(1), measured(10)],
    }
    md = scale.write(run).read_text()
    assert (
        json.loads((tmp_path / "scale.json").read_text())["runs"][0]["measured_at"]
        == run["measured_at"]
    )
    assert "### Anchors" in md
    assert "| materialize online | anchor: Feast materialize | x100 | 50.00 /" in md
    assert "**Note** (2026-12-07T10:00:00+00:00): x100 earlier" in md


def test_the_anchor_repository_is_feasts_stock_duckdb_store(tmp_path: Path) -> None:
    class Settings:
        home = tmp_path

    class UseCase:
        name = "flights"

    config = scale.anchor_config(Settings(), UseCase())
    assert config.offline_store.type == "duckdb"
    assert Path(config.online_store.path).parent == tmp_path / scale.ANCHOR_REPO
    served = yaml.safe_load(scale.anchor_yaml(config))
    assert served["offline_store"] == {"type": "duckdb"}
    assert served["registry"] == str(tmp_path / scale.ANCHOR_REPO / "registry.db")


def test_a_scale_without_anchors_or_with_a_failed_one_is_said_so() -> None:
    failed = measured(10)
    failed["anchors"]["training-set"] = {"stages": {}, "made": {}, "error": "timed out"}
    scales = [{**measured(1), "measured_at": "now"}, {**failed, "measured_at": "now"}]
    scales.append({**measured(100, anchors=False), "measured_at": "earlier"})
    text = "\n".join(scale.anchor_lines(scales))
    assert "x100: the measure of earlier, made before the anchors existed" in text
    assert "x10: anchor training-set failed (timed out)." in text
    assert "| build training set | anchor: Feast get_historical_features | x10 |" in text


def demo(n: int, **extra: Any) -> dict[str, Any]:
    """A demo measure as run_demo records it, its costs growing linearly with ``n``."""
    return {
        "scale": n,
        "days": 35,
        "window": {
            "first": "2013-01-01",
            "days": 35,
            "bootstrap_intervals": 21,
            "monitored_intervals": 14,
        },
        "usecase": f"benchmarks/.cache/scale/x{n}-2013-01-01-35d/usecase-demo.yaml",
        "options": {"trials": 0, "profile": "embedded"},
        "flights": 30000 * n,
        "load_before": [1.0, 1.0, 1.0],
        "load_after": [2.0, 2.0, 2.0],
        "wall_s": 140.0 * n,
        "cpu_s": 175.0 * n,
        "largest_peak_rss_mb": 700.0,
        "returncode": 0,
        "timed_out": False,
        "profile": {
            "phases": {
                "bootstrap: feature pipeline": {"seconds": 50.0 * n, "count": 1},
                "setting up the home": {"seconds": 7.0, "count": 1},
            },
            "processes": {"scheduler": {"own": 19.0 * n, "started": 84.0 * n}},
            "served": {"predicted": 12000 * n},
        },
        "dags": {
            "feature_pipeline": {
                "runs": 35,
                "run_seconds": 75.0 * n,
                "task_seconds": 56.0 * n,
                "tasks": 105,
                "per_task": {"materialize_online": {"runs": 35, "mean_seconds": 0.5 * n}},
            }
        },
        **extra,
    }


def test_the_demo_window_is_the_demos_default_one() -> None:
    window = scale.demo_window()
    assert window["first"] == scale.FIRST.isoformat()
    assert window["days"] == window["bootstrap_intervals"] + window["monitored_intervals"]
    assert window["monitored_intervals"] == 14


def test_a_tree_is_measured_with_its_childrens_processor_time_and_largest_peak(
    tmp_path: Path,
) -> None:
    import sys

    # A child that starts a grandchild holding about 60 MB and spinning a little.
    grandchild = "b = bytearray(60 * 2**20); b[::4096] = b'x' * len(b[::4096]); sum(range(10**6))"
    script = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}])"
    log = tmp_path / "out.log"
    measured = scale.measure_tree([sys.executable, "-c", script], {}, log, timeout=120)
    assert measured["returncode"] == 0 and not measured["timed_out"]
    assert measured["cpu_s"] >= 0 and measured["wall_s"] > 0
    assert measured["largest_peak_rss_mb"] >= 60
    assert log.is_file()


def test_a_tree_that_runs_out_of_time_is_stopped_and_said_so(tmp_path: Path) -> None:
    import sys

    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    measured = scale.measure_tree(argv, {}, tmp_path / "out.log", timeout=0.5)
    assert measured["timed_out"] and measured["returncode"] != 0
    assert measured["wall_s"] < 30


def test_a_failed_demos_error_is_where_the_replay_stopped() -> None:
    log = "1/5 setting up\n...\nthe replay stopped: feature_pipeline failed: validate_partition\nx"
    assert scale.demo_error(log).startswith("the replay stopped: feature_pipeline failed")
    traceback = "noise\nTraceback (most recent call last):\n  File x\nValueError: bad"
    assert scale.demo_error(traceback).startswith("Traceback")
    assert scale.demo_error("a" * 5000, limit=10) == "a" * 10


def test_the_demo_grows_with_its_own_slopes() -> None:
    grown = scale.demo_slopes([demo(1), demo(10)])
    assert grown["wall"]["x1→x10"] == pytest.approx(1.0)
    assert grown["processor"]["x1→x10"] == pytest.approx(1.0)
    assert grown["largest peak"]["x1→x10"] == pytest.approx(0.0)
    assert grown["phase: setting up the home"]["x1→x10"] == pytest.approx(0.0)
    assert grown["process: scheduler"]["x1→x10"] == pytest.approx(1.0)
    assert grown["dag: feature_pipeline"]["x1→x10"] == pytest.approx(1.0)
    assert grown["task: feature_pipeline.materialize_online"]["x1→x10"] == pytest.approx(1.0)
    # A failed scale is left out of the slopes.
    assert scale.demo_slopes([demo(1), demo(10, error="timed out")]) == {}


def test_the_newest_demo_of_each_scale_is_shown() -> None:
    runs = [
        {"measured_at": "new", "demos": [demo(10, wall_s=999.0)]},
        {"measured_at": "stages only", "scales": []},
        {"measured_at": "old", "demos": [demo(1), demo(10)]},
    ]
    found = scale.newest_demos(runs)[35]
    assert [(d["scale"], d["measured_at"]) for d in found] == [(1, "old"), (10, "new")]
    assert found[1]["wall_s"] == 999.0


def test_the_demo_section_holds_each_scale_its_slope_and_where_the_time_went() -> None:
    lines = scale.demo_lines([{"measured_at": "now", "demos": [demo(1), demo(10)]}], [1, 10, 100])
    text = "\n".join(lines)
    assert "## The default demo window end to end" in text
    assert "| wall min | 2.3 | 23.3 | 1.0 |" in lines
    assert "| processor min, all its processes | 2.9 | 29.2 | 1.0 |" in lines
    assert "| largest process's peak MB | 700 | 700 | 0.0 |" in lines
    assert "| bootstrap: feature pipeline | 50.0 | 500.0 | 1.0 |" in lines
    assert "| scheduler | 19.0 + 84.0 | 190.0 + 840.0 | 1.0 |" in lines
    assert "| feature_pipeline | 35 runs, 75 / 56 | 35 runs, 750 / 560 | 1.0 / 1.0 |" in lines
    assert "| feature_pipeline.materialize_online | 0.50 | 5.00 | 1.0 |" in lines
    assert "x100: the demo window not measured: it would hold" in text
    assert "about 233 min (at the x1→x10 slope" in text
    assert "x1: the demo window not measured" not in text
    assert "| predictions served | 12,000 | 120,000 | |" in lines
    assert scale.demo_lines([{"measured_at": "now", "scales": []}]) == []


def test_a_failed_demo_is_shown_with_its_error() -> None:
    failed = demo(10, error="exit status 1: the replay stopped: validate_partition failed")
    failed.pop("dags")
    text = "\n".join(scale.demo_lines([{"measured_at": "now", "demos": [demo(1), failed]}]))
    assert "**x10 failed** after 23.3 min:" in text
    assert "the replay stopped: validate_partition failed" in text
    assert "| wall min | 2.3 | 23.3 | - |" in text


def test_scale_md_holds_the_demo_beside_the_stages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scale, "RESULTS", tmp_path)
    machine = {"cpus": 2, "memory_gb": 23.5, "load_start": [1.0, 1.0, 1.0], "load_end": [1, 1, 1]}
    stages = {
        "measured_at": "2026-12-07T07:00:00+00:00",
        "machine": machine,
        "scales": [measured(1), measured(10), measured(100, anchors=False)],
    }
    (tmp_path / "scale.json").write_text(json.dumps({"runs": [stages]}))
    run = {
        "measured_at": "2026-12-07T11:00:00+00:00",
        "machine": machine,
        "scales": [],
        "demos": [demo(1), demo(10)],
    }
    md = scale.write(run).read_text()
    runs = json.loads((tmp_path / "scale.json").read_text())["runs"]
    assert [r["measured_at"] for r in runs] == [run["measured_at"], stages["measured_at"]]
    assert "| materialize online | anchor: Feast materialize | x10 |" in md
    assert "## The default demo window end to end" in md
    assert "x100: the demo window not measured" in md
