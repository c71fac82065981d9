"""The flights use case's raw data multiplied xN, for ``make bench-scale`` (benchmarks/scale.py).

The transformation, deterministic and with no randomness: every flight of a day becomes N
flights at the same moments, one per *copy*, and copy ``k`` is the original world with every
entity key renamed by appending ``.k`` (copy 0 keeps the original names, so x1 is the
original data row for row):

- flights (and so departures and arrivals, replayed from the same file): ``carrier``
  (``UA`` → ``UA.3``), ``origin`` (``EWR`` → ``EWR.3``), ``dest`` (``IAH`` → ``IAH.3``) and
  ``tailnum`` (``N14228`` → ``N14228.3``; a missing one stays missing). The flight number is
  kept: ``flight_id`` and ``service`` (``carrier_flight_origin``) are distinct per copy through
  the carrier, and a flight number must stay within the use case's 1 to 9999;
- weather: each origin's hourly rows copied with their origin (``EWR.3`` has EWR's weather);
- planes: the register copied, its ``tailnum`` renamed; airlines: ``carrier`` renamed and
  ``(copy k)`` added to the name.

Each copy is the original world renamed: every entity's feature values (an origin's departures
in the last hours, a route's late share, an aircraft's last delay) are those of the original
entity, so the distributions of rows and features are the original ones, and every timestamp
(the hour, the minute, the six hours to the arrival) is unchanged: the point-in-time structure
is the same. Only the number of rows, entities and online keys grows xN.

The shipped use case declares ``values`` for carrier and origin and ``max_rows`` per partition
that the copies exceed: :func:`scaled_usecase` writes a variant (beside the data, never over
the shipped file) with those value sets and bounds widened xN, the replay pointing at the
copies, and two settings a benchmark needs (named in its docstring).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

SEPARATOR = "."  # in no original key: a renamed key never equals another original
FLIGHT_KEYS = ("carrier", "origin", "dest", "tailnum")
PARTITIONED = ("flights", "arrivals", "departures", "weather")


def renamed(values: pd.Series, copy: int) -> pd.Series:
    """The keys of copy ``copy``: unchanged for copy 0, else ``key.copy`` (missing stays missing)."""
    if copy == 0:
        return values
    suffixed = values.astype(object).map(
        lambda v: v if pd.isna(v) else f"{v}{SEPARATOR}{copy}", na_action="ignore"
    )
    return suffixed.astype(values.dtype)


def copies(frame: pd.DataFrame, n: int, keys: Iterable[str]) -> pd.DataFrame:
    """``n`` copies of ``frame``, ``keys`` renamed per copy; each original row is followed by its
    copies (the file's time order kept), and the index is 0..len-1."""
    if n < 1:
        raise ValueError(f"a scale is a whole number of copies, 1 or more; got {n}")
    names = list(keys)
    missing = [k for k in names if k not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} to rename per copy are not in the frame")
    parts = []
    for k in range(n):
        part = frame.copy()
        for key in names:
            part[key] = renamed(frame[key], k)
        part["_row"], part["_copy"] = range(len(frame)), k
        parts.append(part)
    out = pd.concat(parts, ignore_index=True).sort_values(["_row", "_copy"], kind="stable")
    return out.drop(columns=["_row", "_copy"]).reset_index(drop=True)


def multiply_flights(flights: pd.DataFrame, n: int) -> pd.DataFrame:
    """Each flight xN: carrier, origin, destination and aircraft renamed per copy."""
    return copies(flights, n, FLIGHT_KEYS)


def multiply_weather(weather: pd.DataFrame, n: int) -> pd.DataFrame:
    """Each origin's hourly weather copied with its origin."""
    return copies(weather, n, ["origin"])


def multiply_planes(planes: pd.DataFrame, n: int) -> pd.DataFrame:
    """The aircraft register, one aircraft per copy of each tail number."""
    return copies(planes, n, ["tailnum"])


def multiply_airlines(airlines: pd.DataFrame, n: int) -> pd.DataFrame:
    """The carriers of every copy, named after their original."""
    out = copies(airlines, n, ["carrier"])
    copy_of = pd.Series([k for _ in range(len(airlines)) for k in range(n)])
    later = copy_of > 0
    out.loc[later, "name"] = out.loc[later, "name"] + " (copy " + copy_of[later].astype(str) + ")"
    return out


def within_days(frame: pd.DataFrame, first: date, days: int) -> pd.DataFrame:
    """The rows whose ``time_hour`` falls in ``days`` days from ``first`` (UTC)."""
    stamps = pd.to_datetime(frame["time_hour"], utc=True)
    lo = pd.Timestamp(first, tz="UTC")
    hi = lo + pd.Timedelta(days=days)
    return frame[(stamps >= lo) & (stamps < hi)].reset_index(drop=True)


def multiply(
    raw: dict[str, pd.DataFrame], n: int, first: date, days: int
) -> dict[str, pd.DataFrame]:
    """The raw tables (flights, weather, planes, airlines) of ``days`` days from ``first``, xN."""
    return {
        "flights": multiply_flights(within_days(raw["flights"], first, days), n),
        "weather": multiply_weather(within_days(raw["weather"], first, days), n),
        "planes": multiply_planes(raw["planes"], n),
        "airlines": multiply_airlines(raw["airlines"], n),
    }


def widened_values(values: list[str], n: int) -> list[str]:
    """A declared value set with every copy's names (copy 0's first: the original set)."""
    return [v if k == 0 else f"{v}{SEPARATOR}{k}" for k in range(n) for v in values]


def scaled_usecase(
    spec: dict[str, Any], n: int, files: dict[str, Path], first: date, days: int
) -> dict[str, Any]:
    """The flights use case (its YAML as a mapping) for the copies: a new mapping.

    - every declared ``values`` of ``carrier`` and ``origin`` holds every copy's names, and each
      partitioned source's ``max_rows`` is xN (``min_rows`` stays: it is a floor);
    - the replay reads the copies' files (``files``: flights, weather, planes, airlines) over
      [first, first + days);
    - ``serving.past_events: flag``: the benchmark serves past days after the whole window was
      materialised (the demo moves the online store with a replay clock instead), so requests
      about those days are answered, flagged, rather than refused;
    - ``monitoring.min_rows`` 500 (the shipped 3,000 is three days at x1): one served day is
      then enough for a verdict at every scale, and each scale takes the same path.
    """
    out: dict[str, Any] = {**spec, "name": f"flights_x{n}"}
    out["description"] = (
        f"{spec.get('description', '').strip()} Scaled x{n} by benchmarks/scale_data.py."
    )
    sources = {}
    for name, source in spec["sources"].items():
        source = {**source}
        if name in PARTITIONED and "max_rows" in source:
            source["max_rows"] = source["max_rows"] * n
        columns = []
        for column in source["columns"]:
            if column["name"] in ("carrier", "origin") and "values" in column:
                column = {**column, "values": widened_values(column["values"], n)}
            columns.append(column)
        source["columns"] = columns
        sources[name] = source
    out["sources"] = sources
    replay = {**spec["replay"], "start": first.isoformat()}
    replay["end"] = (first + timedelta(days=days)).isoformat()
    replay_sources = {}
    for name, source in spec["replay"]["sources"].items():
        table = "flights" if name in ("flights", "departures", "arrivals") else name
        replay_sources[name] = {**source, "path": str(files[table])}
    replay["sources"] = replay_sources
    out["replay"] = replay
    out["serving"] = {**spec.get("serving", {}), "past_events": "flag"}
    out["monitoring"] = {**spec["monitoring"], "min_rows": 500}
    return out


CACHE = Path(__file__).resolve().parent / ".cache" / "scale"  # gitignored (benchmarks/.cache/)


def raw_tables() -> dict[str, pd.DataFrame]:
    """The shipped use case's replay files as they are: flights, weather, planes, airlines."""
    from airloop.data.replay import read_replay_file, resolve_replay_path
    from airloop.usecase.model import load_usecase

    replay = load_usecase("flights").replay
    if replay is None:
        raise SystemExit("the flights use case has no replay section to scale")
    tables = ("flights", "weather", "planes", "airlines")
    return {t: read_replay_file(resolve_replay_path(replay.sources[t].path)) for t in tables}


def prepare(
    n: int, first: date, days: int, cache: Path = CACHE, raw: dict[str, pd.DataFrame] | None = None
) -> Path:
    """The xN copies of [first, first + days) and their use case, written once under ``cache``;
    the path of the use case's YAML (an existing one is reused: the transformation has no
    randomness, so the same arguments give the same files)."""
    import yaml

    from airloop.usecase.model import resolve_usecase_path

    folder = cache / f"x{n}-{first.isoformat()}-{days}d"
    target = folder / "usecase.yaml"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    tables = multiply(raw if raw is not None else raw_tables(), n, first, days)
    files = {}
    for name, frame in tables.items():
        files[name] = folder / f"{name}.parquet"
        frame.to_parquet(files[name], index=False)
    spec = yaml.safe_load(resolve_usecase_path("flights").read_text())
    text = yaml.safe_dump(scaled_usecase(spec, n, files, first, days), sort_keys=False)
    partial = target.with_suffix(".tmp")
    partial.write_text(f"# Written by benchmarks/scale_data.py: the flights use case x{n}.\n{text}")
    partial.replace(target)  # last: a half-written folder is never taken for a finished one
    return target


def demo_variant(scaled: dict[str, Any], shipped: dict[str, Any]) -> dict[str, Any]:
    """The scaled use case as ``airloop demo`` runs it: a new mapping with the shipped
    ``serving`` and ``monitoring`` sections back in place of the two settings
    :func:`scaled_usecase` changes for the stage benchmark (``past_events: flag``,
    ``monitoring.min_rows`` 500). The demo moves the online store with its replay clock and
    monitors as shipped, so at x1 it is the shipped demo, only the use case renamed; the copies,
    the widened value sets and bounds and the replay's files stay."""
    out = {}
    for key, value in scaled.items():
        if key in ("serving", "monitoring"):
            if key in shipped:
                out[key] = shipped[key]
            continue
        out[key] = value
    return out


def prepare_demo(
    n: int, first: date, days: int, cache: Path = CACHE, raw: dict[str, pd.DataFrame] | None = None
) -> Path:
    """The xN copies of [first, first + days) as :func:`prepare` makes them, and beside their use
    case ``usecase-demo.yaml`` (:func:`demo_variant`), written once; its path."""
    import yaml

    from airloop.usecase.model import resolve_usecase_path

    scaled = prepare(n, first, days, cache, raw)
    target = scaled.with_name("usecase-demo.yaml")
    if target.is_file():
        return target
    shipped = yaml.safe_load(resolve_usecase_path("flights").read_text())
    spec = demo_variant(yaml.safe_load(scaled.read_text()), shipped)
    text = yaml.safe_dump(spec, sort_keys=False)
    partial = target.with_suffix(".tmp")
    partial.write_text(
        f"# Written by benchmarks/scale_data.py: the flights use case x{n}, as the demo runs it.\n"
        f"{text}"
    )
    partial.replace(target)
    return target
