"""The loop's speed: where a replay's time goes, per monitored interval, and what the year held.

``make bench-loop``: the demo's default window (21 days to a first champion, 14 monitored);
``make year``: 1 January to 31 December 2013 (``airloop demo --year``). Each runs the demo
as a user does, in a home of its own on the embedded profile, then reads:

- what the run measured itself (``reports/<use case>/profile.json``): its phases, and the
  stores' sizes and an online lookup's time at the first monitored interval and at the end;
- the Airflow database: per DAG, runs and their wall time against the time inside their
  tasks (the rest is orchestration), and each task's mean time;
- the processor time the run took, all its processes together, and the time a fixed piece of
  work takes on this machine before and after it: machines here differ by half as much again,
  and one machine over an afternoon, so a wall time is read beside them;
- for the year, the life of the model: predictions served, retrain requests with their
  reasons and outcomes, the gate's decisions, and the live metric by month.

Results: ``benchmarks/results/loop.{json,md}`` or ``year.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
AIRLOOP = str(Path(sys.executable).with_name("airloop"))
PORTS = {
    "AIRLOOP_AIRFLOW_PORT": "8721",
    "AIRLOOP_AIRFLOW_WORKER_LOG_PORT": "8722",
    "AIRLOOP_AIRFLOW_TRIGGER_LOG_PORT": "8723",
    "AIRLOOP_SERVING_PORT": "8724",
    "AIRLOOP_MLFLOW_UI_PORT": "8725",
}


def live_goal() -> float:
    """The live metric the flights use case promises (``monitoring.live_target``; issue 14
    asks it on at least 90 % of the year's days)."""
    from airloop.usecase.model import load_usecase

    target = load_usecase("flights").monitoring.live_target
    if target is None:
        raise SystemExit("the flights use case sets no monitoring.live_target")
    return target


LIVE_GOAL = live_goal()
BASE = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRLOOP"))}


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def where_it_goes(db_url: str) -> dict[str, Any]:
    """Per DAG: runs, the wall time of its runs, the time its tasks spent running, and each
    task's runs and mean seconds."""
    import pandas as pd
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    runs = pd.read_sql("SELECT dag_id, start_date, end_date FROM dag_run", engine)
    tasks = pd.read_sql("SELECT dag_id, task_id, state, duration FROM task_instance", engine)
    engine.dispose()
    out = {}
    for dag_id, part in runs.groupby("dag_id"):
        wall = (
            pd.to_datetime(part["end_date"]) - pd.to_datetime(part["start_date"])
        ).dt.total_seconds()
        mine = tasks[tasks["dag_id"] == dag_id]
        out[str(dag_id)] = {
            "runs": len(part),
            "run_seconds": round(float(wall.sum()), 1),
            "task_seconds": round(float(mine["duration"].fillna(0).sum()), 1),
            "tasks": len(mine),
            "per_task": {
                str(task): {
                    "runs": len(group),
                    "mean_seconds": round(float(group["duration"].fillna(0).mean()), 2),
                }
                for task, group in mine.groupby("task_id")
            },
        }
    return out


def reference_seconds() -> float:
    """How long a fixed piece of pure-Python work takes here now (the best of three): the
    machine's speed, to read a run's wall time by."""
    times = []
    for _ in range(3):
        began = time.perf_counter()
        sum(i * i for i in range(5_000_000))
        times.append(time.perf_counter() - began)
    return round(min(times), 3)


def processor_seconds() -> float:
    """User and system time of this process's finished children, theirs included."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run_demo(home: Path, year: bool) -> tuple[float, str, float]:
    """``airloop demo`` in ``home``; its wall seconds, its output and the processor seconds of
    all its processes (the servers it starts and the tasks they run). It must succeed."""
    env = {**BASE, **PORTS, "AIRLOOP_HOME": str(home)}
    argv = [AIRLOOP, "demo", *(["--year"] if year else [])]
    say(f"{' '.join(argv[1:])} in {home} ...")
    began, used = time.monotonic(), processor_seconds()
    demo = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # A benchmark stopped with SIGTERM stops its demo too; the demo's servers and Airflow's
    # scheduler follow their parent (runtime.services starts them with a parent-death signal).
    previous = signal.signal(signal.SIGTERM, lambda *_: demo.terminate())
    try:
        stdout, stderr = demo.communicate()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if demo.poll() is None:  # interrupted (Ctrl-C): the demo goes with the benchmark
            demo.terminate()
            demo.wait()
    seconds = time.monotonic() - began
    if demo.returncode != 0:
        raise SystemExit(f"airloop demo failed:\n{stdout[-4000:]}\n{stderr[-3000:]}")
    return seconds, stdout, processor_seconds() - used


def life_of_the_model(home: Path, usecase: str) -> dict[str, Any]:
    """Served predictions, requests and their outcomes, and the live metric by month."""
    reports = home / "reports" / usecase
    monitoring = home / "monitoring" / usecase
    profile = json.loads((reports / "profile.json").read_text())
    events = json.loads((reports / "timeline.json").read_text())
    requests = (
        [
            json.loads(line)
            for line in (monitoring / "requests.jsonl").read_text().splitlines()
            if line.strip()
        ]
        if (monitoring / "requests.jsonl").exists()
        else []
    )
    months: dict[str, list[float]] = {}
    for folder in sorted((monitoring / "intervals").glob("*")):
        perf_file = folder / "performance.json"
        if not perf_file.exists():
            continue
        perf = json.loads(perf_file.read_text())
        metric = perf.get("metric")
        live = (perf.get("live") or {}).get(metric) if metric else None
        if live is not None:
            months.setdefault(folder.name[:7], []).append(float(live))
    return {
        "served": profile.get("served", {}),
        "requests": [
            {
                "interval": r["interval_start"][:10],
                "reasons": [reason["check"] for reason in r.get("reasons") or []],
                "result": (r.get("outcome") or {}).get("result"),
                "version": (r.get("outcome") or {}).get("version"),
                "gate": (r.get("outcome") or {}).get("reasons"),
            }
            for r in requests
        ],
        "decisions": [
            {"day": e["day"], "kind": e["kind"], "detail": e["detail"]}
            for e in events
            if e["kind"] in ("champion", "promoted", "gate")
        ],
        "live_by_month": {
            month: {
                "days": len(values),
                "mean": round(sum(values) / len(values), 3),
                "min": round(min(values), 3),
                "at_goal": sum(v >= LIVE_GOAL for v in values),
            }
            for month, values in months.items()
        },
    }


def measure(year: bool, home: Path | None = None) -> dict[str, Any]:
    """Run the demo in a home of its own, or read the demo that ran in ``home``."""
    summary: list[str] = []
    machine: dict[str, Any] = {}
    if home is None:
        home = Path(tempfile.mkdtemp(prefix=f"airloop-bench-{'year' if year else 'loop'}-"))
        machine["reference_before"] = reference_seconds()
        _, output, cpu = run_demo(home, year)
        machine["reference_after"] = reference_seconds()
        machine["processor_seconds"] = round(cpu, 1)
        summary = output.splitlines()[-40:]
    profile = json.loads((home / "reports" / "flights" / "profile.json").read_text())
    return {
        "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "machine": machine,
        # A run that stopped early wrote its phases but not its total: their sum is close.
        "seconds": profile.get("seconds")
        or round(sum(phase["seconds"] for phase in profile["phases"].values()), 1),
        "window": {
            k: profile[k] for k in ("first", "last", "bootstrap_intervals", "monitored_intervals")
        },
        "phases": profile["phases"],
        "processes": profile.get("processes", {}),
        "restarts": profile.get("restarts", {}),
        "stores": profile.get("stores", {}),
        "dags": where_it_goes(f"sqlite:///{home}/airflow/airflow.db"),
        "life": life_of_the_model(home, "flights"),
        "timeline_png": str(home / "reports" / "flights" / "timeline.png"),
        "summary": summary,
    }


def machine_lines(machine: dict[str, Any], monitored: int) -> list[str]:
    """The processor time and the machine's speed, when the benchmark ran the demo itself."""
    if not machine:
        return [""]
    cpu = machine["processor_seconds"]
    return [
        f"Processor time, all the run's processes: {cpu / 60:.1f} min"
        f" ({cpu / max(monitored, 1):.1f} s per monitored interval, all in).",
        f"The machine's speed: a fixed piece of Python took {machine['reference_before']:.3f} s"
        f" before the run and {machine['reference_after']:.3f} s after (`reference_seconds`;"
        " lower is faster).",
        "",
    ]


def _mb(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1e3:.0f} kB" if value < 1e6 else f"{value / 1e6:.1f} MB"


def write(results: dict[str, Any], name: str) -> Path:
    """The JSON, and the Markdown a person reads (and the README quotes)."""
    (ROOT / "results" / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    window = results["window"]
    monitored = window["monitored_intervals"]
    lines = [
        f"# The loop, {'a year' if name == 'year' else 'the demo window'}: where the time goes",
        "",
        f"Measured {results['measured_at']} on {results['cpus']} CPUs, embedded profile, by"
        f" `make {'year' if name == 'year' else 'bench-loop'}` (benchmarks/loop.py).",
        f"{window['first'][:10]} to {window['last'][:10]}: {window['bootstrap_intervals']}"
        f" intervals to a first champion, then {monitored} served and monitored.",
        "",
        *([f"**Note**: {results['note']}", ""] if results.get("note") else []),
        f"**Total: {results['seconds'] / 60:.1f} min**"
        f" ({results['seconds'] / max(monitored, 1):.1f} s per monitored interval, all in).",
        *machine_lines(results.get("machine") or {}, monitored),
        "## Phases (measured by the run itself)",
        "",
        "| phase | seconds | times | per interval |",
        "|---|---:|---:|---:|",
    ]
    for phase, figures in results["phases"].items():
        per = f"{figures['seconds'] / monitored:.2f} s" if phase.startswith("monitored") else ""
        lines.append(f"| {phase} | {figures['seconds']:.1f} | {figures['count']} | {per} |")
    processes = results.get("processes") or {}
    if processes:
        lines += [
            "",
            "## Processor time by process (measured by the run itself)",
            "",
            "The scheduler's processes are its executor's: the workers and the tasks they ran;"
            " the demo's are the commands that set up the home.",
            "",
            "| process | its own s | the processes it started s | per monitored interval |",
            "|---|---:|---:|---:|",
        ]
        for process, spent in processes.items():
            both = spent["own"] + spent["started"]
            lines.append(
                f"| {process} | {spent['own']:.1f} | {spent['started']:.1f}"
                f" | {both / max(monitored, 1):.2f} s |"
            )
    for process, times in (results.get("restarts") or {}).items():
        lines += ["", f"The {process} exited and was started again {times} time(s) in this run."]
    lines += [
        "",
        "## Airflow runs: wall time against time inside tasks (the rest is orchestration)",
        "",
        "| DAG | runs | run wall s | in tasks s | per run wall | per run in tasks |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for dag, figures in results["dags"].items():
        runs = max(figures["runs"], 1)
        lines.append(
            f"| {dag} | {figures['runs']} | {figures['run_seconds']:.0f}"
            f" | {figures['task_seconds']:.0f} | {figures['run_seconds'] / runs:.2f}"
            f" | {figures['task_seconds'] / runs:.2f} |"
        )
    lines += ["", "Mean seconds per task:", ""]
    for dag, figures in results["dags"].items():
        tasks = ", ".join(
            f"{task} {t['mean_seconds']:.2f}" for task, t in figures["per_task"].items()
        )
        lines.append(f"- {dag}: {tasks}")
    stores = results.get("stores") or {}
    if stores:
        start, end = stores.get("start", {}), stores.get("end", {})
        lines += [
            "",
            f"## The stores at the first monitored interval ({start.get('interval', '')[:10]})"
            f" and at the end ({end.get('interval', '')[:10]})",
            "",
            "| | start | end |",
            "|---|---:|---:|",
        ]
        for key in (
            "feast_registry_bytes",
            "online_store_bytes",
            "offline_store_bytes",
            "prediction_log_bytes",
            "monitoring_bytes",
            "mlflow_bytes",
        ):
            label = key.removesuffix("_bytes").replace("_", " ")
            lines.append(f"| {label} | {_mb(start.get(key))} | {_mb(end.get(key))} |")
        lines.append(
            f"| online lookup, {end.get('online_lookup_rows')} entity rows (median ms)"
            f" | {start.get('online_lookup_ms')} | {end.get('online_lookup_ms')} |"
        )
    life = results["life"]
    served = life.get("served") or {}
    lines += [
        "",
        "## The life of the model",
        "",
        f"Predictions served: {served.get('predicted', 0):,}"
        f" (by version: {served.get('versions', {})}; refused: {served.get('refused', 0)}).",
        "",
        f"Retrain requests: {len(life['requests'])}.",
        "",
    ]
    for r in life["requests"]:
        gate = f" ({'; '.join(r['gate'])})" if r.get("gate") else ""
        lines.append(
            f"- {r['interval']}: {', '.join(r['reasons'])} → v{r['version']} {r['result']}{gate}"
        )
    lines += ["", "Champion and gate decisions:", ""]
    lines += [f"- {d['day']} {d['kind']}: {d['detail']}" for d in life["decisions"]]
    lines += [
        "",
        "Live metric by month (whatever served):",
        "",
        f"| month | days | mean | min | days at {LIVE_GOAL} or more |",
        "|---|---:|---:|---:|---:|",
    ]
    months = life["live_by_month"].values()
    for month, figures in life["live_by_month"].items():
        lines.append(
            f"| {month} | {figures['days']} | {figures['mean']:.3f} | {figures['min']:.3f}"
            f" | {figures.get('at_goal', '-')} |"
        )
    days = sum(m["days"] for m in months)
    at_goal = sum(m.get("at_goal", 0) for m in months)
    if days:
        lines += ["", f"At {LIVE_GOAL} or more on {at_goal} of {days} days ({at_goal / days:.0%})."]
    path = ROOT / "results" / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--year", action="store_true", help="replay the whole of 2013")
    parser.add_argument(
        "--home", type=Path, help="read the demo that ran in this AIRLOOP_HOME instead"
    )
    parser.add_argument("--note", help="what the reader must know about this run")
    args = parser.parse_args()
    name = "year" if args.year else "loop"
    results = {**measure(args.year, args.home), "note": args.note}
    path = write(results, name)
    if args.year:
        figure = ROOT.parent / "docs" / "images" / "year-timeline.png"
        figure.parent.mkdir(parents=True, exist_ok=True)
        figure.write_bytes(Path(results["timeline_png"]).read_bytes())
        say(f"the year's timeline: {figure}")
    say(path.read_text())


if __name__ == "__main__":
    main()
