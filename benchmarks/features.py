"""Which new inputs would lift the year's live metric: candidates screened before they are built.

Judging a new view in the loop costs a year's run (30 to 90 minutes, by machine). This script
screens candidates in minutes: it recomputes the flights use case's inputs in pandas from the
raw 2013 files, each as of the event's hour from what had happened before it (not the engine's
code: a screen, and without the maximum delay), adds the candidates, and replays the retraining
the loop follows (every 14 days on the 56 before, fitted on the earliest 85 %, as
``benchmarks/retraining.py`` does on the engine's store). Each day's ROC AUC is taken over the
week ending with it, at two phases, and the days at ``LIVE_GOAL`` or more are counted from
April to December, and from September to November, the months the loop misses most.

``make bench-features`` (``--only base waiting`` for some, ``--seed`` for the trees' seed):
``benchmarks/results/features.md``.
docs/model.md reads the table.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from loop import LIVE_GOAL  # noqa: E402

HOUR = np.int64(3600 * 10**9)
FIRST = pd.Timestamp("2013-03-04", tz="UTC")  # the first retraining, as in retraining.py
COUNTED = pd.date_range("2013-04-01", "2013-12-30", freq="D", tz="UTC")
AUTUMN = (COUNTED >= "2013-09-01") & (COUNTED < "2013-12-01")
EVERY, WINDOW, FITTED = 14, 56, 0.85
WEATHER = ["temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"]


def raw() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every flight of 2013 with its moments, and the hourly weather."""
    from airloop.data.replay import read_replay_file, resolve_replay_path
    from airloop.usecase.model import load_usecase

    replay = load_usecase("flights").replay
    if replay is None:
        raise SystemExit("the flights use case has no replay files")
    files = {name: resolve_replay_path(source.path) for name, source in replay.sources.items()}
    flights, weather = read_replay_file(files["flights"]), read_replay_file(files["weather"])
    flights["at"] = pd.to_datetime(flights.time_hour, utc=True)
    flights["scheduled"] = flights["at"] + pd.to_timedelta(flights.minute, unit="min")
    flights["departed"] = flights["scheduled"] + pd.to_timedelta(flights.dep_delay, unit="min")
    flights["late_departure"] = (flights.dep_delay > 15).astype(float)
    flights["route"] = flights.origin + "-" + flights.dest
    weather["at"] = pd.to_datetime(weather.time_hour, utc=True)
    return flights, weather


def nanos(stamps: pd.Series) -> np.ndarray:
    return stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def departures_before(
    events: pd.DataFrame, departures: pd.DataFrame, key: str, hours: int, name: str
) -> pd.DataFrame:
    """Per event, the departures of its ``key`` in the ``hours`` before its hour: mean delay,
    count, share over 15 minutes (those that had left by then, as the hourly snapshots)."""
    mean, late = np.full(len(events), np.nan), np.full(len(events), np.nan)
    count = np.zeros(len(events))
    groups = {k: g.sort_values("departed") for k, g in departures.groupby(key)}
    for k, index in events.groupby(key).groups.items():
        if (group := groups.get(k)) is None:
            continue
        left = nanos(group.departed)
        delays = np.concatenate([[0.0], np.cumsum(group.dep_delay.to_numpy())])
        lates = np.concatenate([[0.0], np.cumsum(group.late_departure.to_numpy())])
        at = nanos(events.loc[index, "at"])
        hi = np.searchsorted(left, at)
        lo = np.searchsorted(left, at - hours * HOUR)
        n = hi - lo
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[index] = np.where(n > 0, (delays[hi] - delays[lo]) / n, np.nan)
            late[index] = np.where(n > 0, (lates[hi] - lates[lo]) / n, np.nan)
        count[index] = n
    return pd.DataFrame(
        {
            f"{name}_mean_{hours}h": mean,
            f"{name}_count_{hours}h": count,
            f"{name}_late_{hours}h": late,
        }
    )


def last_departure(events: pd.DataFrame, departures: pd.DataFrame, hours: int = 12) -> np.ndarray:
    """The aircraft's last departure delay within ``hours`` before the event's hour."""
    out = np.full(len(events), np.nan)
    known = departures[departures.tailnum.notna()]
    groups = {k: g.sort_values("departed") for k, g in known.groupby("tailnum")}
    for k, index in events[events.tailnum.notna()].groupby("tailnum").groups.items():
        if (group := groups.get(k)) is None:
            continue
        left, at = nanos(group.departed), nanos(events.loc[index, "at"])
        before = np.searchsorted(left, at) - 1
        ok = (before >= 0) & (at - left[np.maximum(before, 0)] <= hours * HOUR)
        out[index] = np.where(ok, group.dep_delay.to_numpy()[np.maximum(before, 0)], np.nan)
    return out


def label_rates(events: pd.DataFrame, key: str, days: int) -> np.ndarray:
    """The share of ``key``'s flights that arrived late over the ``days`` before the event's day."""
    day = events["at"].dt.floor("D")
    daily = events.assign(day=day).groupby([key, "day"]).late.agg(["sum", "count"])
    frames = []
    for k, group in daily.groupby(level=0):
        per_day = group.droplevel(0).asfreq("D", fill_value=0)
        rolled = per_day.rolling(days, min_periods=1).sum().shift(1)
        frames.append(
            pd.DataFrame(
                {
                    key: k,
                    "day": per_day.index.to_numpy(),
                    "rate": (rolled["sum"] / rolled["count"]).to_numpy(),
                }
            )
        )
    rates = pd.concat(frames)
    return pd.DataFrame({key: events[key], "day": day}).merge(rates, how="left")["rate"].to_numpy()


def still_waiting(events: pd.DataFrame, flights: pd.DataFrame, hours: int = 2) -> pd.DataFrame:
    """Flights scheduled in the ``hours`` before the event's hour that had not left by it
    (cancelled ones included): at the origin, of the airline, and the origin's share."""
    gone = flights["scheduled"] + pd.to_timedelta(flights.dep_delay.fillna(10**6), unit="min")
    first = flights["scheduled"].dt.ceil("h")
    first = first.where(first > flights["scheduled"], first + pd.Timedelta(hours=1))
    waiting, scheduled = [], []
    for k in range(hours):  # each hour boundary within ``hours`` after the scheduled moment
        at = first + pd.Timedelta(hours=k)
        within = at <= flights["scheduled"] + pd.Timedelta(hours=hours)
        scheduled.append(flights.loc[within, ["origin"]].assign(at=at[within]))
        left = within & (gone >= at)
        waiting.append(flights.loc[left, ["origin", "carrier"]].assign(at=at[left]))
    wait, sched = pd.concat(waiting), pd.concat(scheduled)
    keys = events[["origin", "carrier", "at"]]
    origin = keys.merge(wait.groupby(["origin", "at"]).size().rename("n").reset_index(), how="left")
    carrier = keys.merge(
        wait.groupby(["carrier", "at"]).size().rename("n").reset_index(), how="left"
    )
    total = keys.merge(sched.groupby(["origin", "at"]).size().rename("n").reset_index(), how="left")
    return pd.DataFrame(
        {
            "waiting_origin": origin.n.fillna(0).to_numpy(),
            "waiting_carrier": carrier.n.fillna(0).to_numpy(),
            "waiting_share": (origin.n.fillna(0) / total.n).to_numpy(),
        }
    )


class Trial(NamedTuple):
    """A set of inputs, and the half-life in days of the training rows' weights (None: equal)."""

    columns: list[str]
    half_life: float | None = None


def inputs() -> tuple[pd.DataFrame, dict[str, Trial]]:
    """Every labelled flight with the use case's inputs and the candidates; the trials."""
    flights, weather = raw()
    departures = flights[flights.dep_delay.notna()]
    events = flights[flights.arr_delay.notna()].reset_index(drop=True)
    events["late"] = (events.arr_delay > 15).astype(float)
    events["service"] = events.carrier + "_" + events.flight.astype(str) + "_" + events.origin
    frame = pd.concat(
        [
            departures_before(events, departures, "origin", 1, "origin"),
            departures_before(events, departures, "origin", 3, "origin"),
            departures_before(events, departures, "carrier", 3, "carrier"),
            departures_before(events, departures, "dest", 3, "dest"),
            still_waiting(events, flights),
        ],
        axis=1,
    )
    frame["plane_last_delay"] = last_departure(events, departures)
    for key, days in (
        ("carrier", 1),
        ("carrier", 7),
        ("route", 7),
        ("route", 28),
        ("service", 7),
        ("service", 28),
    ):
        frame[f"{key}_rate_{days}d"] = label_rates(events, key, days)
    hourly = weather.drop_duplicates(["origin", "at"])[["origin", "at", *WEATHER]]
    frame[WEATHER] = events[["origin", "at"]].merge(hourly, how="left")[WEATHER].to_numpy()
    for column in ("distance", "hour", "month"):
        frame[column] = events[column].to_numpy()
    for column in ("carrier", "origin"):
        frame[column] = events[column].astype("category")
    frame["at"], frame["late"] = events["at"], events["late"]
    base = [
        *(f"origin_{s}_{h}h" for h in (1, 3) for s in ("mean", "count", "late")),
        "carrier_mean_3h",
        "carrier_count_3h",
        "plane_last_delay",
        "carrier_rate_1d",
        "carrier_rate_7d",
        "route_rate_7d",
        "route_rate_28d",
        *WEATHER,
        "distance",
        "hour",
        "month",
        "carrier",
        "origin",
    ]
    destination = ["dest_mean_3h", "dest_count_3h", "dest_late_3h"]
    waiting = ["waiting_origin", "waiting_carrier", "waiting_share"]
    service = ["service_rate_7d", "service_rate_28d"]  # a flight number from its origin
    trials = {
        "base": Trial(base),
        "destination": Trial([*base, *destination]),
        "recency": Trial(base, half_life=14.0),
        "waiting": Trial([*base, *waiting]),
        "service": Trial([*base, *service]),
        "service_destination": Trial([*base, *service, *destination]),
        "service_destination_waiting": Trial([*base, *service, *destination, *waiting]),
    }
    return frame, trials


def age_weights(stamps: pd.Series, at: pd.Timestamp, half_life_days: float) -> np.ndarray:
    """Half the weight every ``half_life_days`` back from the retraining."""
    return np.power(0.5, (at - stamps).dt.total_seconds().to_numpy() / 86400 / half_life_days)


def replay(
    frame: pd.DataFrame, trial: Trial, first: pd.Timestamp, seed: int | None = None
) -> np.ndarray:
    """Each counted day's ROC AUC over the week ending with it, the models retrained as the
    loop retrains them."""
    from airloop.usecase.model import load_usecase

    usecase = load_usecase("flights")
    columns, half_life = trial
    spec, delay = usecase.training, usecase.label.delay
    stamps, labels = frame["at"], frame["late"].to_numpy()
    scores = np.full(len(frame), np.nan)
    categorical = [i for i, c in enumerate(columns) if str(frame[c].dtype) == "category"]
    at = first
    while at <= COUNTED[-1]:
        window = (stamps >= at - pd.Timedelta(days=WINDOW)) & (stamps < at - delay)
        fitted = window & (stamps < stamps[window].quantile(FITTED))
        model = HistGradientBoostingClassifier(
            **spec.params,
            categorical_features=categorical,
            random_state=spec.seed if seed is None else seed,
        )
        sample_weight = age_weights(stamps[fitted], at, half_life) if half_life else None
        model.fit(frame.loc[fitted, columns], labels[fitted], sample_weight=sample_weight)
        until = at + pd.Timedelta(days=EVERY)
        serving = ((stamps >= at - pd.Timedelta(days=7)) & (stamps < until)).to_numpy()
        serving &= np.isnan(scores)
        scores[serving] = model.predict_proba(frame.loc[serving, columns])[:, 1]
        at = until
    out = []
    for day in COUNTED:
        ends = day + pd.Timedelta(days=1)
        week = ((stamps >= ends - pd.Timedelta(days=7)) & (stamps < ends)).to_numpy()
        out.append(roc_auc_score(labels[week], scores[week]))
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="the sets to try (default: all)")
    parser.add_argument("--seed", type=int, help="the trees' seed (default: the use case's)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "features.md")
    args = parser.parse_args()
    frame, trials = inputs()
    rows = [
        "# Candidate inputs, screened offline",
        "",
        f"Measured {datetime.now().astimezone():%Y-%m-%d %H:%M %Z} by `make bench-features`"
        " (benchmarks/features.py). Retrained every 14 days on the 56 before, fitted on the"
        f" earliest 85 %; days whose week's ROC AUC is {LIVE_GOAL} or more, at two phases.",
        "",
        "| inputs | April to December (of 274) | September to November (of 91) | mean weekly ROC AUC"
        " | September to November |",
        "|---|---|---|---:|---:|",
    ]
    for name in args.only or list(trials):
        phases = [
            replay(frame, trials[name], FIRST + pd.Timedelta(days=p), args.seed) for p in (0, 7)
        ]
        days = [int((v >= LIVE_GOAL).sum()) for v in phases]
        autumn = [int((v[AUTUMN] >= LIVE_GOAL).sum()) for v in phases]
        mean = np.mean([v.mean() for v in phases])
        autumn_mean = np.mean([v[AUTUMN].mean() for v in phases])
        rows.append(
            f"| {name} | {days[0]} and {days[1]} ({sum(days) / (2 * len(COUNTED)):.0%})"
            f" | {autumn[0]} and {autumn[1]} | {mean:.3f} | {autumn_mean:.3f} |"
        )
        print(rows[-1], flush=True)
    args.out.write_text("\n".join(rows) + "\n")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
