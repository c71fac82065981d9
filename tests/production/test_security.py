"""Secrets kept and sockets closed on the production topology (issue 34, "Security").

After the tier's runs (features, training, drift, a retrain, a second replica), every value the
test set as a secret is looked for wherever the topology writes: every file under its home and
shared root (Airflow's task logs, the components' logs, the service's prediction log,
artifacts), the MLflow runs' params and tags and the registry's tags, the Airflow runs' notes
and conf through the REST API, every row of every table of the run's three databases (XComs,
run notes, rendered fields, MLflow's and Feast's tables) and every key of its Redis databases.
Then every listening socket of the topology's processes is listed and must be on loopback.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import descendants
from tests.production.conftest import PORTS
from tests.production.sockets import beyond_loopback, listening

pytestmark = pytest.mark.production

SECRET_VARIABLES = (
    "AIRLOOP_AIRFLOW_FERNET_KEY",
    "AIRLOOP_AIRFLOW_SECRET_KEY",
    "AIRLOOP_AIRFLOW_JWT_SECRET",
    "AIRLOOP_AIRFLOW_ADMIN_PASSWORD",
    "AIRLOOP_SERVING_TOKEN",
)
HEAD = 12  # a secret's first characters: a truncated or wrapped copy is a leak too


def secret_forms(secrets_by_name: dict[str, str]) -> dict[bytes, str]:
    """Each secret as it could be written: whole, its head, base64 (a Basic auth header)."""
    forms: dict[bytes, str] = {}
    for name, value in secrets_by_name.items():
        raw = value.encode()
        forms[raw] = name
        forms[raw[:HEAD]] = name
        forms[base64.b64encode(raw)] = name
    return forms


@dataclass
class Search:
    """Where a search looked, and what it found: (place, secret's variable)."""

    forms: dict[bytes, str]
    looked: dict[str, int] = field(default_factory=dict)  # kind -> items searched
    places: dict[str, int] = field(default_factory=dict)  # place -> items searched there
    size: int = 0  # bytes searched
    found: list[tuple[str, str]] = field(default_factory=list)

    def scan(self, kind: str, place: str, blob: bytes | str) -> None:
        data = blob.encode(errors="replace") if isinstance(blob, str) else bytes(blob)
        self.looked[kind] = self.looked.get(kind, 0) + 1
        self.places[place] = self.places.get(place, 0) + 1
        self.size += len(data)
        self.found += sorted({(place, name) for form, name in self.forms.items() if form in data})


def test_the_search_finds_a_secret_in_each_form_it_looks_for() -> None:
    """The search itself, held to a planted secret: whole, cut short, base64-encoded."""
    token = "s3cr3t-Value_0123456789abcdef"
    search = Search(secret_forms({"AIRLOOP_SERVING_TOKEN": token}))
    search.scan("file", "whole", f"... Authorization: Bearer {token}\n")
    search.scan("file", "cut", f"token={token[:14]}...")
    search.scan("file", "basic", b"Basic " + base64.b64encode(token.encode()))
    search.scan("file", "clean", "Authorization: Bearer ***")
    assert [place for place, _ in search.found] == ["whole", "cut", "basic"]


@pytest.fixture(scope="module")
def secret_values(production_env: dict[str, str], databases: dict[str, Any]) -> dict[str, str]:
    values = {name: production_env[name] for name in SECRET_VARIABLES}
    values["the databases' password"] = databases["password"]
    return values


@pytest.fixture(scope="module")
def loop_ran(client: Any, first_training: dict[str, Any]) -> Any:
    """The loop has run on the topology: feature intervals and a training run."""
    return client


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from (p for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink())


def table_rows(url: str) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Every row of every table of a database, as the database's owner sees it."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                text(
                    "SELECT table_schema, table_name FROM information_schema.tables"
                    " WHERE table_type = 'BASE TABLE'"
                    " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
                )
            ).fetchall()
            for schema, table in tables:
                for row in conn.execute(text(f'SELECT * FROM "{schema}"."{table}"')):
                    yield f"{schema}.{table}", tuple(row)
    finally:
        engine.dispose()


def as_bytes(values: Iterable[Any]) -> bytes:
    return b"\x00".join(
        bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in values
    )


def redis_values(client: Any) -> Iterator[tuple[str, bytes]]:
    """Every key of a Redis database with its value, whatever its type."""
    for key in client.scan_iter(count=500):
        kind = client.type(key).decode()
        if kind == "string":
            value = [client.get(key)]
        elif kind == "hash":
            value = [x for kv in client.hgetall(key).items() for x in kv]
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = list(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1)
        else:
            value = []
        yield key.decode(errors="replace"), key + b"\x00" + as_bytes(value)


def test_no_secret_is_written_anywhere_the_topology_writes(
    loop_ran, settings, production_env, databases, secret_values, up_output
) -> None:
    import redis
    from mlflow.entities import ViewType

    from airloop.core.http import request_json
    from airloop.registry.tracking import configure

    search = Search(secret_forms(secret_values))
    assert any(line.startswith("login:") for line in up_output), up_output
    search.scan("airloop up's terminal", "airloop up's output", "".join(up_output))
    home, shared = Path(production_env["AIRLOOP_HOME"]), Path(production_env["AIRLOOP_SHARED_ROOT"])
    # The one file that holds a secret on purpose: the admin's password, for Airflow's simple
    # auth manager, written 0600 from AIRLOOP_AIRFLOW_ADMIN_PASSWORD. It is the search's
    # control: the search must find the password there, and nothing anywhere else.
    passwords = settings.admin_passwords_file
    assert oct(passwords.stat().st_mode & 0o777) == "0o600"
    for path in files_under(home, shared):
        search.scan("files", str(path), path.read_bytes())
    assert (str(passwords), "AIRLOOP_AIRFLOW_ADMIN_PASSWORD") in search.found, search.found
    search.found.remove((str(passwords), "AIRLOOP_AIRFLOW_ADMIN_PASSWORD"))
    task_logs = list((settings.airflow_home / "logs").rglob("*.log"))
    assert len(task_logs) >= 20 and any(
        p.name.startswith("serving") for p in settings.logs_dir.glob("*.log")
    ), "the tier's runs left no task logs or no service log to search"

    mlflow = configure(settings)
    for experiment in mlflow.search_experiments(view_type=ViewType.ALL):
        search.scan("mlflow experiments", experiment.name, repr(experiment.tags))
        for run in mlflow.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL):
            where = f"mlflow run {run.info.run_id}"
            search.scan("mlflow runs", where, repr((run.data.params, run.data.tags)))
    for model in mlflow.search_registered_models():
        search.scan("mlflow models", model.name, repr((model.tags, model.description)))
        for version in mlflow.search_model_versions(f"name = '{model.name}'"):
            where = f"{model.name} v{version.version}"
            search.scan("mlflow model versions", where, repr((version.tags, version.description)))
    assert search.looked.get("mlflow runs", 0) >= 1, search.looked

    token = loop_ran.token()
    runs = request_json(
        "GET", f"{settings.api_base_url}/api/v2/dags/~/dagRuns?limit=1000", token=token
    )["dag_runs"]
    for run in runs:
        where = f"dag run {run['dag_id']}/{run['dag_run_id']}"
        search.scan("airflow runs (REST API)", where, repr((run.get("note"), run.get("conf"))))
    assert len(runs) >= 4, runs

    names = databases["names"]
    for role, name in names.items():
        url = f"postgresql+psycopg2://{databases['server']}/{name}"
        for table, row in table_rows(url):
            search.scan(f"rows ({role} database)", f"{role}:{table}", as_bytes(row))
    # The tables a leak would reach first were searched, and were not empty.
    for table in (
        "airflow:public.xcom",
        "airflow:public.dag_run_note",
        "airflow:public.dag_run",
        "airflow:public.task_instance",
        "airflow:public.rendered_task_instance_fields",
        "airflow:public.log",
        "mlflow:public.params",
        "mlflow:public.tags",
        "mlflow:public.model_version_tags",
    ):
        assert search.places.get(table, 0) > 0, f"{table}: no rows searched"

    for db in (databases["broker_db"], databases["online_db"]):
        for key, blob in redis_values(redis.Redis(host="127.0.0.1", port=6379, db=db)):
            search.scan("redis keys", f"redis db {db} {key}", blob)

    print(f"searched {search.size:,} bytes: {search.looked}")  # the figures (pytest -rP)
    assert not search.found, "secrets found:\n" + "\n".join(
        f"  {name} in {place}" for place, name in search.found
    )


def test_nothing_listens_beyond_loopback(loop_ran, stack) -> None:
    """Every socket of ``airloop up``'s process tree (the Airflow components, the Celery
    workers and what they forked, MLflow, the service): on 127.0.0.1 or ::1."""
    pids = {stack.pid} | descendants(stack.pid)
    sockets = listening(pids)
    ports = {s.port for s in sockets}
    # The listing saw the topology's servers: Airflow's API, the serving API, MLflow.
    assert {PORTS["airflow"], PORTS["serving"], PORTS["mlflow"]} <= ports, sockets
    print(f"{len(pids)} processes, {len(sockets)} sockets, ports {sorted(ports)}")
    exposed = beyond_loopback(sockets)
    assert not exposed, "listening beyond loopback:\n" + "\n".join(f"  {s}" for s in exposed)
