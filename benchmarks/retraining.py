"""How often to retrain, and on how much history: the year's live metric, replayed offline.

Reads the offline store of a home where ``make year`` ran (``--home``; the newest
``/tmp/airloop-bench-year-*`` by default): every event of 2013 with its point-in-time features
and its label. For each schedule (retrain every N days on the W days before, fitted on all of
them or on the earlier share a training run's split leaves, the new model serving until the
next one, promoted whatever it scores), each day's ROC AUC is taken over the
week of events ending with it, as monitoring's live metric is, and the days at
``LIVE_GOAL`` or more are counted from April to December. A count moves with the days the
retrainings fall on, so each schedule runs at two phases. docs/model.md holds the results.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from loop import LIVE_GOAL  # noqa: E402

# (retrain every, window in days, the share of the window's rows a model is fitted on): all of
# it, or the earliest 70 % (training.validation_fraction and test_fraction held out, as the
# loop fitted before training.refit), or 85 % (the test slice held out: training.refit).
SCHEDULES = [
    (28, 56, 1.0),
    (28, 84, 1.0),
    (14, 56, 1.0),
    (14, 84, 1.0),
    (14, 56, 0.70),
    (14, 56, 0.85),
    (14, 84, 0.85),
]
FIRST = pd.Timestamp("2013-03-04", tz="UTC")  # the first retraining of the first phase
COUNTED = (pd.Timestamp("2013-04-01", tz="UTC"), pd.Timestamp("2013-12-31", tz="UTC"))


def year_of_events(home: Path) -> pd.DataFrame:
    """Every labelled event of 2013 with its features, through Feast's point-in-time join."""
    os.environ["AIRLOOP_HOME"] = str(home)
    from airloop.settings import Settings
    from airloop.training.dataset import load_training_set, retrieve_training_set
    from airloop.usecase.model import load_usecase

    start, end = datetime(2013, 1, 1, tzinfo=UTC), datetime(2013, 12, 31, tzinfo=UTC)
    found = retrieve_training_set(
        Settings(), load_usecase("flights"), start, end, as_of=datetime(2014, 1, 2, tzinfo=UTC)
    )
    return load_training_set(found.uri)


def weekly_roc_auc(
    frame: pd.DataFrame, every: int, window: int, first: pd.Timestamp, fitted: float = 1.0
) -> list[float]:
    """Each counted day's ROC AUC over the live metric's window ending with it (the use case's
    ``monitoring.window``), with a model retrained on that schedule, fitted on the earliest
    ``fitted`` share of its window's rows (the rest held out, as the training run's split does)."""
    from airloop.core.columns import EVENT_TS, LABEL
    from airloop.training.models import build_model, score, split_columns
    from airloop.usecase.model import load_usecase

    usecase = load_usecase("flights")
    spec, columns, week = usecase.training, usecase.model_inputs, usecase.monitoring.window
    stamps = pd.to_datetime(frame[EVENT_TS], utc=True)
    scores = pd.Series(np.nan, index=frame.index)
    at = first
    while at < COUNTED[1]:
        # The labels of the window's last hours arrive after it: leave them out.
        train = frame[
            (stamps >= at - pd.Timedelta(days=window)) & (stamps < at - usecase.label.delay)
        ]
        if fitted < 1.0:
            times = pd.to_datetime(train[EVENT_TS], utc=True)
            train = train[times < times.quantile(fitted)]
        categorical, numeric = split_columns(train, columns, spec.categorical)
        model = build_model(usecase.task, spec.family, spec.params, categorical, numeric, spec.seed)
        model.fit(train[columns], train[LABEL])
        until = at + pd.Timedelta(days=every)
        serving = (stamps >= at - week) & (stamps < until) & scores.isna()
        scores[serving] = score(model, usecase.task, frame.loc[serving, columns])
        at = until
    out = []
    for day in pd.date_range(*COUNTED, freq="D", inclusive="both"):
        ends = day + pd.Timedelta(days=1)
        seen = (stamps >= ends - week) & (stamps < ends)
        out.append(float(roc_auc_score(frame.loc[seen, LABEL], scores[seen])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    homes = sorted(Path("/tmp").glob("airloop-bench-year-*"), key=lambda p: p.stat().st_mtime)
    parser.add_argument("--home", type=Path, default=homes[-1] if homes else None)
    args = parser.parse_args()
    if args.home is None:
        raise SystemExit("no year's home: run `make year` first, or give --home")
    frame = year_of_events(args.home)
    print(f"{len(frame)} events; days at {LIVE_GOAL} or more, {COUNTED[0]:%d %B} on")
    for every, window, fitted in SCHEDULES:
        phases = [
            weekly_roc_auc(frame, every, window, FIRST + pd.Timedelta(days=phase), fitted)
            for phase in (0, every // 2)
        ]
        counts = [sum(v >= LIVE_GOAL for v in values) for values in phases]
        total = len(phases[0])
        print(
            f"retrain every {every} days on {window}, fitted on {fitted:.0%} of it:"
            f" {counts[0]} and {counts[1]} of {total}"
            f" ({sum(counts) / (2 * total):.0%})"
        )


if __name__ == "__main__":
    main()
