"""``airloop init`` and the loop on public tables nobody here wrote (``make bench-own-data``).

For each data set of :mod:`owndata`, as a new user would: ``airloop init`` on the raw CSV,
then ``airloop demo`` on a short window through Airflow, in a home of its own. Then it reads:

- the gate on the file ``init`` was built from: what replaying it would quarantine (must be
  nothing), and the partitions the demo quarantined;
- the first champion against a plain baseline **on the same rows** (the first champion's
  training set, split as training splits it): a logistic (classification) or ridge
  (regression) model on the last known value of every measurement (the ``<entity>_lags``
  view), the entity and the calendar; and against each entity's base rate (its share of
  positives, or its mean, on the training rows), overall and entity by entity;
- the monitoring verdicts of the served intervals, with their counts;
- the time ``init`` and the demo took.

Results: ``benchmarks/results/own-data.{json,md}``. ``--only NAME`` runs one data set.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loop import reference_seconds, say  # the machine's speed, read as the loop's is
from owndata import CACHE, SETS, DataSet

ROOT = Path(__file__).resolve().parent
AIRLOOP = str(Path(sys.executable).with_name("airloop"))
PORTS = {
    "AIRLOOP_AIRFLOW_PORT": "8741",
    "AIRLOOP_AIRFLOW_WORKER_LOG_PORT": "8742",
    "AIRLOOP_AIRFLOW_TRIGGER_LOG_PORT": "8743",
    "AIRLOOP_SERVING_PORT": "8744",
    "AIRLOOP_MLFLOW_UI_PORT": "8745",
}
BASE = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRLOOP"))}


def run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """A command as a user runs it; its wall seconds and output. It must succeed."""
    began = time.monotonic()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:3])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return seconds, done.stdout


def own_file_quarantines(case: Path, csv: Path) -> list[str]:
    """What the gate would refuse if the file ``init`` was built from were replayed."""
    from airloop.initiation.selfcheck import own_file_failures
    from airloop.usecase import load_usecase

    frame = pd.read_csv(csv, na_values=["NA"], low_memory=False)
    return [f.reason for f in own_file_failures(load_usecase(str(case)), frame)]


def first_champion_rows(home: Path, case: Path) -> tuple[Any, Any, pd.DataFrame, pd.DataFrame]:
    """The use case, version 1's model, and the training and test rows it was fitted and
    tested on (its training set again, split as training splits it)."""
    import mlflow

    from airloop.registry.tracking import configure
    from airloop.settings import Settings
    from airloop.training.dataset import load_training_set, retrieve_training_set, split_by_time
    from airloop.training.train import load_model
    from airloop.usecase import load_usecase

    usecase = load_usecase(str(case))
    settings = Settings(home=home)
    configure(settings)
    version = mlflow.MlflowClient().get_model_version(usecase.training.model_name, "1")
    run = mlflow.get_run(version.run_id)
    tags = {**run.data.params, **run.data.tags}
    lo, hi, as_of = (
        datetime.fromisoformat(tags[k]) for k in ("window_start", "window_end", "labels_as_of")
    )
    found = retrieve_training_set(settings, usecase, lo, hi, as_of)
    frame = load_training_set(found.uri)
    spec = usecase.training
    train, _, test = split_by_time(frame, spec.validation_fraction, spec.test_fraction)
    model = load_model(settings, f"models:/{usecase.training.model_name}/1")
    return usecase, model, train, test


def compare(home: Path, case: Path) -> dict[str, Any]:
    """The first champion, the plain baseline and each entity's base rate on the same rows."""
    import numpy as np

    from airloop.catalog import metric
    from airloop.core.columns import LABEL
    from airloop.training.models import build_model, score

    usecase, model, train, test = first_champion_rows(home, case)
    task, primary = usecase.task, usecase.metrics[0]
    scorer = metric(primary, usecase.task)
    key = usecase.entity_keys[0]
    inputs = usecase.model_inputs
    champion = score(model, task, test[inputs])
    lags = [c for c in inputs if c.startswith(f"{key}_lags__")]
    calendar = usecase.events.calendar_features
    family = "logistic" if task == "classification" else "linear"
    baseline_model = build_model(task, family, {}, [key], [*lags, *calendar], usecase.training.seed)
    baseline_model.fit(train[[key, *lags, *calendar]], train[LABEL])
    baseline = score(baseline_model, task, test[[key, *lags, *calendar]])
    rates = train.groupby(key)[LABEL].mean()
    base = test[key].map(rates).fillna(train[LABEL].mean()).to_numpy()
    y = test[LABEL].to_numpy()
    out: dict[str, Any] = {
        "metric": primary,
        "higher_is_better": scorer.higher_is_better,
        "train_rows": len(train),
        "test_rows": len(test),
        "champion": scorer.compute(y, champion),
        "baseline": scorer.compute(y, baseline),
        "base_rate": scorer.compute(y, base),
    }
    per_entity = []
    for entity, rows in test.groupby(key):
        at = test.index.get_indexer(rows.index)
        truth = y[at]
        if task == "classification" and len(np.unique(truth)) < 2:
            continue  # one class: a ranking metric says nothing here
        per_entity.append(
            {
                "entity": str(entity),
                "rows": len(rows),
                "champion": scorer.compute(truth, champion[at]),
                "base_rate": scorer.compute(truth, base[at]),
            }
        )
    better = [
        e
        for e in per_entity
        if (e["champion"] > e["base_rate"]) == scorer.higher_is_better
        and e["champion"] != e["base_rate"]
    ]
    out["entities"] = per_entity
    out["entities_beating_base_rate"] = f"{len(better)} of {len(per_entity)}"
    return out


def verdicts(home: Path, name: str) -> dict[str, Any]:
    """The monitoring verdicts of the served intervals: drift and live performance, by status,
    and the retrain requests."""
    folder = home / "monitoring" / name
    drift: dict[str, int] = {}
    live: dict[str, int] = {}
    for interval in sorted((folder / "intervals").glob("*")):
        for file, counts in (("drift.json", drift), ("performance.json", live)):
            path = interval / file
            if path.exists():
                record = json.loads(path.read_text())
                status = str(record.get("status") or ("breach" if record.get("breach") else "ok"))
                status = status.split(":")[0]
                counts[status] = counts.get(status, 0) + 1
    decisions = folder / "decisions.jsonl"
    lines = (
        [json.loads(x) for x in decisions.read_text().splitlines()] if decisions.exists() else []
    )
    requests = [d for d in lines if d.get("request_id")]
    return {"drift": drift, "live": live, "retrain_requests": len(requests)}


def quarantined(home: Path, name: str) -> int:
    folder = home / "quarantine" / name
    return len([p for p in folder.iterdir() if p.is_dir()]) if folder.exists() else 0


def describe(data: DataSet) -> dict[str, Any]:
    """Where a data set comes from and what it is."""
    return {
        "package": data.package,
        "source": data.source,
        "licence": data.licence,
        "domain": data.domain,
        "shape": data.shape,
    }


def measure(data: DataSet, work: Path) -> dict[str, Any]:
    """``airloop init`` and the demo on one data set, in a home of its own."""
    folder = work / data.name
    csv = data.csv()
    case, home = folder / "case", folder / "home"
    env = {**BASE, **PORTS, "AIRLOOP_HOME": str(home)}
    shutil.rmtree(folder, ignore_errors=True)  # a home of its own, new for each run
    folder.mkdir(parents=True)
    say(f"{data.name}: airloop init ...")
    init_seconds, init_out = run(
        [AIRLOOP, "init", data.name, "--data", str(csv), *data.init, "--into", str(case),
         "--force"],
        env, folder,
    )  # fmt: skip
    own = own_file_quarantines(case, csv)
    demo = [AIRLOOP, "demo", "--usecase", str(case), "--trials", "0",
            "--train-intervals", str(data.train_intervals), "--intervals", str(data.intervals),
            *(["--start", data.start] if data.start else [])]  # fmt: skip
    say(f"{data.name}: {' '.join(demo[1:])} ...")
    began = time.monotonic()
    stopped = None
    try:
        run(demo, env, folder)
    except RuntimeError as exc:  # e.g. the gate refused the first model: still compare it
        stopped = next((x for x in str(exc).splitlines() if "replay stopped" in x), str(exc))
        say(f"{data.name}: the demo stopped: {stopped}")
    demo_seconds = time.monotonic() - began
    profile = home / "reports" / data.name / "profile.json"
    served = json.loads(profile.read_text())["served"] if profile.exists() else {}
    result = {
        "name": data.name,
        **describe(data),
        "rows": sum(1 for _ in csv.open()) - 1,
        "init_seconds": round(init_seconds, 1),
        "findings": [line.strip() for line in init_out.splitlines() if line.startswith("  ")],
        "own_file_quarantines": own,
        "demo_quarantines": quarantined(home, data.name),
        "demo_seconds": round(demo_seconds, 1),
        "demo_stopped": stopped,
        "windows": {"train_intervals": data.train_intervals, "intervals": data.intervals},
        "served": served,
        "comparison": compare(home, case),
        "verdicts": verdicts(home, data.name),
    }
    say(f"{data.name}: {json.dumps(result['comparison'], default=str)[:400]}")
    return result


def _served(result: dict[str, Any]) -> str:
    if result.get("demo_stopped"):
        return f"stopped: {result['demo_stopped'].strip()}"
    served = result["served"]
    return f"{served['predicted']} ({served['refused']})"


def _run(result: dict[str, Any]) -> str:
    run = result.get("run")
    return f"{run['date']} {run['commit']} ({run['reference']:.2f} s)" if run else "-"


def _figure(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write(results: list[dict[str, Any]]) -> Path:
    """The results as JSON and as the Markdown table the README links to. A run of some data
    sets (``--only``) replaces theirs and keeps the others' earlier results."""
    out = ROOT / "results"
    path = out / "own-data.json"
    earlier = json.loads(path.read_text()) if path.exists() else {"sets": []}
    fresh = {r["name"] for r in results}
    kept = [r for r in earlier["sets"] if r["name"] not in fresh]
    order = [s.name for s in SETS]
    results = sorted([*kept, *results], key=lambda r: order.index(r["name"]))
    path.write_text(json.dumps({"sets": results}, indent=2, default=str) + "\n")
    lines = [
        "# `airloop init` and the loop on public tables nobody here wrote",
        "",
        "`make bench-own-data` writes this file (`ONLY=name` runs one data set again and keeps "
        "the others' rows). Each row says when and on which commit it ran, and the machine's "
        "speed then: the time a fixed piece of Python took (`reference_seconds`), to read its "
        "minutes by.",
        "",
        "Each: `airloop init` on the CSV as shipped, then `airloop demo --trials 0` on a short "
        "window through Airflow. The first champion, a plain baseline (logistic or ridge "
        "regression on the last known value of every measurement, the entity and the calendar) "
        "and each entity's base rate are scored on the same test rows: the first champion's "
        "training set, split as training splits it.",
        "",
        "| data set | rows | quarantined (own file / demo) | metric | first champion | baseline "
        "| base rate | entities beating their base rate | served (refused) | drift verdicts | "
        "live verdicts | retrain requests | init | demo | run on (machine) |",
        "|---|---:|---|---|---:|---:|---:|---|---|---|---|---:|---:|---:|---|",
    ]
    for r in results:
        if "failed" in r:
            lines.append(f"| {r['name']} | failed: {r['failed'].splitlines()[0][:200]} |")
            continue
        c, v = r["comparison"], r["verdicts"]
        counts = ", ".join(f"{k} {n}" for k, n in v["drift"].items()) or "-"
        live = ", ".join(f"{k} {n}" for k, n in v["live"].items()) or "-"
        lines.append(
            f"| {r['name']} | {r['rows']:,} | {len(r['own_file_quarantines'])} / "
            f"{r['demo_quarantines']} | {c['metric']} | {_figure(c['champion'])} | "
            f"{_figure(c['baseline'])} | {_figure(c['base_rate'])} | "
            f"{c['entities_beating_base_rate']} | {_served(r)} | {counts} | {live} | "
            f"{v['retrain_requests']} | "
            f"{r['init_seconds']:.0f} s | {r['demo_seconds'] / 60:.1f} min | {_run(r)} |"
        )
    lines += ["", "## The data sets", ""]
    lines += [
        f"- **{r['name']}** ({r['domain']}): {r['shape']}. From `{r['package']}` "
        f"(`{r['source']}`); licence: {r['licence']}."
        + (
            f" Windows: {r['windows']['train_intervals']} intervals to the first champion "
            f"({r['comparison']['train_rows']} training rows, {r['comparison']['test_rows']} "
            f"test rows), then {r['windows']['intervals']} served."
            if "failed" not in r
            else ""
        )
        for r in results
    ]
    (out / "own-data.md").write_text("\n".join(lines) + "\n")
    return out / "own-data.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run only this data set (repeatable)")
    parser.add_argument("--work", type=Path, default=CACHE / "runs")
    args = parser.parse_args()
    chosen = [s for s in SETS if not args.only or s.name in args.only]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    results = []
    for data in chosen:
        run = {"date": datetime.now().strftime("%Y-%m-%d"), "commit": commit}
        run["reference"] = reference_seconds()
        try:
            results.append({**measure(data, args.work), "run": run})
        except Exception as exc:  # one data set's failure is a result too: say it, go on
            say(f"{data.name}: FAILED: {exc}")
            results.append({"name": data.name, "failed": str(exc)[-2000:], **describe(data)})
    say(f"wrote {write(results)}")


if __name__ == "__main__":
    main()
