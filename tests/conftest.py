"""Test session set-up: one throwaway airloop home, its Airflow environment set before Airflow loads.

Airflow reads its configuration when first imported, so the environment is set here, at
conftest import, before any test module imports it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SESSION_HOME = Path(tempfile.mkdtemp(prefix="airloop-test-"))

os.environ["AIRLOOP_HOME"] = str(SESSION_HOME)
os.environ["AIRLOOP_USECASE"] = "flights"
os.environ["AIRLOOP_AIRFLOW_PORT"] = "8391"
os.environ["AIRLOOP_AIRFLOW_WORKER_LOG_PORT"] = "8392"
os.environ["AIRLOOP_AIRFLOW_TRIGGER_LOG_PORT"] = "8393"
os.environ["AIRLOOP_SERVING_PORT"] = (
    "8394"  # nothing listens there: deploys in tests find no service
)
os.environ["AIRLOOP_MLFLOW_UI_PORT"] = "8395"
os.environ.pop("AIRLOOP_REPLAY_END", None)

from airloop.settings import Settings, get_settings  # noqa: E402

get_settings.cache_clear()
os.environ.update(get_settings().airflow_env())


def running(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped (Linux /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue
        for child in children:
            found |= {int(child)} | descendants(int(child))
    return found


def require_service(name: str, problem: str) -> None:
    """A test that needs a service: fails in CI (``CI`` set to 1, true or yes) naming it,
    skips elsewhere, never silently."""
    from tests.support import in_ci

    if in_ci():
        pytest.fail(f"{name} is required in CI and is not available: {problem}")
    pytest.skip(f"{name} is not available here: {problem}")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def flights():
    from airloop.usecase import load_usecase

    return load_usecase("flights")


@pytest.fixture(scope="session")
def airflow_db(settings: Settings) -> Iterator[Settings]:
    """A migrated Airflow metadata DB in the session home (once per session)."""
    from airloop.runtime.airflow_cli import migrate_db

    migrate_db(settings)
    yield settings


@pytest.fixture(scope="session")
def second_usecase(tmp_path_factory) -> Path:
    """A second use case (monthly, a regression per region), written by airloop init."""
    from airloop.initiation import InitOptions, init_usecase
    from tests.builders import monthly_panel

    folder = tmp_path_factory.mktemp("second")
    data = folder / "panel.csv"
    monthly_panel().to_csv(data, index=False)
    options = InitOptions(
        name="panel",
        data=data,
        entity=["region"],
        timestamp="year+month",
        target="price",
        task="regression",
        into=folder / "panel",
    )
    return init_usecase(options).folder
