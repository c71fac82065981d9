"""Several use cases in one Airflow: names, ports, folders and services kept apart."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from airloop.data.landing import landing_path
from airloop.quality.gate import validation_report_path
from airloop.runtime.services import Services, serving_components, topology
from airloop.settings import Settings
from airloop.usecase import (
    UseCaseError,
    active_usecases,
    dag_id,
    load_usecase,
    resolve,
    scoped,
    usecase_of_dag,
)


def side_by_side(tmp_path: Path, panel: Path) -> Settings:
    return Settings(home=tmp_path, usecases=f"flights,{panel}", serving_port=8300)


def test_one_use_case_keeps_the_plain_names(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.usecase_refs == ["flights"]
    flights = load_usecase("flights")
    assert dag_id("feature_pipeline", flights, settings) == "feature_pipeline"
    assert serving_components(settings) == ("serving",)
    assert scoped(settings, flights) is settings
    assert settings.serving_url == f"http://127.0.0.1:{settings.serving_port}"


def test_the_next_use_case_gets_its_dags_port_and_service(
    tmp_path: Path, second_usecase: Path
) -> None:
    panel = second_usecase
    settings = side_by_side(tmp_path, second_usecase)
    flights, second = (uc for uc, _ in active_usecases(settings))
    assert settings.usecase_refs == ["flights", str(panel)]
    assert dag_id("model_training", flights, settings) == "model_training"
    assert dag_id("model_training", second, settings) == "model_training__panel"
    assert usecase_of_dag("monitoring__panel", settings).name == "panel"
    assert usecase_of_dag("monitoring", settings).name == "flights"
    assert scoped(settings, flights).serving_url == "http://127.0.0.1:8300"
    assert scoped(settings, second).serving_url == "http://127.0.0.1:8301"
    # A stage given the second use case (by path, or loaded) works with its settings.
    for given in (str(panel), second):
        uc, st = resolve(given, settings)
        assert uc.name == "panel" and st.usecase == str(panel)
        assert st.serving_url.endswith(":8301")
    assert topology(settings).count("serving") == 1 and "serving-panel" in topology(settings)
    services = Services(settings)
    second_service = services.command("serving-panel")
    assert second_service[1:4] == ["--usecase", str(panel), "serve"]
    assert second_service[-2:] == ["--port", "8301"]
    assert services.command("serving")[1:3] == ["--usecase", "flights"]


def test_folders_are_kept_apart_by_use_case(tmp_path: Path, second_usecase: Path) -> None:
    settings = side_by_side(tmp_path, second_usecase)
    flights, second = (uc for uc, _ in active_usecases(settings))
    day = datetime(2013, 1, 1, tzinfo=UTC)
    assert landing_path(settings, flights, "weather", day) == (
        tmp_path / "landing" / "flights" / "weather" / "2013-01-01.csv"
    )
    [source] = second.sources
    assert (
        landing_path(settings, second, source, day).parent
        == tmp_path / "landing" / "panel" / source
    )
    assert validation_report_path(settings, "panel", "2013-01-01") != validation_report_path(
        settings, "flights", "2013-01-01"
    )


def test_a_use_case_not_among_them_is_refused_by_name(tmp_path: Path, second_usecase: Path) -> None:
    panel = second_usecase
    settings = Settings(home=tmp_path, usecases=str(panel))
    with pytest.raises(UseCaseError, match="'flights' is not among AIRLOOP_USECASES"):
        resolve("flights", settings)


def test_two_use_cases_with_one_name_are_refused(tmp_path: Path, second_usecase: Path) -> None:
    panel = second_usecase
    settings = Settings(home=tmp_path, usecases=f"{panel},{panel / 'usecase.yaml'}")
    with pytest.raises(UseCaseError, match="two use cases are named 'panel'"):
        active_usecases(settings)


def test_two_use_cases_registering_one_model_are_refused(
    tmp_path: Path, second_usecase: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(second_usecase, copy)
    raw = yaml.safe_load((copy / "usecase.yaml").read_text())
    (copy / "usecase.yaml").write_text(yaml.safe_dump({**raw, "name": "copy"}))
    settings = Settings(home=tmp_path, usecases=f"{second_usecase},{copy}")
    with pytest.raises(UseCaseError, match=r"register the model 'panel'.*training\.model_name"):
        active_usecases(settings)
