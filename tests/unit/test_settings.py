from __future__ import annotations

from pathlib import Path

from airloop.settings import Settings


def test_defaults_are_embedded(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "h")
    env = s.airflow_env()
    assert (
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        == f"sqlite:///{tmp_path / 'h' / 'airflow' / 'airflow.db'}"
    )
    assert s.tracking_uri.startswith("sqlite:///")
    assert s.feast_online_store == "sqlite"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    # A restarted scheduler adopts a dead one's task instances within a minute, not five.
    assert float(env["AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL"]) <= 60
    assert (
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
        == f"http://127.0.0.1:{s.airflow_port}/execution/"
    )


def test_constructing_settings_creates_nothing(tmp_path: Path) -> None:
    Settings(home=tmp_path / "h")
    assert not (tmp_path / "h").exists()


def test_servers_come_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRLOOP_HOME", str(tmp_path))
    monkeypatch.setenv("AIRLOOP_AIRFLOW_DB_URL", "postgresql+psycopg2://u@db/airflow")
    monkeypatch.setenv("AIRLOOP_FEAST_ONLINE_STORE", "redis")
    monkeypatch.setenv("AIRLOOP_MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("AIRLOOP_CELERY_BROKER_URL", "redis://redis:6379/0")
    s = Settings()
    env = s.airflow_env()
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://u@db/airflow"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert s.feast_online_store == "redis"
    assert s.tracking_uri == "http://mlflow:5000"


def test_shared_keys_are_stable_per_home(tmp_path: Path) -> None:
    a = Settings(home=tmp_path).airflow_env()
    b = Settings(home=tmp_path).airflow_env()
    assert a["AIRFLOW__API_AUTH__JWT_SECRET"] == b["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert len(a["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 64


def test_the_settings_by_profile_table_lists_every_setting() -> None:
    from tests.conftest import REPO

    table = (REPO / "docs" / "reference" / "settings-by-profile.md").read_text()
    missing = [
        f"AIRLOOP_{name.upper()}"
        for name in Settings.model_fields
        if f"`AIRLOOP_{name.upper()}`" not in table
    ]
    assert missing == [], f"add these to docs/reference/settings-by-profile.md: {missing}"


def test_components_get_the_model_thread_limit(monkeypatch, tmp_path: Path) -> None:
    """Parallel tasks and the service share the cores: their OpenMP and BLAS loops get
    ``model_threads`` (1 by default), unless the standard variable is set already."""
    from airloop.runtime.airflow_cli import airflow_environ
    from airloop.settings.airflow import THREAD_VARIABLES

    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = airflow_environ(Settings(home=tmp_path / "h"))
    assert {name: env[name] for name in THREAD_VARIABLES} == dict.fromkeys(THREAD_VARIABLES, "1")
    monkeypatch.setenv("AIRLOOP_MODEL_THREADS", "4")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    env = airflow_environ(Settings(home=tmp_path / "h"))
    assert env["OMP_NUM_THREADS"] == "2"
    assert env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "4"
