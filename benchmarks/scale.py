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

The anchors (group ``anchors``, on by default): what a user would run instead, on the same
data, in the same home and on the same machine, each in a fresh process as the stages are, in a
Feast repository of their own (``anchor-feast/`` in the home: a registry, the same definitions
over the same Parquet partitions, Feast's stock ``duckdb`` offline store and a SQLite online
store of its own; airloop's registry and stores are not touched):

- ``anchor-materialize``, after each day's feature pipeline (so it finds the partitions
  airloop's ``materialize online`` found): Feast's ``FeatureStore.materialize(start, end)``
  of every view over the day, into the anchor's online store, against ``materialize online``;
- ``anchor-training-set``: the same entity rows (the window's events with the labels known by
  its end, read as ``build training set`` reads them) joined by Feast's stock DuckDB
  ``get_historical_features`` with the same feature service, to a DataFrame, against
  ``build training set``;
- ``anchor-serving``, after monitoring (its requests are logged): ``airloop serve``,
  ``mlflow models serve`` of the same champion and ``feast serve`` of the anchor's repository,
  on loopback ports, one worker each (``benchmarks/serving.py``'s ``start`` and ``wait``,
  ``benchmarks/load.py``'s client and ``measure``): one-row ``/v1/predict`` over HTTP, against
  a Feast SDK lookup in the client (the anchor's online store, filled by Feast's materialize)
  then ``/invocations`` of ``mlflow models serve`` (the anchor), and against ``feast serve``
  then ``mlflow models serve`` (two hops), the same requests in the same order for each.

Per stage: wall time and processor time of the stage alone (imports excluded), and the process's
peak resident memory during it (``VmHWM``, reset before each stage through
``/proc/self/clear_refs``), with the memory before it. How each stage grows is the log-log
slope of its wall time, its processor time and the memory it added, from each scale to the next
(1 means linear in the rows). The machine's CPU count and load average are recorded: other work
may run on it at the same time, and then the processor times are the figure to read.

The demo window end to end (group ``demo``, off by default; ``--groups demo`` runs it alone):
``airloop demo --trials 0`` as a user runs it, through Airflow's scheduler, on the scaled use
case (``AIRLOOP_USECASE``: ``usecase-demo.yaml`` beside the copies, the copies' data with the
shipped monitoring and serving settings, ``scale_data.prepare_demo``), copies made for the
demo's whole default window (the replay's ``first_window`` to a first champion, then the
demo's default days served and monitored), in a fresh ``AIRLOOP_HOME`` per scale and run. Its
wall time; the processor time of its whole process tree and the peak resident set of its
largest process (``getrusage(RUSAGE_CHILDREN)`` in a process of its own that starts the demo
and nothing else); the phases and the processor time by process the demo measures itself
(``profile.json``); and from Airflow's database, per DAG, its runs' wall time against their
tasks' and each task's mean (``benchmarks/loop.py``'s ``where_it_goes``).

``--after-features`` runs training, serving and monitoring in the home an earlier run of the
same scale and window left, with that run's landing and feature figures (a run at x100 can so
be split in two). ``--report`` writes scale.md again from scale.json.

Results: ``benchmarks/results/scale.json`` (runs, newest first; the demo's measures in each
run's ``demos``) and ``scale.md`` (the newest measure of each scale, per window of days).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import re
import resource
import signal
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
ANCHOR_REPO = "anchor-feast"  # in the home: the anchors' Feast repository
DEMO_TRIALS = 0  # the demo's first experiment: none, the loop alone (``airloop demo --trials``)
DEMO_TIMEOUT = 90 * 60  # the longest one demo may run
DEMO_PORTS = {  # the demo's servers, on ports of their own (bench-loop's are 8721 to 8725)
    "AIRLOOP_AIRFLOW_PORT": "8741",
    "AIRLOOP_AIRFLOW_WORKER_LOG_PORT": "8742",
    "AIRLOOP_AIRFLOW_TRIGGER_LOG_PORT": "8743",
    "AIRLOOP_SERVING_PORT": "8744",
    "AIRLOOP_MLFLOW_UI_PORT": "8745",
}
ANCHOR_PORTS = {"airloop": 8631, "mlflow": 8632, "feast": 8633}  # loopback only
# airloop's stage, the anchor's stage and what the anchor is (scale.md's comparison table).
ANCHORS = (
    (
        "materialize online",
        "anchor: Feast materialize",
        "Feast's `FeatureStore.materialize(start, end)` of every view over the day, stock"
        " DuckDB offline store, into a SQLite online store of its own",
    ),
    (
        "build training set",
        "anchor: Feast get_historical_features",
        "the same entity rows, Feast's stock DuckDB `get_historical_features` with the same"
        " feature service, `.to_df()`",
    ),
    (
        "/v1/predict over HTTP, one row",
        "anchor: Feast lookup + mlflow models serve, one row",
        "a Feast SDK online lookup in the client, then `/invocations` of `mlflow models serve`",
    ),
)


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
    elif args.child == "anchor-materialize":
        anchor_materialize(args, usecase, settings, meter)
    elif args.child == "anchor-training-set":
        made.update(anchor_training_set(args, usecase, settings, meter))
    elif args.child == "anchor-serving":
        made.update(anchor_serving(args, usecase, settings, meter))
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


# -- the anchors: what a user would run instead, on the same data ---------------------------------


def anchor_config(settings: Any, usecase: Any) -> Any:
    """The anchors' Feast repository in the home: a registry and a SQLite online store of its
    own, Feast's stock DuckDB offline store; the use case's project name."""
    from feast.repo_config import RepoConfig

    repo = Path(settings.home) / ANCHOR_REPO
    repo.mkdir(parents=True, exist_ok=True)
    return RepoConfig(
        project=usecase.name,
        provider="local",
        entity_key_serialization_version=3,
        repo_path=str(repo),
        registry=str(repo / "registry.db"),
        offline_store={"type": "duckdb"},
        online_store={"type": "sqlite", "path": str(repo / "online.db")},
    )


def anchor_yaml(config: Any) -> str:
    """``feature_store.yaml`` for ``feast serve`` of the anchors' repository."""
    import yaml

    return yaml.safe_dump(
        {
            "project": config.project,
            "provider": "local",
            "registry": config.registry.path,
            "offline_store": {"type": "duckdb"},
            "online_store": {"type": "sqlite", "path": config.online_store.path},
            "entity_key_serialization_version": 3,
        },
        sort_keys=False,
    )


def anchor_materialize(args: argparse.Namespace, usecase: Any, settings: Any, meter: Meter) -> None:
    """Feast's own materialisation of the day (the first day: a fresh repository first)."""
    import shutil

    from feast import FeatureStore

    from airloop.features.store import definitions

    repo = Path(settings.home) / ANCHOR_REPO
    if args.day == 0:

        def set_up() -> None:
            if repo.exists():
                shutil.rmtree(repo)
            config = anchor_config(settings, usecase)
            objects = [o for group in definitions(settings, usecase).values() for o in group]
            FeatureStore(config=config).apply(objects)
            (repo / "feature_store.yaml").write_text(anchor_yaml(config))

        meter.run("anchor: set up its Feast repository", set_up)
    lo, hi = day_bounds(args.day)
    names = [view.name for view in usecase.feature_views]
    meter.run(
        "anchor: Feast materialize",
        lambda: FeatureStore(config=anchor_config(settings, usecase)).materialize(
            lo, hi, feature_views=names
        ),
    )


def anchor_training_set(
    args: argparse.Namespace, usecase: Any, settings: Any, meter: Meter
) -> dict[str, Any]:
    """Feast's stock DuckDB point-in-time join of the entity rows ``build training set`` joins
    (its events and labels read as it reads them), with the same feature service."""
    import pandas as pd
    from feast import FeatureStore

    from airloop.core.columns import AVAILABLE_AT, EVENT_ID, EVENTS_TABLE, LABEL, LABELS_TABLE
    from airloop.features.offline import read_partitions

    lo, _ = day_bounds(0)
    _, hi = day_bounds(args.days - 1)

    def join() -> Any:
        store = FeatureStore(config=anchor_config(settings, usecase))
        events = read_partitions(settings, usecase, EVENTS_TABLE, lo, hi)
        labels = read_partitions(settings, usecase, LABELS_TABLE, lo, hi)
        labels = labels[labels[AVAILABLE_AT] <= pd.Timestamp(hi)][[EVENT_ID, LABEL]]
        entity_rows = events.merge(labels, on=EVENT_ID, how="inner")
        return store.get_historical_features(
            entity_df=entity_rows,
            features=store.get_feature_service(usecase.feature_service.name),
            full_feature_names=True,
        ).to_df()

    frame = meter.run("anchor: Feast get_historical_features", join, len)
    return {"training_rows": len(frame)}


def process_tree(pid: int) -> list[Any]:
    import psutil

    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def tree_cpu(pids: list[int]) -> float:
    """Processor seconds of these processes and their children so far."""
    total = 0.0
    for pid in pids:
        for proc in process_tree(pid):
            with contextlib.suppress(Exception):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def tree_memory(pids: list[int], field: str, reset: bool = False) -> float:
    """The sum of ``field`` (VmRSS, VmHWM) over these processes and their children, in MB;
    ``reset``: their peaks (VmHWM) set to their resident sets first."""
    total = 0
    for pid in pids:
        for proc in process_tree(pid):
            with contextlib.suppress(OSError):
                if reset:
                    Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
                status = Path(f"/proc/{proc.pid}/status").read_text()
                found = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
                total += int(found.group(1)) if found else 0
    return total / 1024


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def anchor_serving(
    args: argparse.Namespace, usecase: Any, settings: Any, meter: Meter
) -> dict[str, Any]:
    """One-row requests over loopback HTTP: airloop's ``/v1/predict``, against a Feast lookup
    then ``mlflow models serve`` (the anchor), and ``feast serve`` then ``mlflow models
    serve``; the same requests in the same order, one at a time. Each path's figures: the
    client's and its servers' processor time, and the peak resident sets of all of them."""
    os.environ.setdefault("BENCH_REQUESTS", str(LATENCY_REQUESTS))  # read by load.py
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # serving.py imports load.py by its own name
    import numpy as np
    import pandas as pd
    from feast import FeatureStore
    from load import WARMUP, Client, measure  # type: ignore[import-not-found]
    from mlflow.models import get_model_info

    from airloop.core.columns import EVENT_TS, EVENTS_TABLE
    from airloop.demo.traffic import instances_for
    from airloop.features.offline import read_partitions
    from airloop.registry.tracking import configure
    from airloop.serving.predict import MISSING_KEY, add_calendar
    from airloop.serving.schema import EVENT_ID_FIELD, EVENT_TIME_FIELD
    from airloop.training.models import model_inputs
    from benchmarks.serving import start, wait

    busy = [port for port in ANCHOR_PORTS.values() if not port_free(port)]
    if busy:
        raise SystemExit(f"loopback port(s) {busy} in use: the anchors' servers need them")
    lo, hi = day_bounds(args.days - 1)
    events = read_partitions(settings, usecase, EVENTS_TABLE, lo, hi)
    if events is None:
        raise SystemExit(f"no events for {lo:%Y-%m-%d}: run the feature pipeline first")
    instances = instances_for(usecase, events.sort_values(EVENT_TS))
    picks = [int(i) for i in np.random.default_rng(0).choice(len(instances), LATENCY_REQUESTS)]
    config = anchor_config(settings, usecase)
    repo = Path(config.repo_path)
    store = FeatureStore(config=config)
    service = store.get_feature_service(usecase.feature_service.name)
    configure(settings)
    model_uri = f"models:/{usecase.training.model_name}@champion"
    columns = get_model_info(model_uri).signature.inputs.input_names()

    def turns() -> Any:
        """The picked instances in turn (the warm-up's first, then the measured ones)."""
        return itertools.cycle(instances[i] for i in picks)

    def airloop_call() -> Any:
        client, order = Client(ANCHOR_PORTS["airloop"]), turns()
        return lambda: client.post("/v1/predict", json.dumps({"instances": [next(order)]}).encode())

    def entity(instance: dict[str, Any]) -> dict[str, Any]:
        """The instance's entity keys; a missing one (a flight without its aircraft) as a key
        that finds nothing, which Feast needs and airloop's lookup does too."""
        return {k: MISSING_KEY if instance[k] is None else instance[k] for k in usecase.entity_keys}

    def anchor_row(instance: dict[str, Any], online: dict[str, Any]) -> bytes:
        """The model's input row (request fields, their calendar columns, the features) as
        ``mlflow models serve`` reads it."""
        row = {k: v for k, v in instance.items() if k not in (EVENT_ID_FIELD, EVENT_TIME_FIELD)}
        add_calendar(usecase, [row], [instance[EVENT_TIME_FIELD]])
        frame = model_inputs(pd.DataFrame([{**online, **row}]), columns)
        split = json.loads(frame.to_json(orient="split", index=False))
        return json.dumps({"dataframe_split": split}).encode()

    def sdk_call() -> Any:
        client, order = Client(ANCHOR_PORTS["mlflow"]), turns()

        def call() -> None:
            instance = next(order)
            got = store.get_online_features(
                features=service, entity_rows=[entity(instance)], full_feature_names=True
            ).to_dict()
            client.post("/invocations", anchor_row(instance, {k: v[0] for k, v in got.items()}))

        return call

    def two_hop_call() -> Any:
        feast_client, client, order = (
            Client(ANCHOR_PORTS["feast"]),
            Client(ANCHOR_PORTS["mlflow"]),
            turns(),
        )

        def call() -> None:
            instance = next(order)
            body = {
                "feature_service": usecase.feature_service.name,
                "entities": {k: [v] for k, v in entity(instance).items()},
                "full_feature_names": True,
            }
            got = json.loads(feast_client.post("/get-online-features", json.dumps(body).encode()))
            names = got["metadata"]["feature_names"]
            values = {n: r["values"][0] for n, r in zip(names, got["results"], strict=True)}
            client.post("/invocations", anchor_row(instance, values))

        return call

    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        **settings.environment(),
        **settings.thread_env(),
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MLFLOW_REGISTRY_URI": settings.tracking_uri,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",  # mlflow execs uvicorn from PATH
    }
    servers = {
        "airloop": [str(bin_dir / "airloop"), "serve", "--port", str(ANCHOR_PORTS["airloop"]),
                    "--poll", "3600"],
        "mlflow": [str(bin_dir / "mlflow"), "models", "serve", "-m", model_uri,
                   "--env-manager", "local", "-p", str(ANCHOR_PORTS["mlflow"]), "-w", "1"],
        "feast": [str(bin_dir / "feast"), "--chdir", str(repo), "serve",
                  "-p", str(ANCHOR_PORTS["feast"]), "-w", "1", "--max-requests", "0",
                  "--no-access-log"],
    }  # fmt: skip
    procs = {name: start(cmd, env, f"scale-anchor-{name}.log") for name, cmd in servers.items()}
    made: dict[str, Any] = {
        "online_store_mb": round(settings.online_store_path.stat().st_size / 2**20, 1),
        "anchor_online_store_mb": round((repo / "online.db").stat().st_size / 2**20, 1),
        "requests": LATENCY_REQUESTS,
        "calls": LATENCY_REQUESTS + WARMUP,  # the warm-up's are in each path's time too
    }
    try:
        wait(f"http://127.0.0.1:{ANCHOR_PORTS['airloop']}/ready", timeout=300)
        wait(f"http://127.0.0.1:{ANCHOR_PORTS['mlflow']}/ping", timeout=300)
        wait(f"http://127.0.0.1:{ANCHOR_PORTS['feast']}/health", timeout=300)
        paths = (
            ("/v1/predict over HTTP, one row", airloop_call, ["airloop"]),
            ("anchor: Feast lookup + mlflow models serve, one row", sdk_call, ["mlflow"]),
            ("anchor: feast serve + mlflow models serve, one row", two_hop_call,
             ["feast", "mlflow"]),
        )  # fmt: skip
        for name, factory, used in paths:
            pids = [procs[u].pid for u in used]
            before_mb = tree_memory(pids, "VmRSS", reset=True)
            server_cpu = tree_cpu(pids)
            figures = meter.run(name, lambda f=factory: measure(f, 1))  # type: ignore[misc]
            stage = meter.stages[name]
            stage["client_cpu_s"] = stage["cpu_s"]
            stage["servers_cpu_s"] = round(tree_cpu(pids) - server_cpu, 3)
            stage["cpu_s"] = round(stage["client_cpu_s"] + stage["servers_cpu_s"], 3)
            stage["client_peak_rss_mb"] = stage["peak_rss_mb"]
            stage["servers_peak_rss_mb"] = round(tree_memory(pids, "VmHWM"), 1)
            stage["peak_rss_mb"] = round(stage["peak_rss_mb"] + stage["servers_peak_rss_mb"], 1)
            stage["rss_before_mb"] = round(stage["rss_before_mb"] + before_mb, 1)
            stage.update({k: round(v, 2) for k, v in figures.items() if k != "requests"})
            stage["rows"] = figures["requests"]
    finally:
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
        for proc in procs.values():
            proc.wait(timeout=30)
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


def run_anchor(
    group: str, n: int, usecase: Path, home: Path, days: int, day: int | None = None
) -> dict[str, Any]:
    """An anchor's group as :func:`run_child` runs it; one that fails or runs out of time is
    recorded as such (its error) instead of ending the run: the stages' measures stand."""
    try:
        return run_child(group, n, usecase, home, days, day)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        say(f"  {group} failed: {exc}")
        return {"stages": {}, "made": {}, "error": str(exc)}


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
    anchors = "anchors" in groups
    if earlier is not None:
        out.update(land=earlier["land"], features=earlier["features"])
        out["features_from"] = earlier["features_from"]
        if anchors:  # Feast's materialize of each day, after every day's features now
            out["anchors"] = {
                "materialize": [
                    run_anchor("anchor-materialize", n, usecase, home, days, d) for d in range(days)
                ],
                "materialize_after_features": True,
            }
    else:
        if home.exists():
            shutil.rmtree(home)
        home.mkdir(parents=True)
        marker.write_text(json.dumps({"days": days}))
        out["land"] = run_child("land", n, usecase, home, days)
        out["features"] = []
        for d in range(days):
            out["features"].append(run_child("features", n, usecase, home, days, d))
            if anchors:  # on the partitions airloop's materialisation of the day found
                materialized = out.setdefault("anchors", {}).setdefault("materialize", [])
                materialized.append(run_anchor("anchor-materialize", n, usecase, home, days, d))
    # Each anchor after its stage's group (and needing it); the anchors' servers after
    # monitoring, as their requests are logged as served ones.
    order = (
        ("training", "training"),
        ("anchor-training-set", "training"),
        ("serving", "serving"),
        ("monitoring", "monitoring"),
        ("anchor-serving", "serving"),
    )
    for group, needs in order:
        if needs not in groups:
            continue
        if group.startswith("anchor-"):
            if anchors:
                key = group.removeprefix("anchor-")
                out.setdefault("anchors", {})[key] = run_anchor(group, n, usecase, home, days)
        else:
            out[group] = run_child(group, n, usecase, home, days)
    return out


# -- the demo window end to end -------------------------------------------------------------------


def demo_window() -> dict[str, Any]:
    """The demo's default window for the flights use case, as ``airloop demo`` computes it
    (``replay.first_window`` to a first champion, then ``DEMO_DAYS`` served and monitored):
    its first day, its days in all, and its intervals before and after the first champion."""
    from airloop.cli.common import DEMO_DAYS
    from airloop.cli.stack import demo_window as window_of
    from airloop.usecase.model import load_usecase

    window = window_of(load_usecase("flights"), None, None, DEMO_DAYS, False)
    first = window.first.date()
    if first != FIRST:
        raise SystemExit(f"the demo's window starts on {first}, the copies on {FIRST}")
    return {
        "first": first.isoformat(),
        "days": (window.last - window.first).days,
        "bootstrap_intervals": len(window.bootstrap),
        "monitored_intervals": len(window.monitored),
    }


def measure_tree(
    argv: list[str], env: dict[str, str], log: Path, timeout: float = DEMO_TIMEOUT
) -> dict[str, Any]:
    """Run ``argv`` to its end (its output to ``log``; stopped with SIGTERM after ``timeout``)
    and measure it with all it started: wall seconds, processor seconds (user and system) and
    the peak resident set of its largest process. Meant for a process that runs nothing else:
    ``RUSAGE_CHILDREN`` counts every child this process waited for, and every descendant they
    waited for (a process orphaned before its end is not counted)."""
    began, used = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        # A benchmark stopped with SIGTERM stops the demo too (its servers follow their parent).
        previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
        timed_out = False
        try:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                proc.terminate()
                try:
                    proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
            if proc.poll() is None:  # interrupted: the demo goes with the benchmark
                proc.terminate()
                proc.wait()
    wall = time.perf_counter() - began
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = done.ru_utime - used.ru_utime, done.ru_stime - used.ru_stime
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(user + system, 1),
        "user_s": round(user, 1),
        "system_s": round(system, 1),
        "largest_peak_rss_mb": round(done.ru_maxrss / 1024, 1),  # kB on Linux
        "returncode": proc.returncode,
        "timed_out": timed_out,
    }


def demo_child(args: argparse.Namespace) -> dict[str, Any]:
    """``airloop demo`` on the scaled use case in ``args.home``, measured (``--child demo``: a
    process that runs the demo and nothing else, so its children's usage is the demo's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRLOOP"))}
    env.update(DEMO_PORTS)
    env.update({"AIRLOOP_HOME": args.home, "AIRLOOP_USECASE": args.usecase})
    argv = [str(Path(sys.executable).with_name("airloop")), "demo", "--trials", str(args.trials)]
    return measure_tree(argv, env, Path(args.home) / "demo.log", args.timeout)


def demo_error(log: str, limit: int = 3000) -> str:
    """Why a demo failed, from its output: from the line where the replay stopped (``airloop
    demo`` prints ``the replay stopped: ...``), else a Python traceback's start, else its tail."""
    for marker in ("the replay stopped:", "Traceback (most recent call last)"):
        at = log.rfind(marker)
        if at >= 0:
            return log[at : at + limit].strip()
    return log[-limit:].strip()


def read_demo_home(home: Path, name: str) -> dict[str, Any]:
    """What the demo left in its home: the phases and the processor time by process it measured
    itself (``reports/<use case>/profile.json``), and per DAG from Airflow's database its runs'
    and tasks' time (``benchmarks/loop.py``'s ``where_it_goes``); whatever of them is there."""
    out: dict[str, Any] = {}
    profile_path = home / "reports" / name / "profile.json"
    if profile_path.is_file():
        profile = json.loads(profile_path.read_text())
        out["profile"] = {
            key: profile.get(key)
            for key in (
                "seconds",
                "first",
                "last",
                "bootstrap_intervals",
                "monitored_intervals",
                "phases",
                "processes",
                "restarts",
                "stores",
                "served",
            )
        }
    database = home / "airflow" / "airflow.db"
    if database.is_file():
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from benchmarks.loop import where_it_goes

        with contextlib.suppress(Exception):  # a demo stopped early may leave no runs
            out["dags"] = where_it_goes(f"sqlite:///{database}")
    return out


def parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def run_demo(n: int, trials: int = DEMO_TRIALS, timeout: float = DEMO_TIMEOUT) -> dict[str, Any]:
    """``airloop demo`` over its default window at scale ``n``, in a fresh home: its measures
    (a demo that fails or runs out of time is recorded with its error, not raised)."""
    import shutil

    import yaml

    from benchmarks.scale_data import prepare_demo

    window = demo_window()
    began = time.monotonic()
    usecase = prepare_demo(n, FIRST, window["days"])
    prepared = round(time.monotonic() - began, 1)
    name = yaml.safe_load(usecase.read_text())["name"]
    home = HOMES / f"demo-x{n}"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    record: dict[str, Any] = {
        "scale": n,
        "days": window["days"],
        "window": window,
        "usecase": str(usecase.relative_to(ROOT.parent)),
        "options": {"trials": trials, "profile": "embedded"},
        "flights": parquet_rows(usecase.with_name("flights.parquet")),
        "prepare_s": prepared,
        "home": str(home.relative_to(ROOT.parent)),
        "load_before": load_average(),
    }
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = Path(out.name)
    argv = [
        sys.executable, "-m", "benchmarks.scale", "--child", "demo", "--usecase", str(usecase),
        "--home", str(home), "--trials", str(trials), "--timeout", str(timeout),
        "--out", str(path),
    ]  # fmt: skip
    say(f"x{n} demo: {window['days']} days from {window['first']} in {home}")
    try:
        subprocess.run(argv, cwd=ROOT.parent, check=True, timeout=timeout + 300)
        record.update(json.loads(path.read_text()))
    finally:
        path.unlink(missing_ok=True)
    record["load_after"] = load_average()
    if record["returncode"] != 0:
        log = (home / "demo.log").read_text(errors="replace")
        reason = "timed out" if record["timed_out"] else f"exit status {record['returncode']}"
        record["error"] = f"{reason}: {demo_error(log)}"
        say(f"  x{n} demo failed ({reason})")
    record.update(read_demo_home(home, name))
    say(
        f"  x{n} demo: {record['wall_s']} s wall, {record['cpu_s']} s processor,"
        f" largest process {record['largest_peak_rss_mb']} MB"
    )
    return record


def newest_demos(runs: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Per window (days), the newest demo measure of each scale (runs are newest first), each
    with its run's date, in the order of the scales."""
    found: dict[int, dict[int, dict[str, Any]]] = {}
    for run in runs:
        for demo in run.get("demos", []):
            by_scale = found.setdefault(demo["days"], {})
            if demo["scale"] not in by_scale:
                by_scale[demo["scale"]] = {**demo, "measured_at": run["measured_at"]}
    return {days: [by[n] for n in sorted(by)] for days, by in found.items()}


def demo_slopes(demos: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """The log-log slopes, from each scale measured to the next (failed ones left out), of the
    demo's wall and processor time, its largest process's peak, each phase, each process's
    processor time, each DAG's time in tasks and each task's mean."""
    done = [d for d in demos if "error" not in d]
    out: dict[str, dict[str, float | None]] = {}

    def figures(d: dict[str, Any]) -> dict[str, float]:
        found = {
            "wall": d["wall_s"],
            "processor": d["cpu_s"],
            "largest peak": d["largest_peak_rss_mb"],
        }
        profile = d.get("profile") or {}
        for phase, f in (profile.get("phases") or {}).items():
            found[f"phase: {phase}"] = f["seconds"]
        for process, f in (profile.get("processes") or {}).items():
            found[f"process: {process}"] = f["own"] + f["started"]
        for dag, f in (d.get("dags") or {}).items():
            found[f"dag: {dag}"] = f["task_seconds"]
            found[f"dag wall: {dag}"] = f["run_seconds"]
            for task, tf in f["per_task"].items():
                found[f"task: {dag}.{task}"] = tf["mean_seconds"]
        return found

    for a, b in itertools.pairwise(done):
        fa, fb = figures(a), figures(b)
        key = f"x{a['scale']}→x{b['scale']}"
        for name in fa:
            if name in fb:
                out.setdefault(name, {})[key] = slope(fa[name], fb[name], b["scale"] / a["scale"])
    return out


def slope_cell(grow: dict[str, dict[str, float | None]], name: str) -> str:
    """A figure's slopes from each scale to the next, "-" for one not computed."""
    values = grow.get(name, {})
    return ", ".join("-" if v is None else str(v) for v in values.values()) or "-"


def demo_lines(runs: list[dict[str, Any]], stage_scales: list[int] | None = None) -> list[str]:
    """scale.md's section on the demo window end to end: per window, the newest measure of each
    scale, the slopes between them, and where the time went; ``stage_scales`` the stage
    benchmark measured, those without a demo measure said so."""
    by_days = newest_demos(runs)
    if not by_days:
        return []
    lines = [
        "",
        "## The default demo window end to end",
        "",
        "`airloop demo` as a user runs it (embedded profile: Airflow's scheduler with its local"
        " executor, the API server, the DAG processor, the serving API), in a fresh home per"
        " scale, on the scaled use case: the copies of the demo's whole default window"
        " (`replay.first_window` to a first champion, then the demo's default days served and"
        " monitored) with the shipped monitoring and serving settings. Wall: the command's;"
        " processor: its whole process tree's (`getrusage(RUSAGE_CHILDREN)`); memory: the peak"
        " resident set of the largest single process in it. Phases and processor time by"
        " process: as the demo measured them (`profile.json`); per DAG: from Airflow's"
        " database. Slopes as above, from each scale measured to the next (memory's: of the"
        " largest process's whole peak, imports included).",
    ]
    for days, demos in by_days.items():
        names = [f"x{d['scale']}" for d in demos]
        grow = demo_slopes(demos)
        first = demos[0]
        window = first["window"]
        lines += [
            "",
            f"### {days} days from {window['first']}: {window['bootstrap_intervals']} to a first"
            f" champion, {window['monitored_intervals']} served and monitored",
            "",
            f"Options: `airloop demo --trials {first['options']['trials']}` (no experiment:"
            " the loop alone), `AIRLOOP_USECASE` the scaled use case, a fresh `AIRLOOP_HOME`.",
            "",
        ]
        for d in demos:
            lines.append(
                f"- x{d['scale']}, measured {d['measured_at']} (load average {d['load_before']}"
                f" at its start, {d.get('load_after', '-')} at its end): {d['flights']:,}"
                f" flights in the window; `{d['usecase']}`"
            )
        failed = [d for d in demos if "error" in d]
        for d in failed:
            lines += ["", f"**x{d['scale']} failed** after {d['wall_s'] / 60:.1f} min:", ""]
            lines += ["```", *d["error"].splitlines()[:40], "```"]

        def pick(name: str, grow: dict[str, Any] = grow) -> str:
            return slope_cell(grow, name)

        lines += [
            "",
            "| | " + " | ".join(names) + " | slope |",
            "|---|" + "---:|" * len(names) + "---|",
            "| wall min | "
            + " | ".join(f"{d['wall_s'] / 60:.1f}" for d in demos)
            + f" | {pick('wall')} |",
            "| processor min, all its processes | "
            + " | ".join(f"{d['cpu_s'] / 60:.1f}" for d in demos)
            + f" | {pick('processor')} |",
            "| processor ÷ wall | "
            + " | ".join(f"{d['cpu_s'] / d['wall_s']:.2f}" if d["wall_s"] else "-" for d in demos)
            + " | |",
            "| largest process's peak MB | "
            + " | ".join(f"{d['largest_peak_rss_mb']:.0f}" for d in demos)
            + f" | {pick('largest peak')} |",
            "| predictions served | "
            + " | ".join(
                f"{((d.get('profile') or {}).get('served') or {}).get('predicted', 0):,}"
                for d in demos
            )
            + " | |",
            "| s per monitored interval, all in | "
            + " | ".join(
                f"{d['wall_s'] / max(d['window']['monitored_intervals'], 1):.1f}" for d in demos
            )
            + " | |",
        ]
        if stage_scales:
            missing = [n for n in stage_scales if n not in {d["scale"] for d in demos}]
            done = [d for d in demos if "error" not in d]
            for n in missing:
                estimate = ""
                if len(done) >= 2 and pick("wall") != "-":
                    last_slope = list(grow["wall"].values())[-1]
                    if last_slope is not None:
                        top = done[-1]
                        guess = top["wall_s"] * (n / top["scale"]) ** last_slope / 60
                        estimate = (
                            f": it would hold this shared 2-core machine for about {guess:.0f}"
                            f" min (at the x{done[-2]['scale']}→x{top['scale']} slope of the"
                            " demo's wall time)"
                        )
                lines += [
                    "",
                    f"x{n}: the demo window not measured{estimate}; `python -m benchmarks.scale"
                    f" --groups demo --scales {n}` measures it.",
                ]
        lines += demo_where_lines(demos, grow)
    return lines


def demo_where_lines(
    demos: list[dict[str, Any]], grow: dict[str, dict[str, float | None]]
) -> list[str]:
    """Where the demo's time went at each scale: its phases, processor time by process, and per
    DAG and task from Airflow's database; each with its slope."""
    names = [f"x{d['scale']}" for d in demos]
    head = "| " + " | ".join(names) + " | slope |"
    rule = "---:|" * len(names) + "---|"

    def row(label: str, key: str, cells: list[str]) -> str:
        return f"| {label} | " + " | ".join(cells) + f" | {slope_cell(grow, key)} |"

    lines: list[str] = []
    phases = dict.fromkeys(p for d in demos for p in ((d.get("profile") or {}).get("phases") or {}))
    if phases:
        lines += ["", "Phases, as the demo measured them (seconds):", "", "| phase " + head]
        lines.append("|---|" + rule)
        for phase in phases:
            cells = []
            for d in demos:
                f = ((d.get("profile") or {}).get("phases") or {}).get(phase)
                cells.append("-" if f is None else f"{f['seconds']:.1f}")
            lines.append(row(phase, f"phase: {phase}", cells))
    processes = dict.fromkeys(
        p for d in demos for p in ((d.get("profile") or {}).get("processes") or {})
    )
    if processes:
        lines += [
            "",
            "Processor seconds by process, as the demo measured them (its own + the processes"
            " it started; the scheduler's are its executor's tasks):",
            "",
            "| process " + head,
            "|---|" + rule,
        ]
        for process in processes:
            cells = []
            for d in demos:
                f = ((d.get("profile") or {}).get("processes") or {}).get(process)
                cells.append("-" if f is None else f"{f['own']:.1f} + {f['started']:.1f}")
            lines.append(row(process, f"process: {process}", cells))
    dags = dict.fromkeys(dag for d in demos for dag in (d.get("dags") or {}))
    if dags:
        lines += [
            "",
            "Per DAG, from Airflow's database: runs, their wall seconds / seconds in tasks (the"
            " rest is orchestration); slopes of both, in that order:",
            "",
            "| DAG " + head,
            "|---|" + rule,
        ]
        for dag in dags:
            cells = []
            for d in demos:
                f = (d.get("dags") or {}).get(dag)
                cells.append(
                    "-"
                    if f is None
                    else f"{f['runs']} runs, {f['run_seconds']:.0f} / {f['task_seconds']:.0f}"
                )
            tasks = grow.get(f"dag: {dag}", {})
            walls = grow.get(f"dag wall: {dag}", {})
            shown = "; ".join(
                f"{walls.get(k) if walls.get(k) is not None else '-'}"
                f" / {tasks.get(k) if tasks.get(k) is not None else '-'}"
                for k in dict.fromkeys([*walls, *tasks])
            )
            lines.append(f"| {dag} | " + " | ".join(cells) + f" | {shown or '-'} |")
        lines += ["", "Mean seconds per task run:", "", "| task " + head, "|---|" + rule]
        for dag in dags:
            tasks = dict.fromkeys(
                t for d in demos for t in ((d.get("dags") or {}).get(dag, {}).get("per_task", {}))
            )
            for task in tasks:
                cells = []
                for d in demos:
                    f = (d.get("dags") or {}).get(dag, {}).get("per_task", {}).get(task)
                    cells.append("-" if f is None else f"{f['mean_seconds']:.2f}")
                lines.append(row(f"{dag}.{task}", f"task: {dag}.{task}", cells))
    return lines


def day_means(days: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per stage of a group run once a day, the mean of its measures over the days that ran it
    (peak: the highest day's)."""
    flat: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(k for d in days for k in d["stages"]):
        runs = [d["stages"][name] for d in days if name in d["stages"]]
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
    return flat


def stage_table(scale: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage, its measures at this scale (the feature stages: the mean over the days), then
    the anchors'."""
    flat: dict[str, dict[str, Any]] = dict(scale["land"]["stages"])
    flat.update(day_means(scale["features"]))
    for group in ("training", "serving", "monitoring"):
        if group in scale:
            flat.update(scale[group]["stages"])
    anchors = scale.get("anchors", {})
    if anchors.get("materialize"):
        flat.update(day_means(anchors["materialize"]))
    for group in ("training-set", "serving"):
        if group in anchors:
            flat.update(anchors[group]["stages"])
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
    return lines + anchor_lines(scales)


def ratio(a: float | None, b: float | None) -> str:
    """a ÷ b to two places; "-" without both, or with b at zero."""
    return "-" if a is None or b is None or b <= 0 else f"{a / b:.2f}"


def anchor_lines(scales: list[dict[str, Any]]) -> list[str]:
    """The anchors' table (each airloop stage against its anchor, per scale, with both slopes
    from the scale before) and the serving anchors' latencies."""
    with_anchors = [s for s in scales if s.get("anchors")]
    if not with_anchors:
        return []
    tables = {s["scale"]: stage_table(s) for s in scales}
    grow = slopes(scales)
    lines = [
        "",
        "### Anchors: what a user would run instead, on the same data and machine",
        "",
        "Each anchor in a fresh process of its own, as the stages are, in a Feast repository of"
        " its own in the same home (a registry, the same definitions over the same Parquet"
        " partitions, Feast's stock `duckdb` offline store, a SQLite online store filled by"
        " Feast's materialize). Figures: wall s / processor s / peak MB (MB the stage added to"
        " its process). Ratios: airloop ÷ anchor, below 1 where airloop costs less; memory's of"
        " what the stage added. Slopes: from the scale before, airloop's; anchor's.",
        "",
    ]
    lines += [f"- **{anchor}**: {what}." for _, anchor, what in ANCHORS]
    lines += [
        "- **anchor: feast serve + mlflow models serve, one row** (no ratio): the same request"
        " as two HTTP hops, `feast serve` of the anchors' repository then `mlflow models serve`.",
        "",
        "| airloop stage | anchor | scale | airloop | anchor | airloop ÷ anchor wall"
        " | ÷ processor | ÷ memory added | slope wall | slope processor |",
        "|---|---|---|---|---|---:|---:|---:|---|---|",
    ]

    def cell(m: dict[str, Any] | None) -> str:
        if m is None:
            return "-"
        return (
            f"{m['wall_s']:.2f} / {m['cpu_s']:.2f} / {m['peak_rss_mb']:.0f} (+{m['grew_mb']:.0f})"
        )

    for stage, anchor, _ in ANCHORS:
        prev = None
        for s in scales:
            n = s["scale"]
            ours, theirs = tables[n].get(stage), tables[n].get(anchor)
            if ours is None and theirs is None:
                continue
            walls = cpus = "-"
            if prev is not None:
                key = f"x{prev}→x{n}"
                ours_g, theirs_g = grow.get(stage, {}), grow.get(anchor, {})
                walls = f"{ours_g.get('wall ' + key, '-')}; {theirs_g.get('wall ' + key, '-')}"
                cpus = f"{ours_g.get('cpu ' + key, '-')}; {theirs_g.get('cpu ' + key, '-')}"
            ratios = [
                ratio((ours or {}).get(key), (theirs or {}).get(key))
                for key in ("wall_s", "cpu_s", "grew_mb")
            ]
            lines.append(
                f"| {stage} | {anchor} | x{n} | {cell(ours)} | {cell(theirs)}"
                f" | {' | '.join(ratios)} | {walls} | {cpus} |"
            )
            prev = n
    for s in scales:
        failed = {
            g: a["error"]
            for g, a in s.get("anchors", {}).items()
            if isinstance(a, dict) and "error" in a
        }
        failed.update(
            {
                f"materialize day {i + 1}": a["error"]
                for i, a in enumerate(s.get("anchors", {}).get("materialize", []))
                if "error" in a
            }
        )
        if not s.get("anchors"):
            lines.append(
                f"\nx{s['scale']}: the measure of {s['measured_at']}, made before the anchors"
                " existed: no anchor figures at this scale."
            )
        for group, error in failed.items():
            lines.append(f"\nx{s['scale']}: anchor {group} failed ({error}).")
    served = [
        (s["scale"], tables[s["scale"]], s["anchors"])
        for s in with_anchors
        if "serving" in s["anchors"]
    ]
    if served:
        http, sdk, two = (
            ANCHORS[2][0],
            ANCHORS[2][1],
            "anchor: feast serve + mlflow models serve, one row",
        )
        lines += [
            "",
            "One-row requests over loopback HTTP, one at a time, the same"
            f" {LATENCY_REQUESTS} requests (after 50 to warm) in the same order on each path, one"
            " worker per server; processor: the client's and its servers' per request; memory:"
            " the peak resident sets of the client and its servers. airloop's `/v1/predict` also"
            " checks the features' ttl and freshness and logs each prediction; the anchor does"
            " neither.",
            "",
            "| scale | airloop p50 / p99 ms | anchor p50 / p99 ms | airloop ÷ anchor p50 / p99"
            " | two hops p50 / p99 ms | processor ms per request airloop / anchor"
            " | peak MB airloop / anchor | online store MB airloop / anchor |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for n, table, anchors in served:
            a, b, c = table.get(http), table.get(sdk), table.get(two)
            if a is None or b is None:
                continue
            made = anchors["serving"]["made"]
            per = 1000 / made.get("calls", made["requests"])
            hops = f"{c['p50_ms']} / {c['p99_ms']}" if c else "-"
            lines.append(
                f"| x{n} | {a['p50_ms']} / {a['p99_ms']} | {b['p50_ms']} / {b['p99_ms']}"
                f" | {ratio(a['p50_ms'], b['p50_ms'])} / {ratio(a['p99_ms'], b['p99_ms'])}"
                f" | {hops}"
                f" | {a['cpu_s'] * per:.2f} / {b['cpu_s'] * per:.2f}"
                f" | {a['peak_rss_mb']:.0f} / {b['peak_rss_mb']:.0f}"
                f" | {made['online_store_mb']} / {made['anchor_online_store_mb']} |"
            )
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
    stage_scales = sorted({s["scale"] for r in runs for s in r.get("scales", [])})
    lines += demo_lines(runs, stage_scales)
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
        default=["training", "serving", "monitoring", "anchors"],
        help="what runs after the feature pipeline, and the anchors (default: all of those);"
        " 'demo' adds the demo's default window end to end, alone with --groups demo",
    )
    parser.add_argument(
        "--demo-trials",
        type=int,
        default=DEMO_TRIALS,
        help=f"the demo's first experiment's trials (default {DEMO_TRIALS}: the loop alone)",
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
    parser.add_argument("--trials", type=int, default=DEMO_TRIALS, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=DEMO_TIMEOUT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "demo":
        Path(args.out).write_text(json.dumps(demo_child(args)))
        return
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
    stage_groups = [g for g in args.groups if g != "demo"]
    demos: list[dict[str, Any]] = []
    for n in sorted(args.scales):
        if stage_groups or "demo" not in args.groups:
            limited = args.features_only_from is not None and n >= args.features_only_from
            groups = [] if limited else stage_groups
            scales.append(run_scale(n, args.days, groups, args.after_features))
            run.update(scales=scales, slopes=slopes(scales))
        if "demo" in args.groups:
            demos.append(run_demo(n, args.demo_trials))
            run["demos"] = demos
        # Written after each scale: a run stopped at a larger scale keeps the smaller ones.
        run["seconds"] = round(time.monotonic() - began, 1)
        run["machine"]["load_end"] = load_average()
        path = write(run)
    say(path.read_text())


if __name__ == "__main__":
    main()
