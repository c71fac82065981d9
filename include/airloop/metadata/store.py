"""airloop's own records in the profile's metadata database (P4, P7).

Three tables beside Airflow's (prefixed ``airloop_``): every task instance of airloop's DAGs
(written by the listener), every feature-pipeline interval that reached the offline store
(written by the publish stage) and every champion decision (promotion, refusal, rollback,
approval); and a fourth of named locks held through the database (``MetadataStore.lock``).
SQLite in the embedded home, the production PostgreSQL otherwise (``AIRLOOP_METADATA_DB_URL``,
default: Airflow's database). Tables are created on first use.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa

from airloop.settings import Settings

META = sa.MetaData()
TEXT_ID = sa.String(250)

TASK_RUNS = sa.Table(
    "airloop_task_runs",
    META,
    sa.Column("dag_id", TEXT_ID, primary_key=True),
    sa.Column("run_id", TEXT_ID, primary_key=True),
    sa.Column("task_id", TEXT_ID, primary_key=True),
    sa.Column("map_index", sa.Integer, primary_key=True),
    sa.Column("try_number", sa.Integer, primary_key=True),
    sa.Column("usecase", TEXT_ID),
    sa.Column("state", sa.String(32)),
    sa.Column("start_date", sa.DateTime(timezone=True)),
    sa.Column("end_date", sa.DateTime(timezone=True)),
    sa.Column("duration", sa.Float),
    sa.Column("hostname", TEXT_ID),
    sa.Column("executor", TEXT_ID),
    sa.Column("run_type", sa.String(64)),
    sa.Column("conf", sa.Text),
    sa.Column("data_interval_start", sa.DateTime(timezone=True)),
    sa.Column("data_interval_end", sa.DateTime(timezone=True)),
    sa.Column("mlflow_run_ids", sa.Text),
    sa.Column("error", sa.Text),
)

INTERVAL_RUNS = sa.Table(
    "airloop_interval_runs",
    META,
    sa.Column("usecase", TEXT_ID, primary_key=True),
    sa.Column("partition", sa.String(64), primary_key=True),
    sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("interval_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("dag_id", TEXT_ID),
    sa.Column("run_id", TEXT_ID),
    sa.Column("trigger", sa.String(64)),
    sa.Column("raw", sa.Text, nullable=False),  # source -> {sha256, bytes, landed}
    sa.Column("validation", sa.Text, nullable=False),  # {success, report, rows}
    sa.Column("published", sa.Text, nullable=False),  # table -> offline partition
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

MODEL_EVENTS = sa.Table(
    "airloop_model_events",
    META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("usecase", TEXT_ID, nullable=False),
    sa.Column("model", TEXT_ID, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("champion_before", sa.String(32)),
    sa.Column("champion_after", sa.String(32)),
    sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", TEXT_ID, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("dag_id", TEXT_ID),
    sa.Column("run_id", TEXT_ID),
    sa.Column("evidence_uri", sa.Text),
    sa.Column("evidence", sa.Text, nullable=False),
)

# Named locks held across processes and hosts through the database itself (SQLite in the
# embedded home, PostgreSQL in production): a row per lock held, its primary key the lock.
# A holder that dies leaves its row until the lease ends; the next taker then replaces it.
LOCKS = sa.Table(
    "airloop_locks",
    META,
    sa.Column("name", TEXT_ID, primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


class LockTimeout(RuntimeError):
    """A lock stayed taken for longer than its taker would wait."""


JSON_COLUMNS = {"conf", "mlflow_run_ids", "raw", "validation", "published", "evidence"}


def utc(value: datetime | None) -> datetime | None:
    """Aware UTC; SQLite hands naive datetimes back."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_ENGINES = threading.Lock()  # one engine per URL, even when a process's threads start at once
CREATE_TRIES = 5


def _engine(url: str) -> sa.Engine:
    with _ENGINES:
        return _new_engine(url)


@cache
def _new_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _wal(conn: Any, _: Any) -> None:
            conn.execute("PRAGMA journal_mode=WAL")

    else:
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)
    for tried in range(1, CREATE_TRIES + 1):
        try:
            META.create_all(engine, checkfirst=True)
            break
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.OperationalError):
            # Another process is creating them meanwhile (parallel tasks' first records):
            # PostgreSQL says so with an integrity or programming error, SQLite with "table
            # ... already exists". Each try finds more of them there.
            if tried == CREATE_TRIES:
                raise
            time.sleep(0.05 * tried)
    return engine


def _row(mapping: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if key in JSON_COLUMNS and value is not None:
            value = json.loads(value)
        elif isinstance(value, datetime):
            value = utc(value)
        out[key] = value
    return out


def _values(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: json.dumps(v, sort_keys=True, default=str) if k in JSON_COLUMNS and v is not None else v
        for k, v in row.items()
    }


class MetadataStore:
    """Reads and writes airloop's tables; every write is one transaction."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.metadata_db_conn

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        with _engine(self.url).begin() as conn:
            yield conn

    def _upsert(self, table: sa.Table, row: Mapping[str, Any]) -> None:
        keys = [c.name for c in table.primary_key.columns]
        where = sa.and_(*(table.c[k] == row[k] for k in keys))
        with self._begin() as conn:
            conn.execute(sa.delete(table).where(where))
            conn.execute(sa.insert(table).values(**_values(row)))

    def _select(self, query: sa.Select[Any]) -> list[dict[str, Any]]:
        with self._begin() as conn:
            return [_row(dict(r._mapping)) for r in conn.execute(query)]

    # Locks ---------------------------------------------------------------------------------
    @contextmanager
    def lock(self, name: str, lease: float = 180.0, wait: float = 240.0) -> Iterator[None]:
        """Hold the named lock for the block: one holder at a time across every process and
        host sharing this database (a read-modify-write that must not interleave).

        A holder that dies keeps it until ``lease`` seconds after it took it; the block must
        finish within the lease. Waits up to ``wait`` seconds, then raises :class:`LockTimeout`.
        """
        holder = uuid.uuid4().hex
        deadline = time.monotonic() + wait
        pause = 0.01
        while not self._take(name, holder, lease):
            if time.monotonic() > deadline:
                raise LockTimeout(
                    f"the lock {name!r} stayed taken for {wait:.0f} s (table {LOCKS.name} in"
                    f" {sa.make_url(self.url).render_as_string(hide_password=True)}); its"
                    f" holder's lease ends {lease:.0f} s after it took it"
                )
            # Jittered, so that waiters do not all knock at once.
            time.sleep(pause * (1 + random.random()))  # nosec B311 # timing jitter, no secret
            pause = min(pause * 2, 0.5)
        try:
            yield
        finally:
            with self._begin() as conn:
                conn.execute(
                    sa.delete(LOCKS).where((LOCKS.c.name == name) & (LOCKS.c.holder == holder))
                )

    def _take(self, name: str, holder: str, lease: float) -> bool:
        """One try: replace an expired holder's row, then insert ours (False: it is held)."""
        now = datetime.now(UTC)
        try:
            with self._begin() as conn:
                conn.execute(
                    sa.delete(LOCKS).where((LOCKS.c.name == name) & (LOCKS.c.expires_at < now))
                )
                conn.execute(
                    sa.insert(LOCKS).values(
                        name=name, holder=holder, expires_at=now + timedelta(seconds=lease)
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    # Task instances (P7) -----------------------------------------------------------------
    def record_task(self, row: Mapping[str, Any]) -> None:
        """Keep one try of a task instance, replacing what its earlier event wrote."""
        self._upsert(TASK_RUNS, row)

    def update_task(self, key: Mapping[str, Any], **values: Any) -> None:
        """Change some columns of a recorded try (its end, state, MLflow runs)."""
        where = sa.and_(*(TASK_RUNS.c[k] == v for k, v in key.items()))
        with self._begin() as conn:
            conn.execute(sa.update(TASK_RUNS).where(where).values(**_values(values)))

    def task_runs(
        self, dag_id: str | None = None, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Recorded task tries, of one DAG or one run, in start order."""
        query = sa.select(TASK_RUNS)
        if dag_id is not None:
            query = query.where(TASK_RUNS.c.dag_id == dag_id)
        if run_id is not None:
            query = query.where(TASK_RUNS.c.run_id == run_id)
        rows = self._select(query)
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(rows, key=lambda r: (r["start_date"] or epoch, r["task_id"]))

    # Feature-pipeline intervals (P4) ------------------------------------------------------
    def record_interval(self, row: Mapping[str, Any]) -> None:
        """Keep the interval's run: a rerun replaces its own record."""
        self._upsert(INTERVAL_RUNS, {**row, "recorded_at": datetime.now(UTC)})

    def intervals(
        self, usecase: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Recorded intervals of a use case overlapping [start, end), oldest first."""
        query = sa.select(INTERVAL_RUNS).where(INTERVAL_RUNS.c.usecase == usecase)
        if end is not None:
            query = query.where(INTERVAL_RUNS.c.interval_start < end)
        if start is not None:
            query = query.where(INTERVAL_RUNS.c.interval_end > start)
        return sorted(self._select(query), key=lambda r: r["interval_start"])

    def delete_interval(self, usecase: str, partition: str) -> int:
        """Forget an interval's record; the rows deleted."""
        with self._begin() as conn:
            result = conn.execute(
                sa.delete(INTERVAL_RUNS).where(
                    (INTERVAL_RUNS.c.usecase == usecase) & (INTERVAL_RUNS.c.partition == partition)
                )
            )
        return int(result.rowcount or 0)

    # Champion decisions ------------------------------------------------------------------
    def record_model_event(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Append a decision about the champion; the row as kept (its id orders the history)."""
        kept = {**row, "recorded_at": datetime.now(UTC)}
        with self._begin() as conn:
            result = conn.execute(sa.insert(MODEL_EVENTS).values(**_values(kept)))
        key = result.inserted_primary_key
        if key is None:
            raise RuntimeError(f"{MODEL_EVENTS.name}: the database gave the new row no id")
        return {**kept, "id": int(key[0]), "evidence_uri": kept.get("evidence_uri")}

    def set_evidence_uri(self, event_id: int, uri: str) -> None:
        """Where the event's evidence was attached, once it is."""
        with self._begin() as conn:
            conn.execute(
                sa.update(MODEL_EVENTS)
                .where(MODEL_EVENTS.c.id == event_id)
                .values(evidence_uri=uri)
            )

    def model_events(self, model: str | None = None) -> list[dict[str, Any]]:
        """Every decision, in the order they were made."""
        query = sa.select(MODEL_EVENTS).order_by(MODEL_EVENTS.c.id)
        if model is not None:
            query = query.where(MODEL_EVENTS.c.model == model)
        return self._select(query)
