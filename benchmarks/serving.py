"""Serving benchmark: airloop against the servers a user would otherwise run.

Same champion, same machine, same run, one worker each:
- airloop ``/invocations`` vs ``mlflow models serve --env-manager local`` (1 row, concurrency 1 and 4);
- airloop ``/v1/predict`` (feature lookup inside) vs the two-hop path: ``feast serve`` for the
  features, then ``mlflow models serve`` for the prediction;
- the floor: the in-process feature lookup and prediction, no HTTP at all.

Needs a home with a champion (``make demo`` makes one). Results go to benchmarks/results/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from load import FIRST_FLIGHT, FIRST_FLIGHT_FIELDS, REQUESTS, Client, measure, poster

from airloop.runtime.airflow_cli import airflow_environ
from airloop.settings import get_settings
from airloop.usecase import load_usecase

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PORTS = {"airloop": 8601, "mlflow": 8602, "feast": 8603}
ENTITY, REQUEST_FIELDS = FIRST_FLIGHT, FIRST_FLIGHT_FIELDS


def start(cmd: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
    out = (ROOT / "results" / log).open("wb")
    return subprocess.Popen(
        cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not come up; see benchmarks/results/*.log")


def main() -> None:
    import mlflow

    from airloop.features.store import feature_store
    from airloop.registry.models import describe_champion
    from airloop.registry.tracking import configure
    from airloop.training.models import model_inputs

    settings = get_settings()
    usecase = load_usecase(settings.usecase)
    champion = describe_champion(settings, usecase)
    if champion is None:
        raise SystemExit("no champion in this home: run `make demo` first")
    configure(settings)
    model = mlflow.pyfunc.load_model(f"models:/{champion['name']}/{champion['version']}")
    columns = model.metadata.get_input_schema().input_names()
    store = feature_store(settings, usecase)
    service = store.get_feature_service(usecase.feature_service.name)
    online = store.get_online_features(
        features=service, entity_rows=[ENTITY], full_feature_names=True
    ).to_dict()
    row = {**{k: v[0] for k, v in online.items()}, **ENTITY, **REQUEST_FIELDS}
    import pandas as pd

    frame = model_inputs(pd.DataFrame([row]), columns)
    invocation = json.dumps(
        {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
    ).encode()
    predict = json.dumps({"instances": [{**ENTITY, **REQUEST_FIELDS}]}).encode()
    feast_body = json.dumps(
        {
            "feature_service": usecase.feature_service.name,
            "entities": {k: [v] for k, v in ENTITY.items()},
            "full_feature_names": True,
        }
    ).encode()

    env = airflow_environ(settings)
    env["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"  # mlflow models serve execs uvicorn from PATH
    from airloop.features.repo import feast_cli_env

    env.update(feast_cli_env())
    procs = [
        start(
            [str(BIN / "airloop"), "serve", "--port", str(PORTS["airloop"]), "--poll", "3600"],
            env,
            "airloop.log",
        ),
        start(
            [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{champion['name']}@champion",
                "--env-manager",
                "local",
                "-p",
                str(PORTS["mlflow"]),
                "-w",
                "1",
            ],
            env,
            "mlflow.log",
        ),
        start(
            [
                str(BIN / "feast"),
                "--chdir",
                str(ROOT.parent / "feature_repo"),
                "serve",
                "-p",
                str(PORTS["feast"]),
                "-w",
                "1",
                "--max-requests",
                "0",
                "--no-access-log",
            ],
            env,
            "feast.log",
        ),
    ]
    try:
        wait(f"http://127.0.0.1:{PORTS['airloop']}/ready")
        wait(f"http://127.0.0.1:{PORTS['mlflow']}/ping")
        wait(f"http://127.0.0.1:{PORTS['feast']}/health")
        results: dict[str, Any] = {
            "champion": f"{champion['name']} v{champion['version']}",
            "requests_per_level": REQUESTS,
            "cores": os.cpu_count(),
        }

        def floor() -> Any:
            raw = model.get_raw_model()

            def call() -> None:
                got = store.get_online_features(
                    features=service, entity_rows=[ENTITY], full_feature_names=True
                ).to_dict()
                inputs = model_inputs(
                    pd.DataFrame(
                        [{**{k: v[0] for k, v in got.items()}, **REQUEST_FIELDS, **ENTITY}]
                    ),
                    columns,
                )
                raw.predict_proba(inputs)

            return call

        def two_hop() -> Any:
            feast_client, mlflow_client = Client(PORTS["feast"]), Client(PORTS["mlflow"])

            def call() -> None:
                feats = json.loads(feast_client.post("/get-online-features", feast_body))
                names = feats["metadata"]["feature_names"]
                values = {n: r["values"][0] for n, r in zip(names, feats["results"], strict=True)}
                body = {**values, **ENTITY, **REQUEST_FIELDS}
                rowframe = model_inputs(pd.DataFrame([body]), columns)
                mlflow_client.post(
                    "/invocations",
                    json.dumps(
                        {
                            "dataframe_split": json.loads(
                                rowframe.to_json(orient="split", index=False)
                            )
                        }
                    ).encode(),
                )

            return call

        for concurrency in (1, 4):
            results[f"c{concurrency}"] = {
                "airloop_invocations": measure(
                    poster(PORTS["airloop"], "/invocations", invocation), concurrency
                ),
                "mlflow_invocations": measure(
                    poster(PORTS["mlflow"], "/invocations", invocation), concurrency
                ),
                "airloop_predict": measure(
                    poster(PORTS["airloop"], "/v1/predict", predict), concurrency
                ),
                "two_hop_feast_mlflow": measure(two_hop, concurrency),
                "floor_in_process": measure(floor, 1) if concurrency == 1 else None,
            }
    finally:
        for proc in procs:
            os.killpg(proc.pid, 15)
        for proc in procs:
            proc.wait(timeout=30)
    write(results)


def write(results: dict[str, Any]) -> None:
    (ROOT / "results" / "serving.json").write_text(json.dumps(results, indent=2))
    lines = [
        f"Serving benchmark ({results['champion']}, {results['requests_per_level']} requests per cell, {results['cores']} cores, one worker per server)",
        "",
        "| path | concurrency | p50 ms | p99 ms | requests/s |",
        "|---|---|---|---|---|",
    ]
    for level in ("c1", "c4"):
        for name, r in results[level].items():
            if r:
                lines.append(
                    f"| {name} | {level[1:]} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['rps']:.0f} |"
                )
    c1, c4 = results["c1"], results["c4"]
    lines += [
        "",
        f"- airloop `/invocations` vs `mlflow models serve`: throughput ratio {c4['airloop_invocations']['rps'] / c4['mlflow_invocations']['rps']:.2f} at concurrency 4, "
        f"{c1['airloop_invocations']['rps'] / c1['mlflow_invocations']['rps']:.2f} at 1 (goal ≥ 1.0).",
        f"- airloop `/v1/predict` p99 {c1['airloop_predict']['p99_ms']:.1f} ms vs two-hop {c1['two_hop_feast_mlflow']['p99_ms']:.1f} ms at concurrency 1; "
        f"{c4['airloop_predict']['p99_ms']:.1f} vs {c4['two_hop_feast_mlflow']['p99_ms']:.1f} ms at 4.",
        f"- above the in-process floor (p50 {c1['floor_in_process']['p50_ms']:.2f} ms): `/v1/predict` +{c1['airloop_predict']['p50_ms'] - c1['floor_in_process']['p50_ms']:.2f} ms, "
        f"two-hop +{c1['two_hop_feast_mlflow']['p50_ms'] - c1['floor_in_process']['p50_ms']:.2f} ms.",
    ]
    (ROOT / "results" / "serving.md").write_text("\n".join(lines) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
