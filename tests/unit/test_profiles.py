"""The two profiles: what production requires and refuses, what children inherit, where state goes."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from airloop.settings import Settings, SettingsError, get_settings
from tests.builders import production

REQUIRED = (
    "AIRLOOP_AIRFLOW_DB_URL",
    "AIRLOOP_CELERY_BROKER_URL",
    "AIRLOOP_CELERY_RESULT_BACKEND",
    "AIRLOOP_MLFLOW_TRACKING_URI",
    "AIRLOOP_FEAST_REGISTRY_URL",
    "AIRLOOP_FEAST_ONLINE_STORE",
    "AIRLOOP_SHARED_ROOT",
    "AIRLOOP_AIRFLOW_FERNET_KEY",
    "AIRLOOP_AIRFLOW_SECRET_KEY",
    "AIRLOOP_AIRFLOW_JWT_SECRET",
    "AIRLOOP_AIRFLOW_ADMIN_PASSWORD",
    "AIRLOOP_SERVING_TOKEN",
)


def test_production_names_every_missing_variable(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(profile="production", home=tmp_path)
    text = str(err.value)
    for variable in REQUIRED:
        assert variable in text, variable
    assert "docs/production.md" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"airflow_fernet_key": "not-a-key"}, "AIRLOOP_AIRFLOW_FERNET_KEY: not a Fernet key"),
        ({"airflow_jwt_secret": "short"}, "AIRLOOP_AIRFLOW_JWT_SECRET: too short (5 characters"),
        ({"airflow_db_url": "sqlite:////tmp/a.db"}, "AIRLOOP_AIRFLOW_DB_URL: must start with"),
        ({"celery_result_backend": "redis://r/1"}, "AIRLOOP_CELERY_RESULT_BACKEND: must start"),
        ({"feast_online_store": "sqlite"}, "AIRLOOP_FEAST_ONLINE_STORE: must be redis"),
        ({"mlflow_tracking_uri": "sqlite:///m.db"}, "AIRLOOP_MLFLOW_TRACKING_URI: must start"),
    ],
)
def test_production_refuses_a_wrong_value_by_name(tmp_path: Path, change, message) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        Settings(**production(tmp_path, **change))


def test_production_takes_its_secrets_and_generates_none(tmp_path: Path) -> None:
    settings = Settings(**production(tmp_path))
    env = settings.airflow_env()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "j" * 64
    assert env["AIRFLOW__API__SECRET_KEY"] == "s" * 32
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://u@db:5432/airflow"
    assert not (tmp_path / "home").exists(), "no key file is generated in production"
    # Children build the same settings from the environment they are given.
    assert env["AIRLOOP_PROFILE"] == "production"
    assert env["AIRLOOP_SERVING_TOKEN"] == "t" * 24
    child = Settings(
        **{k.removeprefix("AIRLOOP_").lower(): v for k, v in settings.environment().items()}
    )
    assert child.environment() == settings.environment()


def test_state_other_hosts_need_lives_under_the_shared_root(tmp_path: Path) -> None:
    settings = Settings(**production(tmp_path))
    shared = tmp_path / "shared"
    for folder in (
        settings.landing_dir,
        settings.staging_dir,
        settings.offline_dir,
        settings.prediction_log_dir("x"),
        settings.monitoring_root("x"),
        settings.reports_dir,
        settings.datasets_dir,
    ):
        assert shared in folder.parents, folder
    assert settings.airflow_home.parent == tmp_path / "home"
    assert settings.mlflow_artifacts == (shared / "mlflow-artifacts").as_uri()
    embedded = Settings(home=tmp_path / "e")
    assert embedded.shared == tmp_path / "e" and embedded.landing_dir == tmp_path / "e" / "landing"


def test_get_settings_refuses_with_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRLOOP_PROFILE", "production")
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match="AIRLOOP_CELERY_BROKER_URL"):
            get_settings()
    finally:
        monkeypatch.delenv("AIRLOOP_PROFILE")
        get_settings.cache_clear()


def test_feast_configuration_comes_from_the_profile(tmp_path: Path) -> None:
    from airloop.features.store import ONLINE_SQLITE, store_config

    prod = store_config(Settings(**production(tmp_path)))
    assert prod["registry"]["registry_type"] == "sql"
    assert prod["online_store"] == {"type": "redis", "connection_string": "redis:6379,db=1"}
    embedded = store_config(Settings(home=tmp_path / "e"))
    assert embedded["online_store"]["type"] == ONLINE_SQLITE
    assert embedded["registry"] == str(tmp_path / "e" / "feast" / "registry.db")


def test_the_feast_cli_file_reads_the_same_configuration(tmp_path: Path, monkeypatch) -> None:
    import os

    import yaml

    from airloop.features.repo import feast_cli_env

    monkeypatch.setenv("AIRLOOP_HOME", str(tmp_path / "h"))
    get_settings.cache_clear()
    try:
        env = feast_cli_env()
    finally:
        get_settings.cache_clear()
    text = (Path(__file__).resolve().parents[2] / "feature_repo" / "feature_store.yaml").read_text()
    monkeypatch.setattr(os, "environ", {**os.environ, **env})
    config = yaml.safe_load(os.path.expandvars(text))  # what Feast does with the file
    assert config["online_store"] == json.loads(env["AIRLOOP_FEAST_ONLINE_STORE_CONFIG"])
    # Feast's stock store over the same file: its `feast apply` shows a plan for that one only.
    assert config["online_store"]["type"] == "sqlite"
    assert config["online_store"]["path"] == str(tmp_path / "h" / "feast" / "online.db")
    assert config["registry"] == str(tmp_path / "h" / "feast" / "registry.db")


def test_two_writers_of_the_ledger_never_lose_an_update(tmp_path: Path) -> None:
    from airloop.metadata.ledger import FeedbackLedger

    ledger = FeedbackLedger(tmp_path)

    def open_one(i: int) -> None:
        FeedbackLedger(tmp_path).open_request(
            {"request_id": f"r{i}", "interval_end": f"2013-01-{i + 1:02d}", "status": "open"}
        )

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r["request_id"] for r in ledger.requests()) == sorted(f"r{i}" for i in range(20))


def test_each_serving_process_writes_its_own_log_files(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from airloop.serving.prediction_log import PredictionLog, read_window

    when = datetime(2013, 1, 5, 10, tzinfo=UTC)
    record = {"time": when.isoformat(), "event_time": when.isoformat(), "score": 0.5}
    first, second = PredictionLog(tmp_path), PredictionLog(tmp_path)
    second.writer = "other-host-1"
    for log in (first, second):
        log.append(record)
        log.close()
    files = sorted(p.name for p in (tmp_path / "date=2013-01-05").iterdir())
    assert files == sorted([f"hour=10.{first.writer}.jsonl", "hour=10.other-host-1.jsonl"])
    legacy = tmp_path / "date=2013-01-05" / "hour=11.jsonl"  # a log written before replicas
    legacy.write_text(json.dumps({**record, "event_time": "2013-01-05T11:00:00+00:00"}) + "\n")
    got = read_window(tmp_path, when, datetime(2013, 1, 6, tzinfo=UTC))
    assert len(got) == 3
