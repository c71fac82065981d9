"""The embedded homes ``airloop ci`` trains in: their settings, window, seeding and cache.

Each side gets a home of its own (its own offline and online stores, Feast registry and MLflow),
so a change to a feature's definition is computed from the raw rows as a run would compute it,
and nothing the check does touches the homes and stores a person works with. The base's home
is kept and reused while the base's use case, the window and this engine are the same: a pull
request's second push pays for its candidate only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from airloop.core.columns import EVENTS_TABLE
from airloop.core.errors import PermanentError
from airloop.core.files import read_json, write_json
from airloop.core.paths import PACKAGE_DIR
from airloop.core.periods import to_utc
from airloop.core.provenance import lock_hash
from airloop.core.records import Record
from airloop.data.landing import link_landing_zone
from airloop.data.replay import land_window
from airloop.features.offline import table_dir
from airloop.features.pipeline import run_interval
from airloop.features.store import apply_definitions
from airloop.settings import Settings
from airloop.training.dataset import TrainingSet
from airloop.usecase import UseCase

log = logging.getLogger(__name__)
KEPT_VARIABLES = ("AIRLOOP_LOG_LEVEL",)
DONE = "ci-base.json"


class CiWindow(Record):
    """The intervals both sides are built and trained on: [start, end)."""

    start: str
    end: str
    intervals: int

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as datetimes."""
        return datetime.fromisoformat(self.start), datetime.fromisoformat(self.end)


def ci_window(
    usecase: UseCase,
    start: datetime | None,
    end: datetime | None,
    count: int | None,
    held: tuple[datetime, datetime] | None = None,
) -> CiWindow:
    """The recent window: ``count`` intervals (default: the first champion's window,
    ``replay.first_window``) ending at ``end`` (default: the end of what a home in use holds,
    ``held``, else the replay's end); or [start, end). Never before what ``held`` begins with."""
    end = end or (held[1] if held else None)
    if usecase.replay is None and end is None:
        raise PermanentError(
            f"use case {usecase.name!r} has no replay section to seed a home from: give the"
            " window with --start and --end over data its replay can land"
        )
    cadence = usecase.cadence
    hi = to_utc(end) if end is not None else to_utc(usecase.replay.end)  # type: ignore[union-attr]
    if start is not None:
        lo = cadence.floor(to_utc(start))
    elif count is not None:
        lo = hi
        for _ in range(count):
            lo = cadence.floor(lo - cadence.step)
    else:
        lo = cadence.floor(hi - usecase.first_window)
    if held is not None and start is None:
        lo = max(lo, held[0])
    intervals = cadence.intervals(lo, hi)
    if not intervals:
        raise PermanentError(f"the CI window [{lo:%Y-%m-%d}, {hi:%Y-%m-%d}) holds no interval")
    return CiWindow(start=lo.isoformat(), end=hi.isoformat(), intervals=len(intervals))


@contextmanager
def without_airloop_environment() -> Iterator[None]:
    """The shell's ``AIRLOOP_*`` settings hidden for a while: a CI home is embedded and its
    own, whatever profile, home or servers the shell points at."""
    hidden = {
        k: v for k, v in os.environ.items() if k.startswith("AIRLOOP_") and k not in KEPT_VARIABLES
    }
    for name in hidden:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(hidden)


def home_settings(home: Path, usecase_ref: str) -> Settings:
    """Embedded settings for a CI home and one use case, nothing taken from the shell."""
    with without_airloop_environment():
        return Settings(profile="embedded", home=home, usecase=usecase_ref)


def seed_home(
    settings: Settings, usecase: UseCase, window: CiWindow, landed: Path | None = None
) -> None:
    """Register the use case's definitions, land the window's raw data (replayed, or linked
    from the landing zone ``landed`` of a home in use) and run the feature pipeline on each of
    its intervals, in this process (as ``airloop land`` and ``run`` do)."""
    lo, hi = window.bounds
    apply_definitions(settings, usecase)
    if landed is not None:
        if not link_landing_zone(landed, settings.landing_root(usecase.name)):
            raise PermanentError(f"no landed files in {landed} to build the candidate from")
    else:
        land_window(usecase, settings, lo, hi)
    for start, end in usecase.cadence.intervals(lo, hi):
        run_interval(start, end, usecase, settings)


def held_span(settings: Settings, usecase: UseCase) -> tuple[datetime, datetime]:
    """[the first interval's start, the last one's end] of the events a home's offline store
    holds; an error that says what to run when it holds none."""
    starts = sorted(p.stem for p in table_dir(settings, usecase, EVENTS_TABLE).glob("*.parquet"))
    if not starts:
        raise PermanentError(
            f"the offline store of {settings.home} holds no events of {usecase.name!r}: run the"
            " feature pipeline there first, or drop --registered"
        )
    first, last = (pd.Timestamp(s, tz="UTC").to_pydatetime() for s in (starts[0], starts[-1]))
    return first, usecase.cadence.next_start(last)


def engine_digest() -> str:
    """A digest of airloop's code and its lock file: a base home built by other code is rebuilt."""
    digest = hashlib.sha256(lock_hash().encode())
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def folder_digest(folder: Path) -> str:
    """A digest of a use case folder's files (names and contents; data files linked in too)."""
    digest = hashlib.sha256()
    for path in sorted(
        p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class BaseSide(Record):
    """The base's home, once built: the champion it registered and the rows it trained on."""

    home: str
    champion_version: str
    training_set: TrainingSet


def base_key(folder: Path, window: CiWindow) -> str:
    """What a base home depends on: its use case, the window and this engine."""
    digest = hashlib.sha256(folder_digest(folder).encode())
    digest.update(f"{window.start}/{window.end}".encode())
    digest.update(engine_digest().encode())
    return digest.hexdigest()[:16]


def kept_base(home: Path) -> BaseSide | None:
    """The base side an earlier check built in ``home``, if it finished."""
    record = home / DONE
    if not record.is_file():
        return None
    return BaseSide.from_dict(read_json(record))


def keep_base(side: BaseSide) -> None:
    """Mark a base home finished, so the next check with the same key reuses it."""
    write_json(Path(side.home) / DONE, side.to_dict())


def fresh_home(home: Path) -> Path:
    """An empty folder for a home (what was there is removed: a CI home is scratch)."""
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    return home


def candidate_folder(work: Path) -> Path:
    """A new home for this check's candidate; earlier checks' candidate homes are removed.

    Each check gets a path of its own: MLflow keeps its stores open by path for the life of a
    process, so a home rebuilt at the same path would be written through a stale connection.
    """
    for old in work.glob("candidate-*"):
        shutil.rmtree(old, ignore_errors=True)
    return fresh_home(work / f"candidate-{datetime.now(UTC):%Y%m%dT%H%M%S%f}")


def prune_bases(work: Path, keep: str) -> None:
    """Remove base homes of other keys: one is kept per work folder."""
    for old in work.glob("base-" + "[0-9a-f]" * len(keep)):
        if old.name != f"base-{keep}":
            log.info("removing the base home %s (another use case, window or engine)", old)
            shutil.rmtree(old, ignore_errors=True)
