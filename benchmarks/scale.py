"""How airloop's cost grows with the data: the flights use case x1, x10 and x100 (issue 37 §1).

``make bench-scale`` (``python -m benchmarks.scale``). For each scale, the raw data of a few days
is multiplied by ``benchmarks/scale_data.py`` (copies of each day with distinct entity keys,
generated once and cached under ``benchmarks/.cache/scale/``), and airloop's stages run in an
embedded home of their own, in this order, each group in a fresh Python process (as a task
runs in a process of its own):

- ``land``: ``apply_definitions`` (the Feast registry) and ``data.replay.land_window``;
- ``features``, per day: ``validate_partition`` (snapshot and the Great Expectations gate),
  ``build_offline_features`` and ``materialize_online`` (``features.pipeline``);
- ``training``, over every landed day: ``build_training_set``, ``validate_training_set``,
  ``train_model``, ``evaluate_model``, then ``register_model`` and ``promote_model``;
- ``serving``: the app in-process (FastAPI's test client, no network): single-row
  ``/v1/predict`` requests (p50, p99), then the last day's events in batches of 200;
- ``monitoring``: ``monitor_interval`` of the last day (checks, decision, report).

Per stage: wall time and processor time of the stage alone (imports excluded), and the process's
peak resident memory during it (``VmHWM``, reset before each stage through
``/proc/self/clear_refs``), with the memory before it. How each stage grows is the log-log
slope of its wall time, its processor time and the memory it added, from each scale to the next
(1 means linear in the rows). The machine's CPU count and load average are recorded: other work
may run on it at the same time, and then the processor times are the figure to read.

``--after-features`` runs training, serving and monitoring in the home an earlier run of the
same scale and window left, with that run's landing and feature figures (a run at x100 can so
be split in two). ``--report`` writes scale.md again from scale.json.

Results: ``benchmarks/results/scale.json`` (runs, newest first) and ``scale.md`` (the newest
measure of each scale, per window of days).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
HOMES = ROOT / ".cache" / "scale" / "homes"
FIRST = date(2013, 1, 1)
STEP_TIMEOUT = 20 * 60  # no group of stages may run longer (the machine is shared)
LATENCY_REQUESTS = 300


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# -- in the child: one group of stages, each measured ---------------------------------------------


def _status_kb(field: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(found.group(1)) if found else 0


class Meter:
    """Each stage's wall and processor seconds and the process's peak memory while it ran."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, Any]] = {}

    def run(
        self, name: str, work: Callable[[], Any], rows: Callable[[Any], int] | None = None
    ) -> Any:
        """Run ``work`` as stage ``name``; its result."""
        with contextlib.suppress(OSError):  # the peak (VmHWM) from now on; Linux 4.0 and later
            Path("/proc/self/clear_refs").write_text("5")
        before = _status_kb("VmRSS")
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        self.stages[name] = {
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "peak_rss_mb": round(_status_kb("VmHWM") / 1024, 1),
            "rss_before_mb": round(before / 1024, 1),
            **({"rows": rows(result)} if rows else {}),
        }
        say(f"  {name}: {wall:.2f} s wall, {cpu:.2f} s cpu, {self.stages[name]['peak_rss_mb']} MB")
        return result


def day_bounds(day: int) -> tuple[datetime, datetime]:
    lo = datetime.combine(FIRST, datetime.min.time(), UTC) + timedelta(days=day)
    return lo, lo + timedelta(days=1)


def preload(settings: Any) -> None:
    """What a task process finds imported and warmed: the modules the executor preloads before
    it forks its workers (its ``PRELOAD``, read from its source: importing it imports Airflow,
    which a task process has but these stages do not use), pip requirements, MLflow's stores."""
    import ast
    import importlib
    import logging

    from airloop.core.paths import PACKAGE_DIR
    from airloop.registry.tracking import open_stores
    from airloop.training.train import pip_requirements

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    os.environ.setdefault("MPLBACKEND", "Agg")
    source = ast.parse((PACKAGE_DIR / "orchestration" / "executor.py").read_text())
    for node in source.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PRELOAD":
            for name in ast.literal_eval(node.value):
                importlib.import_module(name)
    pip_requirements()
    open_stores(settings)


def set_up_home(settings: Any, usecase: Any) -> None:
    """The Feast registry, and MLflow's tracking database created (once per home)."""
    from airloop.features.store import apply_definitions
    from airloop.registry.tracking import configure

    apply_definitions(settings, usecase)
    configure(settings).search_experiments()


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One group of stages in this process (``--child``): their measures, and what they made."""
    from airloop.ci.homes import home_settings
    from airloop.usecase.model import load_usecase

    usecase = load_usecase(args.usecase)
    settings = home_settings(Path(args.home), args.usecase)
    preload(settings)
    meter = Meter()
    made: dict[str, Any] = {}
    if args.child == "land":
        from airloop.data.replay import land_window

        meter.run("set up the home", lambda: set_up_home(settings, usecase))
        lo, _ = day_bounds(0)
        _, hi = day_bounds(args.days - 1)
        meter.run("land", lambda: land_window(usecase, settings, lo, hi))
    elif args.child == "features":
        from airloop.features.pipeline import (
            build_offline_features,
            materialize_online,
            validate_partition,
        )

        lo, hi = day_bounds(args.day)
        validated = meter.run(
            "validate",
            lambda: validate_partition(lo, hi, usecase, settings),
            lambda v: sum(v.rows.values()),
        )
        made["rows"] = validated.rows
        meter.run(
            "build offline features",
            lambda: build_offline_features(
                lo, hi, validated, usecase, settings, {"trigger": "bench"}
            ),
            lambda p: sum(p.rows.values()),
        )
        meter.run("materialize online", lambda: materialize_online(lo, hi, usecase, settings))
    elif args.child == "training":
        made.update(training(args, usecase, settings, meter))
    elif args.child == "serving":
        made.update(serving(args, usecase, settings, meter))
    elif args.child == "monitoring":
        from airloop.monitoring.pipeline import monitor_interval

        lo, hi = day_bounds(args.days - 1)
        checked = meter.run(
            "monitor", lambda: monitor_interval(lo, hi, {"trigger": "bench"}, usecase, settings)
        )
        made["decision"] = checked.decision.to_dict()
    return {"stages": meter.stages, "made": made}


def training(args: argparse.Namespace, usecase: Any, settings: Any, meter: Meter) -> dict[str, Any]:
    from airloop.training.pipeline import (
        build_training_set,
        evaluate_model,
        promote_model,
        register_model,
        train_model,
        validate_training_set,
    )

    lo, _ = day_bounds(0)
    _, hi = day_bounds(args.days - 1)
    params = {"window_start": lo.isoformat(), "window_end": hi.isoformat()}
    lineage = {"trigger": "bench"}
    rows = meter.run(
        "build training set",
        lambda: build_training_set(params=params, usecase=usecase, settings=settings),
        lambda t: t.rows,
    )
    check = meter.run(
        "validate training set", lambda: validate_training_set(rows, usecase, settings)
    )
    trained = meter.run("train", lambda: train_model(rows, lineage, None, usecase, settings))
    evaluation = meter.run("evaluate", lambda: evaluate_model(rows, trained, usecase, settings))

    def register_and_promote() -> Any:
        registered = register_model(rows, check, trained, evaluation, lineage, usecase, settings)
        promotion = promote_model(registered, usecase, settings)
        if not promotion.promoted:  # the benchmark serves it whatever the gate said
            from airloop.registry.tracking import configure

            configure(settings).set_registered_model_alias(
                usecase.training.model_name, "champion", registered.version
            )
        return registered

    registered = meter.run("register and promote", register_and_promote)
    return {
        "training_rows": rows.rows,
        "version": registered.version,
        "challenger": evaluation.challenger,
        "validation": check.success,
    }


def serving(args: argparse.Namespace, usecase: Any, settings: Any, meter: Meter) -> dict[str, Any]:
    """Single-row requests to ``/v1/predict`` (the app in-process), then a day's traffic."""
    import numpy as np
    from fastapi.testclient import TestClient

    from airloop.core.columns import EVENT_TS, EVENTS_TABLE
    from airloop.demo.traffic import instances_for
    from airloop.features.offline import read_partitions
    from airloop.serving.app import create_app

    lo, hi = day_bounds(args.days - 1)
    events = read_partitions(settings, usecase, EVENTS_TABLE, lo, hi)
    if events is None:
        raise SystemExit(f"no events for {lo:%Y-%m-%d}: run the feature pipeline first")
    instances = instances_for(usecase, events.sort_values(EVENT_TS))
    app = create_app(settings, usecase, poll_seconds=3600, token="")
    made: dict[str, Any] = {
        "online_store_mb": round(settings.online_store_path.stat().st_size / 2**20, 1)
    }
    with TestClient(app) as client:
        waited = time.monotonic()
        while app.state.predictor.holder.current is None:
            if time.monotonic() - waited > 300:
                raise SystemExit(f"no champion loaded: {app.state.predictor.holder.last_error}")
            time.sleep(0.2)

        def post(chunk: list[dict[str, Any]]) -> None:
            answer = client.post("/v1/predict", json={"instances": chunk})
            if answer.status_code != 200:
                raise SystemExit(f"/v1/predict answered {answer.status_code}: {answer.text[:500]}")

        picks = np.random.default_rng(0).choice(len(instances), LATENCY_REQUESTS)
        for i in picks[:20]:  # warm: the first lookups open the store
            post([instances[i]])

        def latencies() -> list[float]:
            out = []
            for i in picks:
                began = time.perf_counter()
                post([instances[i]])
                out.append((time.perf_counter() - began) * 1000)
            return out

        times = meter.run(f"{LATENCY_REQUESTS} single-row requests", latencies, len)
        made["p50_ms"] = round(float(np.percentile(times, 50)), 2)
        made["p99_ms"] = round(float(np.percentile(times, 99)), 2)

        def traffic() -> int:
            for i in range(0, len(instances), 200):
                post(instances[i : i + 200])
            return len(instances)

        meter.run("serve a day's events (batches of 200)", traffic, int)
    return made


# -- in the parent: the scales, the children, the results -----------------------------------------


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_child(
    group: str, n: int, usecase: Path, home: Path, days: int, day: int | None = None
) -> dict[str, Any]:
    """One group of stages in a fresh process; its measures (it must succeed in time)."""
    from airloop.ci.homes import home_settings

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRLOOP"))}
    env.update(home_settings(home, str(usecase)).thread_env())
    env["AIRLOOP_LOG_LEVEL"] = os.environ.get("AIRLOOP_LOG_LEVEL", "WARNING")
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = Path(out.name)
    argv = [
        sys.executable, "-m", "benchmarks.scale", "--child", group, "--usecase", str(usecase),
        "--home", str(home), "--days", str(days), "--out", str(path),
        *(["--day", str(day)] if day is not None else []),
    ]  # fmt: skip
    say(f"x{n} {group}{'' if day is None else f' day {day + 1}'}")
    began, load = time.monotonic(), load_average()
    try:
        subprocess.run(argv, env=env, cwd=ROOT.parent, check=True, timeout=STEP_TIMEOUT)
        result: dict[str, Any] = json.loads(path.read_text())
    finally:
        path.unlink(missing_ok=True)
    result["process_s"] = round(time.monotonic() - began, 1)
    result["load_before"] = load
    return result


def features_run(n: int, days: int) -> dict[str, Any] | None:
    """The newest recorded landing and feature pipeline of scale ``n`` over ``days`` days whose
    home is still there (``--after-features``), with when it was measured."""
    path = RESULTS / "scale.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    for run in runs:
        for scale in run.get("scales", []):
            if scale["scale"] == n and scale["days"] == days and "features" in scale:
                return {**scale, "features_from": scale.get("features_from", run["measured_at"])}
    return None


def run_scale(n: int, days: int, groups: list[str], after_features: bool = False) -> dict[str, Any]:
    """Every group at scale ``n`` in a fresh home; the measures by group. ``after_features``:
    the home the newest run of this scale and window left, its landing and feature pipeline
    taken from that run's record, and only ``groups`` run now."""
    import shutil

    from benchmarks.scale_data import prepare

    began = time.monotonic()
    usecase = prepare(n, FIRST, days)
    prepared = round(time.monotonic() - began, 1)
    home = HOMES / f"x{n}"
    out: dict[str, Any] = {
        "scale": n,
        "days": days,
        "usecase": str(usecase.relative_to(ROOT.parent)),
        "prepare_s": prepared,
    }
    marker = home / "bench-scale-window.json"  # which window the home holds
    earlier = features_run(n, days) if after_features else None
    held = json.loads(marker.read_text()) if marker.is_file() else {}
    if after_features and (earlier is None or held.get("days") != days):
        raise SystemExit(f"no home with the feature pipeline at x{n} over {days} day(s) to reuse")
    if earlier is not None:
        out.update(land=earlier["land"], features=earlier["features"])
        out["features_from"] = earlier["features_from"]
    else:
        if home.exists():
            shutil.rmtree(home)
        home.mkdir(parents=True)
        marker.write_text(json.dumps({"days": days}))
        out["land"] = run_child("land", n, usecase, home, days)
        out["features"] = [run_child("features", n, usecase, home, days, d) for d in range(days)]
    for group in ("training", "serving", "monitoring"):
        if group in groups:
            out[group] = run_child(group, n, usecase, home, days)
    return out


def stage_table(scale: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage, its measures at this scale (the feature stages: the mean over the days)."""
    flat: dict[str, dict[str, Any]] = dict(scale["land"]["stages"])
    days = scale["features"]
    for name in days[0]["stages"]:
        runs = [d["stages"][name] for d in days]
        flat[name] = {
            key: round(sum(r[key] for r in runs) / len(runs), 3)
            for key in ("wall_s", "cpu_s", "rss_before_mb")
        }
        flat[name]["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
        flat[name]["grew_mb"] = round(
            sum(r["peak_rss_mb"] - r["rss_before_mb"] for r in runs) / len(runs), 1
        )
        if all("rows" in r for r in runs):
            flat[name]["rows"] = round(sum(r["rows"] for r in runs) / len(runs))
    for group in ("training", "serving", "monitoring"):
        if group in scale:
            flat.update(scale[group]["stages"])
    for m in flat.values():
        m.setdefault("grew_mb", round(m["peak_rss_mb"] - m["rss_before_mb"], 1))
    return flat


def slope(a: float, b: float, ratio: float, floor: float = 0.0) -> float | None:
    """log(b / a) / log(ratio): how the cost grows with the data (1: linearly); None where
    either figure is at or below ``floor`` (noise)."""
    if a <= floor or b <= floor:
        return None
    return round(math.log(b / a) / math.log(ratio), 2)


def slopes(scales: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per stage, the log-log slopes of wall time, processor time and the memory the stage
    added to its process (peak less the resident set it began with; none under 10 MB) between
    consecutive scales that ran on the same days."""
    tables = [(s["scale"], s["days"], stage_table(s)) for s in scales]
    out: dict[str, dict[str, float | None]] = {}
    for (n1, d1, t1), (n2, d2, t2) in itertools.pairwise(tables):
        if d1 != d2:
            continue
        for stage in t1:
            if stage not in t2:
                continue
            entry = out.setdefault(stage, {})
            entry[f"wall x{n1}→x{n2}"] = slope(t1[stage]["wall_s"], t2[stage]["wall_s"], n2 / n1)
            entry[f"cpu x{n1}→x{n2}"] = slope(t1[stage]["cpu_s"], t2[stage]["cpu_s"], n2 / n1)
            entry[f"memory x{n1}→x{n2}"] = slope(
                t1[stage]["grew_mb"], t2[stage]["grew_mb"], n2 / n1, floor=10.0
            )
    return out


def newest_by_days(runs: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Per number of days landed, the newest measure of each scale (runs are newest first),
    each with its run's date and load, in the order of the scales."""
    found: dict[int, dict[int, dict[str, Any]]] = {}
    for run in runs:
        for scale in run.get("scales", []):
            by_scale = found.setdefault(scale["days"], {})
            if scale["scale"] not in by_scale:
                by_scale[scale["scale"]] = {
                    **scale,
                    "measured_at": run["measured_at"],
                    "machine": run["machine"],
                }
    return {days: [by[n] for n in sorted(by)] for days, by in found.items()}


def scale_lines(scales: list[dict[str, Any]]) -> list[str]:
    """One window's table: per stage, each scale's figures and the slopes between them."""
    tables = {s["scale"]: stage_table(s) for s in scales}
    lines = []
    for s in scales:
        machine = s["machine"]
        lines.append(
            f"- x{s['scale']}, measured {s['measured_at']} (load average {machine['load_start']}"
            f" at its run's start, {machine.get('load_end', '-')} at its end): flights per day"
            f" {', '.join(str(d['made']['rows'].get('flights', '?')) for d in s['features'])};"
            f" training rows {s.get('training', {}).get('made', {}).get('training_rows', '-')}"
            + (
                f" (landing and features from the run of {s['features_from']})"
                if s.get("features_from")
                else ""
            )
        )
    names = [f"x{s['scale']}" for s in scales]
    lines += [
        "",
        "Per stage: wall s / processor s / peak MB (MB before the stage). Feature stages: the"
        " mean over the days (peak: the highest day).",
        "",
        "| stage | " + " | ".join(names) + " | slope wall | slope processor | slope memory |",
        "|---|" + "---|" * len(names) + "---|---|---|",
    ]
    grow = slopes(scales)
    for stage in dict.fromkeys(k for t in tables.values() for k in t):
        cells = []
        for s in scales:
            m = tables[s["scale"]].get(stage)
            cells.append(
                "-"
                if m is None
                else f"{m['wall_s']:.2f} / {m['cpu_s']:.2f} / {m['peak_rss_mb']:.0f}"
                f" ({m['rss_before_mb']:.0f})"
            )
        figures = grow.get(stage, {})
        walls = ", ".join(str(v) for k, v in figures.items() if k.startswith("wall"))
        cpus = ", ".join(str(v) for k, v in figures.items() if k.startswith("cpu"))
        memory = ", ".join(str(v or "-") for k, v in figures.items() if k.startswith("memory"))
        lines.append(
            f"| {stage} | "
            + " | ".join(cells)
            + f" | {walls or '-'} | {cpus or '-'} | {memory or '-'} |"
        )
    serving_rows = [(s["scale"], s["serving"]["made"]) for s in scales if "serving" in s]
    if serving_rows:
        lines += [
            "",
            "One row to `/v1/predict` in-process (the app under FastAPI's test client, so"
            " the stages' processor time is the client's and the app's),"
            f" {LATENCY_REQUESTS} requests:",
            "",
            "| scale | p50 ms | p99 ms | online store MB |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| x{n} | {m['p50_ms']} | {m['p99_ms']} | {m['online_store_mb']} |"
            for n, m in serving_rows
        ]
    return lines


def write(run: dict[str, Any] | None = None) -> Path:
    """scale.json (``run`` first, then the earlier ones) and scale.md (the newest measure of
    each scale, per window of days)."""
    json_path = RESULTS / "scale.json"
    runs = json.loads(json_path.read_text())["runs"] if json_path.exists() else []
    if run is not None:
        if runs and runs[0]["measured_at"] == run["measured_at"]:
            runs = runs[1:]  # this run, written after an earlier scale: replaced
        runs = [run, *runs]
        json_path.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    lines = [
        "# Scale: how airloop's cost grows with the data",
        "",
        "By `make bench-scale` (benchmarks/scale.py). The flights use case's first days of 2013,"
        " each day's flights, weather, aircraft and airlines copied xN with distinct entity keys"
        " (benchmarks/scale_data.py), in an embedded home per scale and run. Each stage runs"
        " in-process, each group of stages in a fresh process that first imports what a task"
        " process finds imported (the executor's preload list); memory is that process's peak"
        " resident set during the stage, imports included.",
        "",
        "**Other work ran on this machine during these runs** (other sessions' tests and"
        " benchmarks, on 2 CPUs: see the load averages): the wall times are upper bounds, the"
        " processor times (all the process's threads) the steadier figure.",
        "",
        "Slopes: log(cost at the larger scale / cost at the smaller) / log(scale ratio), between"
        " consecutive scales on the same days (x1→x10, x10→x100); 1 is linear in the rows, 0"
        " flat. Memory's slope is of what the stage added to its process (peak less the resident"
        " set it began with), where that is 10 MB or more at both scales. The newest"
        " measure of each scale is shown; scale.json keeps every run, newest first.",
    ]
    for days, scales in newest_by_days(runs).items():
        machine = scales[0]["machine"]
        lines += [
            "",
            f"## {days} day(s) from {FIRST.day} {FIRST:%B %Y}",
            "",
            f"{machine['cpus']} CPUs, {machine['memory_gb']} GB.",
            "",
            *scale_lines(scales),
        ]
    for entry in runs[:1]:
        if entry.get("note"):
            lines += ["", f"**Note** ({entry['measured_at']}): {entry['note']}"]
    md = RESULTS / "scale.md"
    md.write_text("\n".join(lines) + "\n")
    return md


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--days", type=int, default=3, help="days landed at each scale")
    parser.add_argument(
        "--groups",
        nargs="+",
        default=["training", "serving", "monitoring"],
        help="what runs after the feature pipeline (default: all)",
    )
    parser.add_argument(
        "--features-only-from",
        type=int,
        default=None,
        help="scales from this one on run only landing and the feature pipeline",
    )
    parser.add_argument("--note", help="what a reader must know about this run")
    parser.add_argument(
        "--report", action="store_true", help="only write scale.md again from scale.json"
    )
    parser.add_argument(
        "--after-features",
        action="store_true",
        help="reuse the home and feature pipeline the newest run of each scale left; run --groups",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--usecase", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--day", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        Path(args.out).write_text(json.dumps(child(args)))
        return
    if args.report:
        say(write().read_text())
        return
    if args.days < 2 and any(g in args.groups for g in ("training", "serving", "monitoring")):
        # Measured: 1 January alone gives 352 labelled rows at x1, under training.min_rows.
        parser.error("--days 2 or more: one day at x1 is too little for the training gate")
    from airloop.core.version import airloop_version

    began = time.monotonic()
    scales: list[dict[str, Any]] = []
    run: dict[str, Any] = {
        "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "airloop": airloop_version(),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "load_start": load_average(),
            "shared": "other sessions' work ran on this machine during the run",
        },
        "note": args.note,
    }
    for n in sorted(args.scales):
        limited = args.features_only_from is not None and n >= args.features_only_from
        groups = [] if limited else args.groups
        scales.append(run_scale(n, args.days, groups, args.after_features))
        # Written after each scale: a run stopped at a larger scale keeps the smaller ones.
        run.update(scales=scales, slopes=slopes(scales), seconds=round(time.monotonic() - began, 1))
        run["machine"]["load_end"] = load_average()
        path = write(run)
    say(path.read_text())


if __name__ == "__main__":
    main()
