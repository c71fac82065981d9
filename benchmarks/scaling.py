"""Scaling: the production profile against the embedded one, one Celery worker against two,
one serving replica against two behind the same Redis.

1. the demo's default window (``--trials 0``) on each profile: total time, and where it goes
   (time inside tasks, per DAG, against the wall time of the runs: the rest is orchestration);
2. the feature pipeline backfilled over 14 intervals, and an experiment of 4 trials, with one
   Celery worker and with two;
3. ``/v1/predict`` throughput of one serving replica against two behind the same Redis.

Needs PostgreSQL (user postgres) and Redis on 127.0.0.1, as the production test tier does;
creates databases of its own and drops them at the end. Results: benchmarks/results/scaling.*.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from load import FIRST_FLIGHT, FIRST_FLIGHT_FIELDS, measure, poster
from loop import where_it_goes

ROOT = Path(__file__).resolve().parent
AIRLOOP = str(Path(sys.executable).with_name("airloop"))
PG = "postgres@127.0.0.1:5432"
PORTS = {
    "AIRLOOP_AIRFLOW_PORT": "8701",
    "AIRLOOP_AIRFLOW_WORKER_LOG_PORT": "8702",
    "AIRLOOP_AIRFLOW_TRIGGER_LOG_PORT": "8703",
    "AIRLOOP_SERVING_PORT": "8704",
    "AIRLOOP_MLFLOW_UI_PORT": "8710",
}
SECOND_REPLICA = 8705
BASE = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRLOOP"))}


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def admin() -> Any:
    from sqlalchemy import create_engine

    return create_engine(f"postgresql+psycopg2://{PG}/postgres", isolation_level="AUTOCOMMIT")


@contextmanager
def production_env(label: str, workers: int = 2) -> Iterator[dict[str, str]]:
    """A production environment over databases made for it, dropped afterwards."""
    import redis
    from sqlalchemy import text

    prefix = f"airloop_bench_{label}_{secrets.token_hex(3)}"
    names = {role: f"{prefix}_{role}" for role in ("airflow", "mlflow", "feast")}
    engine = admin()
    with engine.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    free = [db for db in range(1, 16) if redis.Redis(db=db).dbsize() == 0][:2]
    root = Path(tempfile.mkdtemp(prefix=f"airloop-bench-{label}-"))
    (root / "shared").mkdir()
    env = {
        **BASE,
        **PORTS,
        "AIRLOOP_PROFILE": "production",
        "AIRLOOP_HOME": str(root / "home"),
        "AIRLOOP_SHARED_ROOT": str(root / "shared"),
        "AIRLOOP_AIRFLOW_DB_URL": f"postgresql+psycopg2://{PG}/{names['airflow']}",
        "AIRLOOP_CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{free[0]}",
        "AIRLOOP_CELERY_RESULT_BACKEND": f"db+postgresql://{PG}/{names['airflow']}",
        "AIRLOOP_CELERY_WORKERS": str(workers),
        "AIRLOOP_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{PORTS['AIRLOOP_MLFLOW_UI_PORT']}",
        "AIRLOOP_MLFLOW_BACKEND_STORE_URI": f"postgresql://{PG}/{names['mlflow']}",
        "AIRLOOP_FEAST_REGISTRY_URL": f"postgresql+psycopg2://{PG}/{names['feast']}",
        "AIRLOOP_FEAST_ONLINE_STORE": "redis",
        "AIRLOOP_FEAST_REDIS_URL": f"127.0.0.1:6379,db={free[1]}",
        "AIRLOOP_AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRLOOP_AIRFLOW_SECRET_KEY": secrets.token_urlsafe(32),
        "AIRLOOP_AIRFLOW_JWT_SECRET": secrets.token_urlsafe(64),
        "AIRLOOP_AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "AIRLOOP_SERVING_TOKEN": secrets.token_urlsafe(24),
    }
    try:
        yield env
    finally:
        with engine.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        for db in free:
            redis.Redis(db=db).flushdb()


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds a command took; it must succeed."""
    began = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.monotonic() - began


def demo(profile: str) -> dict[str, Any]:
    """The demo's default window on a profile, with no experiment."""
    say(f"demo on the {profile} profile ...")
    if profile == "embedded":
        home = Path(tempfile.mkdtemp(prefix="airloop-bench-embedded-"))
        env = {**BASE, **PORTS, "AIRLOOP_HOME": str(home)}
        seconds = timed([AIRLOOP, "demo", "--trials", "0"], env)
        return {
            "seconds": round(seconds),
            "dags": where_it_goes(f"sqlite:///{home}/airflow/airflow.db"),
        }
    with production_env("demo") as env:
        seconds = timed([AIRLOOP, "demo", "--trials", "0"], env)
        return {"seconds": round(seconds), "dags": where_it_goes(env["AIRLOOP_AIRFLOW_DB_URL"])}


@contextmanager
def topology(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """`airloop up` until the block ends (SIGTERM stops everything)."""
    up = subprocess.Popen(
        [AIRLOOP, "up", "--no-land"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert up.stdout is not None
    while True:
        line = up.stdout.readline()
        if line.startswith("Ctrl-C") or (not line and up.poll() is not None):
            break
    if up.poll() is not None:
        raise SystemExit(f"airloop up ended; see {env['AIRLOOP_HOME']}/logs")
    try:
        yield up
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=120)


def client(env: dict[str, str]) -> Any:
    from airloop.runtime.api import ApiClient
    from airloop.settings import Settings

    return ApiClient(
        Settings(
            **{
                k.removeprefix("AIRLOOP_").lower(): v
                for k, v in env.items()
                if k.startswith("AIRLOOP_")
            }
        )
    )


def run_and_wait(api: Any, dag_id: str, conf: dict[str, Any]) -> float:
    began = time.monotonic()
    run = api.trigger(dag_id, conf)
    state = api.wait_for_run(dag_id, run["dag_run_id"], timeout=1800)["state"]
    if state != "success":
        raise SystemExit(f"{dag_id} {state}")
    return time.monotonic() - began


def workers(count: int) -> dict[str, Any]:
    """Backfill 14 intervals and run a 4-trial experiment on `count` workers; with two, serve."""
    say(f"{count} Celery worker(s) ...")
    result: dict[str, Any] = {}
    with production_env(f"w{count}", workers=count) as env:
        timed([AIRLOOP, "land", "--start", "2013-01-01", "--days", "14"], env)
        with topology(env):
            result["backfill_14_seconds"] = round(
                timed([AIRLOOP, "backfill", "--start", "2013-01-01", "--days", "14"], env), 1
            )
            api = client(env)
            window = {"window_start": "2013-01-01", "window_end": "2013-01-15"}
            result["experiment_4_trials_seconds"] = round(
                run_and_wait(api, "experimentation", {**window, "n_trials": 4}), 1
            )
            if count == 2:
                run_and_wait(api, "model_training", window)
                result["serving"] = replicas(env)
    return result


def workers_at_scale(count: int, scale: int, days: int, concurrency: int) -> dict[str, Any]:
    """The feature pipeline backfilled over ``days`` intervals of the flights data xN
    (benchmarks/scale_data.py) on ``count`` workers of ``concurrency`` slots each: its wall
    time, and each task's time from Airflow's own records."""
    from scale_data import prepare

    say(f"x{scale}, {days} day(s): {count} Celery worker(s) of concurrency {concurrency} ...")
    usecase = prepare(scale, date(2013, 1, 1), days)
    with production_env(f"x{scale}w{count}", workers=count) as env:
        env["AIRLOOP_USECASE"] = str(usecase)
        env["AIRLOOP_CELERY_CONCURRENCY"] = str(concurrency)
        window = ["--start", "2013-01-01", "--days", str(days)]
        timed([AIRLOOP, "land", *window], env)
        with topology(env):
            seconds = timed([AIRLOOP, "backfill", *window], env)
        return {
            "workers": count,
            "concurrency": concurrency,
            "backfill_seconds": round(seconds, 1),
            "tasks": task_breakdown(env["AIRLOOP_AIRFLOW_DB_URL"], "feature_pipeline"),
        }


def task_breakdown(db_url: str, dag_id: str) -> dict[str, Any]:
    """Each task of the DAG's runs (a mapped task by its map index): mean seconds; and the
    runs' wall time against the time the tasks of one run take end to end if the mapped
    ones run side by side (the critical path) or one after another (their sum)."""
    import pandas as pd
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    tasks = pd.read_sql(
        "SELECT run_id, task_id, map_index, duration FROM task_instance"
        f" WHERE dag_id = '{dag_id}' AND state = 'success'",
        engine,
    )
    runs = pd.read_sql(
        f"SELECT run_id, start_date, end_date FROM dag_run WHERE dag_id = '{dag_id}'", engine
    )
    engine.dispose()
    tasks["name"] = tasks["task_id"] + tasks["map_index"].map(lambda i: f"[{i}]" if i >= 0 else "")
    per_run = tasks.groupby(["run_id", "task_id"])["duration"]
    wall = (
        pd.to_datetime(runs["end_date"]) - pd.to_datetime(runs["start_date"])
    ).dt.total_seconds()
    return {
        "mean_seconds": {
            str(name): round(float(seconds.mean()), 2)
            for name, seconds in tasks.groupby("name")["duration"]
        },
        "runs": len(runs),
        "run_wall_seconds": round(float(wall.sum()), 1),
        "in_tasks_seconds": round(float(tasks["duration"].sum()), 1),
        "critical_path_seconds": round(float(per_run.max().groupby("run_id").sum().sum()), 1),
    }


def replicas(env: dict[str, str]) -> dict[str, Any]:
    """/v1/predict at concurrency 4 and 8: all on one replica, then spread over two."""
    from airloop.core.http import answers
    from airloop.core.polling import wait_until

    body = json.dumps({"instances": [{**FIRST_FLIGHT, **FIRST_FLIGHT_FIELDS}]}).encode()
    first = int(env["AIRLOOP_SERVING_PORT"])
    second = subprocess.Popen(
        [AIRLOOP, "serve", "--port", str(SECOND_REPLICA), "--poll", "3600"],
        env={**env, "AIRLOOP_SERVING_PORT": str(SECOND_REPLICA)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    token = env["AIRLOOP_SERVING_TOKEN"]
    try:
        wait_until(
            lambda: answers(f"http://127.0.0.1:{SECOND_REPLICA}/ready"),
            timeout=180,
            what="replica 2",
        )
        out = {}
        for concurrency in (4, 8):
            one = measure(poster(first, "/v1/predict", body, token), concurrency)
            two = measure(poster([first, SECOND_REPLICA], "/v1/predict", body, token), concurrency)
            out[f"c{concurrency}"] = {"one_replica": one, "two_replicas": two}
        return out
    finally:
        second.terminate()
        second.wait(timeout=30)


def write(results: dict[str, Any]) -> None:
    (ROOT / "results" / "scaling.json").write_text(json.dumps(results, indent=2))
    emb, prod = results["demo"]["embedded"], results["demo"]["production"]
    lines = [
        f"Scaling benchmark ({results['cores']} cores, one machine; PostgreSQL and Redis local)",
        "",
        "**The demo's default window** (`airloop demo --trials 0`: 14 days to a first champion, 21 served and monitored)",
        "",
        "| profile | total s | DAG | runs | tasks | run wall s | in tasks s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, part in (("embedded", emb), ("production", prod)):
        for dag_id, d in sorted(part["dags"].items()):
            lines.append(
                f"| {name} | {part['seconds']} | {dag_id} | {d['runs']} | {d['tasks']} | {d['run_seconds']} | {d['task_seconds']} |"
            )
    for found in (results.get("workers_at_scale") or {}).values():
        lines += at_scale_lines(found)
    w1, w2 = results["workers"]["1"], results["workers"]["2"]
    lines += [
        "",
        "**Celery workers** (production profile, concurrency 2 each)",
        "",
        "| workers | feature pipeline, 14 intervals s | experiment, 4 trials s |",
        "|---|---|---|",
        f"| 1 | {w1['backfill_14_seconds']} | {w1['experiment_4_trials_seconds']} |",
        f"| 2 | {w2['backfill_14_seconds']} | {w2['experiment_4_trials_seconds']} |",
        "",
        "**Serving replicas** behind the same Redis (`/v1/predict`, one row, token on)",
        "",
        "| concurrency | replicas | p50 ms | p99 ms | requests/s |",
        "|---|---|---|---|---|",
    ]
    for level, cells in w2["serving"].items():
        for name, r in cells.items():
            lines.append(
                f"| {level[1:]} | {1 if name == 'one_replica' else 2} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['rps']:.0f} |"
            )
    (ROOT / "results" / "scaling.md").write_text("\n".join(lines) + "\n")
    say("\n".join(lines))


def at_scale_lines(found: dict[str, Any] | None) -> list[str]:
    """The table of one worker against two on the scaled data, if it was measured."""
    if not found:
        return []
    one, two = found["1"], found["2"]
    lines = [
        "",
        f"**One Celery worker against two on the flights data x{found['scale']}** "
        f"(`make bench-scaling PARTS=workers-at-scale`, {found['days']} daily intervals of "
        f"{found['flights_per_day']} flights on average, each worker running "
        f"{one['concurrency']} task at a time; measured {found['measured']}, reference "
        f"{found['reference_seconds']} s, load average {found['load_before']} before)",
        "",
        "| workers | backfill s | runs' wall s | in tasks s | critical path s |"
        + "".join(f" {name} s |" for name in one["tasks"]["mean_seconds"]),
        "|---|---|---|---|---|" + "---|" * len(one["tasks"]["mean_seconds"]),
    ]
    for each in (one, two):
        t = each["tasks"]
        lines.append(
            f"| {each['workers']} | {each['backfill_seconds']} | {t['run_wall_seconds']} |"
            f" {t['in_tasks_seconds']} | {t['critical_path_seconds']} |"
            + "".join(
                f" {t['mean_seconds'].get(name, '-')} |" for name in one["tasks"]["mean_seconds"]
            )
        )
    ratio = two["backfill_seconds"] / one["backfill_seconds"]
    lines += ["", f"Two workers took {ratio:.2f}x the time of one."]
    return lines


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("parts", nargs="*", default=["demo", "workers"])
    parser.add_argument("--scale", type=int, default=10, help="workers-at-scale: the copies")
    parser.add_argument("--days", type=int, default=3, help="workers-at-scale: the intervals")
    args = parser.parse_args()
    results: dict[str, Any] = {"cores": os.cpu_count()}
    previous = ROOT / "results" / "scaling.json"
    if previous.exists():
        results = {**json.loads(previous.read_text()), **results}
    if "demo" in args.parts:
        results["demo"] = {"embedded": demo("embedded"), "production": demo("production")}
    if "workers" in args.parts:
        results["workers"] = {"1": workers(1), "2": workers(2)}
    if "workers-at-scale" in args.parts:
        import pandas as pd
        from loop import reference_seconds
        from scale_data import prepare

        folder = prepare(args.scale, date(2013, 1, 1), args.days).parent
        flights = pd.read_parquet(folder / "flights.parquet", columns=["flight"])
        measured = {
            "scale": args.scale,
            "days": args.days,
            "flights_per_day": round(len(flights) / args.days),
            "measured": datetime.now(UTC).isoformat(timespec="seconds"),
            "reference_seconds": reference_seconds(),
            "load_before": [round(x, 2) for x in os.getloadavg()],
        }
        measured["1"] = workers_at_scale(1, args.scale, args.days, concurrency=1)
        measured["2"] = workers_at_scale(2, args.scale, args.days, concurrency=1)
        previous_scales = results.get("workers_at_scale") or {}
        if "scale" in previous_scales:  # the first layout: one scale, not keyed by it
            previous_scales = {f"x{previous_scales['scale']}": previous_scales}
        results["workers_at_scale"] = {**previous_scales, f"x{args.scale}": measured}
    write(results)


if __name__ == "__main__":
    main()
