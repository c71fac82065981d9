"""``airloop init``: the profile, its findings, the refusals, and a use case that loads."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from airloop.cli import app
from airloop.initiation import InitError, InitOptions, init_usecase, profile_data, read_table
from airloop.initiation.records import DataProfile
from airloop.initiation.times import detect_cadence
from airloop.usecase import load_usecase
from tests.builders import monthly_panel


def event_log(freq: str, periods: int = 120, entities: int = 3) -> pd.DataFrame:
    """One row per entity per ``freq`` step, stamped with ISO 8601 text."""
    rng = np.random.default_rng(1)
    stamps = pd.date_range("2021-01-04", periods=periods, freq=freq, tz="UTC")
    rows = [
        {
            "store": f"s{e}",
            "at": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "visits": int(rng.integers(0, 50)),
            "spend": float(rng.normal(100, 20)),
        }
        for ts in stamps
        for e in range(entities)
    ]
    return pd.DataFrame(rows)


def write(tmp_path: Path, df: pd.DataFrame, name: str = "data.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def options(tmp_path: Path, data: Path, **kw: Any) -> InitOptions:
    base: dict[str, Any] = {
        "name": "demo_case",
        "data": data,
        "entity": ["region"],
        "timestamp": "year+month",
        "target": "price",
        "task": "regression",
        "into": tmp_path / "case",
    }
    return InitOptions(**{**base, **kw})


def profile_of(tmp_path: Path, df: pd.DataFrame, **kw: Any) -> DataProfile:
    path = write(tmp_path, df)
    frame, fmt = read_table(path)
    args: dict[str, Any] = {
        "entity": ["region"],
        "timestamp": "year+month",
        "target": "price",
        "task": "regression",
    }
    args.update(kw)
    return profile_data(frame, path, fmt, **args)


def kinds(profile: DataProfile) -> set[str]:
    return {f.kind for f in profile.findings}


def nothing_but(tmp_path: Path, *names: str) -> None:
    """Nothing was written beside the data: no folder, no staging folder left behind."""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


# -- the generated use case -------------------------------------------------------------------


def test_a_small_monthly_panel_becomes_a_use_case_that_loads(tmp_path: Path) -> None:
    data = write(tmp_path, monthly_panel())
    result = init_usecase(options(tmp_path, data))
    folder = tmp_path / "case"
    assert result.folder == folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(result.files)
    nothing_but(tmp_path, "data.csv", "case")

    uc = load_usecase(str(folder))
    assert uc.name == "demo_case" and uc.task == "regression" and uc.schedule == "@monthly"
    source = uc.sources["data"]
    assert source.partition_by == "date" and str(source.available_after) == "1mo"
    assert {c.name: c.type for c in source.columns} == {
        "region": "string",
        "year": "integer",
        "month": "integer",
        "sales": "integer",
        "kind": "string",
        "price": "number",
    }
    assert source.column("kind").values == ["flat", "house"]  # type: ignore[union-attr]
    assert source.column("year").bounds == (2000, 2002)  # type: ignore[union-attr]
    assert uc.events.id == "region_month" and uc.events.timestamp == "date"
    assert uc.events.request_fields == ["region", "kind"]  # not sales: reported with the target
    assert uc.label.column == "price" and str(uc.label.delay) == "1mo"
    kinds_ = {v.kind: v for v in uc.feature_views}
    # 54 labelled rows to train on: the last values, labels and trend, no windows (budget 20)
    assert set(kinds_) == {"lag", "transform", "label_rate"}
    lag = kinds_["lag"]
    assert [str(x) for x in lag.lags] == ["1mo"]  # no 12mo: half of 36 months is too short
    assert uc.metrics[0] == "mae" and str(uc.gates.max_regression) == "2%"
    assert str(uc.monitoring.performance_drop) == "10%"
    assert str(uc.training.window) == "18mo"  # half the data: the other half is served
    assert uc.training.min_rows <= 3 * 18
    assert uc.replay is not None and uc.replay.sources["data"].path == str(data)
    assert str(uc.replay.start) == "2000-01-01" and str(uc.replay.end) == "2003-01-01"
    # The README shows the request for this use case, with the event's id and time.
    readme = (folder / "README.md").read_text()
    assert "## Asking the service" in readme
    assert '"event_time": "2002-12-01T00:00:00Z"' in readme and '"event_id": "' in readme
    # ... and the use case declares that request as its example (the service's /docs page).
    example = uc.events.example
    assert example is not None and list(example) == uc.request_keys
    assert f'"region": "{example["region"]}"' in readme


def test_the_seasonal_lag_comes_with_enough_history(tmp_path: Path) -> None:
    data = write(tmp_path, monthly_panel(regions=2, months=120))
    init_usecase(options(tmp_path, data))
    uc = load_usecase(str(tmp_path / "case"))
    views = {v.name: v for v in uc.feature_views}
    assert [str(x) for x in views["region_lags"].lags] == ["1mo"]  # type: ignore[attr-defined]
    assert [str(x) for x in views["region_seasonal"].lags] == ["12mo"]  # type: ignore[attr-defined]
    assert views["region_seasonal"].columns == ["price", "sales"]  # type: ignore[attr-defined]
    assert uc.training.window.months >= 24


def test_a_longer_label_delay_moves_the_first_lag_back(tmp_path: Path) -> None:
    data = write(tmp_path, monthly_panel())
    init_usecase(options(tmp_path, data, label_delay="2mo"))
    uc = load_usecase(str(tmp_path / "case"))
    lag = next(v for v in uc.feature_views if v.kind == "lag")
    assert str(lag.lags[0]) == "2mo"  # type: ignore[attr-defined]
    assert str(uc.sources["data"].available_after) == "2mo"


@pytest.mark.parametrize(
    ("freq", "schedule", "lags"),
    # 171 labelled rows to train on: a budget of 20 inputs leaves no room for the seasonal lag
    [("h", "@hourly", ["1h"]), ("D", "@daily", ["1d"]), ("W-MON", "@weekly", ["7d"])],
)
def test_each_cadence_gives_a_use_case_that_loads(
    tmp_path: Path, freq: str, schedule: str, lags: list[str]
) -> None:
    data = write(tmp_path, event_log(freq))
    init_usecase(
        options(tmp_path, data, entity=["store"], timestamp="at", target="spend", task=None)
    )
    uc = load_usecase(str(tmp_path / "case"))
    assert uc.schedule == schedule and uc.task == "regression"
    assert uc.sources["data"].partition_by == "at"
    found = [str(x) for v in uc.feature_views if v.kind == "lag" for x in v.lags]  # type: ignore[attr-defined]
    assert found == lags


def test_classification_of_a_number_names_its_threshold(tmp_path: Path) -> None:
    data = write(tmp_path, monthly_panel())
    init_usecase(options(tmp_path, data, task=None, threshold=130.0))
    uc = load_usecase(str(tmp_path / "case"))
    assert uc.task == "classification" and uc.label.threshold == 130.0
    assert uc.label.name == "price_over_130" and uc.metrics[0] == "roc_auc"


def test_the_transform_example_runs_on_past_rows(tmp_path: Path) -> None:
    df = monthly_panel()
    data = write(tmp_path, df)
    init_usecase(options(tmp_path, data))
    spec = importlib.util.spec_from_file_location("t", tmp_path / "case" / "transforms.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    history = df.assign(date=pd.to_datetime(df[["year", "month"]].assign(day=1), utc=True))
    out = module.price_trend(history, pd.Timestamp("2003-01-01", tz="UTC"))
    assert list(out.columns) == ["region", "price_trend", "n_periods"]
    assert len(out) == 3 and (out["n_periods"] == 36).all()
    assert out["price_trend"].between(0.8, 1.2).all()  # the price rises by one a month
    empty = module.price_trend(history.iloc[:0], pd.Timestamp("2004-01-01", tz="UTC"))
    assert empty.empty


def test_the_replay_path_is_relative_when_the_data_is_in_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "case"
    folder.mkdir()
    data = write(folder, monthly_panel())
    init_usecase(options(tmp_path, data, force=True))
    raw = yaml.safe_load((folder / "usecase.yaml").read_text())
    assert raw["replay"]["sources"]["data"]["path"] == "data.csv"
    assert (folder / "data.csv").exists()


def test_force_overwrites_the_generated_files_and_keeps_the_others(tmp_path: Path) -> None:
    data = write(tmp_path, monthly_panel())
    folder = tmp_path / "case"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "usecase.yaml").write_text("old")
    with pytest.raises(InitError, match=r"not empty.*--force"):
        init_usecase(options(tmp_path, data))
    assert (folder / "usecase.yaml").read_text() == "old"
    init_usecase(options(tmp_path, data, force=True))
    assert (folder / "notes.txt").read_text() == "mine"
    assert load_usecase(str(folder)).name == "demo_case"
    nothing_but(tmp_path, "data.csv", "case")


def test_the_profile_files_are_self_contained(tmp_path: Path) -> None:
    data = write(tmp_path, monthly_panel())
    init_usecase(options(tmp_path, data))
    page = (tmp_path / "case" / "profile.html").read_text()
    assert page.count('src="data:image/png;base64,') >= 3
    assert "http://" not in page and "https://" not in page
    profile = json.loads((tmp_path / "case" / "profile.json").read_text())
    assert profile["rows"] == 108 and profile["time"]["cadence"] == "monthly"
    assert {c["name"]: c["role"] for c in profile["columns"]}["sales"] == "measurement"
    assert profile["per_interval"]["median"] == 3 and len(profile["over_time"]) == 36


def test_the_command_writes_the_folder_and_says_what_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, monthly_panel())
    args = ["init", "shop", "--data", "data.csv", "--entity", "region"]
    args += ["--timestamp", "year+month", "--target", "price", "--label-delay", "1mo"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote ./shop/" in result.output and "airloop demo --usecase ./shop" in result.output
    assert load_usecase(str(tmp_path / "shop")).task == "regression"  # inferred


# -- refusals: one clear error, nothing written -----------------------------------------------


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "data.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(InitError, match=r"data\.parquet: cannot be read as parquet"):
        init_usecase(options(tmp_path, bad))
    nothing_but(tmp_path, "data.parquet")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("data.csv", None, "no such file"),
        ("data.txt", "a,b\n1,2\n", r"expected a \.csv"),
        ("data.csv", "", "the file is empty"),
        ("data.csv", "region,year,month,price\n", "has a header but no rows"),
    ],
    ids=["missing", "not csv or parquet", "empty", "header only"],
)
def test_a_file_without_data_is_refused(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(InitError, match=message):
        init_usecase(options(tmp_path, path))
    nothing_but(tmp_path, *([name] if content is not None else []))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"entity": ["town"]}, r"no column 'town' \(given to --entity\); the file's columns are"),
        ({"target": "cost"}, r"no column 'cost' \(given to --target\)"),
        ({"timestamp": "year+mon"}, r"no column 'mon' \(given to --timestamp\)"),
        ({"timestamp": "when"}, r"no column 'when' \(given to --timestamp\)"),
    ],
)
def test_a_named_column_that_does_not_exist_is_refused(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    data = write(tmp_path, monthly_panel())
    with pytest.raises(InitError, match=message):
        init_usecase(options(tmp_path, data, **change))
    nothing_but(tmp_path, "data.csv")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            ["soon", "later", "never"],
            r"column 'at' .* does not parse as timestamps \(e\.g\. 'soon'",
        ),
        (
            ["03/01/2013", "04/01/2013", "05/01/2013"],
            r"written like '03/01/2013', which read differently as %d/%m/%Y or %m/%d/%Y",
        ),
        ([2013.0, 2013.1, 2013.2], r"column 'at' .* holds numbers \(2013\.0"),
    ],
    ids=["text", "not ISO 8601", "numbers"],
)
def test_a_timestamp_that_does_not_parse_is_refused(
    tmp_path: Path, values: list[Any], message: str
) -> None:
    df = pd.DataFrame({"region": ["a", "b", "c"] * 4, "at": values * 4, "price": range(12)})
    data = write(tmp_path, df)
    with pytest.raises(InitError, match=message):
        init_usecase(options(tmp_path, data, timestamp="at"))
    nothing_but(tmp_path, "data.csv")


def test_time_parts_that_are_not_numbers_are_refused(tmp_path: Path) -> None:
    df = monthly_panel(months=12)
    df["month"] = pd.to_datetime(df["month"], format="%m").dt.strftime("%b")
    data = write(tmp_path, df)
    with pytest.raises(InitError, match=r"column 'month' \(the month of --timestamp\) holds 'Jan'"):
        init_usecase(options(tmp_path, data))
    nothing_but(tmp_path, "data.csv")


@pytest.mark.parametrize(
    ("target", "change", "message"),
    [
        ([np.nan], {}, "target 'price' has no values"),
        ([5.0], {}, r"target 'price' has one value only \(5\)"),
        ([0, 1], {"task": "classification", "threshold": 3.0}, "has one class only"),
        ([0, 0], {"task": "classification"}, "has one class only"),
        (["yes", "no"], {"task": "classification"}, r"holds text .* recode it as 0/1"),
        ([1.0, 2.0, 3.0], {"task": "classification"}, "give --threshold X"),
        ([1.0, 2.0, 3.0], {"threshold": 2.0}, "--threshold makes a class of a number"),
    ],
    ids=["all missing", "constant", "one class", "one class binary", "text", "no threshold",
         "threshold for regression"],
)  # fmt: skip
def test_a_target_that_cannot_be_learnt_is_refused(
    tmp_path: Path, target: list[Any], change: dict[str, Any], message: str
) -> None:
    df = monthly_panel(months=12)
    df["price"] = (target * len(df))[: len(df)]
    data = write(tmp_path, df)
    with pytest.raises(InitError, match=message):
        init_usecase(options(tmp_path, data, **change))
    nothing_but(tmp_path, "data.csv")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "My Case"}, "use case name 'My Case'"),
        ({"label_delay": "a month"}, r"--label-delay 'a month': expected a duration"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    data = write(tmp_path, monthly_panel(months=12))
    with pytest.raises(InitError, match=message):
        init_usecase(options(tmp_path, data, **change))
    nothing_but(tmp_path, "data.csv")


def test_a_failure_after_profiling_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import airloop.initiation.scaffold as scaffold

    def broken(*args: Any, **kw: Any) -> None:
        raise scaffold.UseCaseError("usecase.yaml: invalid use case\n  schedule: nope")

    monkeypatch.setattr(scaffold, "load_usecase", broken)
    data = write(tmp_path, monthly_panel(months=12))
    with pytest.raises(InitError, match=r"(?s)does not load .*schedule: nope"):
        init_usecase(options(tmp_path, data, into=tmp_path / "deep" / "er" / "case"))
    nothing_but(tmp_path, "data.csv")


# -- findings ---------------------------------------------------------------------------------


def test_a_clean_panel_has_only_informative_findings(tmp_path: Path) -> None:
    profile = profile_of(tmp_path, monthly_panel())
    assert {f.severity for f in profile.findings} == {"info"}
    assert kinds(profile) == {"cadence"}
    assert "every 31 days" in profile.findings[0].message


def test_unparseable_timestamps_are_a_finding(tmp_path: Path) -> None:
    df = monthly_panel()
    df.loc[[3, 7], "month"] = 13
    profile = profile_of(tmp_path, df)
    finding = next(f for f in profile.findings if f.kind == "unparseable_timestamps")
    assert "2 rows have no timestamp" in finding.message and "2000 13" in finding.message
    assert profile.time.unparseable == 2


def test_unordered_timestamps_are_a_finding(tmp_path: Path) -> None:
    df = monthly_panel().sample(frac=1.0, random_state=3)
    profile = profile_of(tmp_path, df)
    assert "unordered_timestamps" in kinds(profile) and profile.time.unordered > 0


def test_a_target_mostly_missing_is_a_finding(tmp_path: Path) -> None:
    df = monthly_panel()
    df.loc[df.index % 3 != 0, "price"] = np.nan
    profile = profile_of(tmp_path, df)
    finding = next(f for f in profile.findings if f.kind == "target_mostly_missing")
    assert finding.severity == "warning" and "missing in 67% of rows" in finding.message


def test_a_rare_class_is_a_finding(tmp_path: Path) -> None:
    df = monthly_panel(regions=10, months=24)
    df["price"] = 0
    df.loc[0, "price"] = 1
    profile = profile_of(tmp_path, df, task="classification")
    assert "target_nearly_constant" in kinds(profile)


@pytest.mark.parametrize(
    ("column", "how"),
    [("copy", "copies it"), ("price_cents", "moves with it (correlation 1.000)")],
)
def test_a_column_that_leaks_the_target_is_a_finding_and_no_input(
    tmp_path: Path, column: str, how: str
) -> None:
    df = monthly_panel()
    df["copy"] = df["price"]
    df["price_cents"] = df["price"] * 100 + np.random.default_rng(0).normal(0, 1, len(df))
    profile = profile_of(tmp_path, df)
    assert profile.column(column).role == "leak"
    finding = next(f for f in profile.findings if f.kind == "target_leak" and f.column == column)
    assert how in finding.message
    assert profile.column("sales").role == "measurement"


def test_a_leaking_column_stays_out_of_the_use_case_inputs(tmp_path: Path) -> None:
    df = monthly_panel()
    df["price_band"] = np.where(df["price"] > 130, "high", "low")  # text: no correlation
    df["copy"] = df["price"]
    data = write(tmp_path, df)
    init_usecase(options(tmp_path, data))
    uc = load_usecase(str(tmp_path / "case"))
    views = yaml.safe_load((tmp_path / "case" / "usecase.yaml").read_text())["feature_views"]
    assert "copy" not in json.dumps(views) and "copy" not in uc.events.request_fields


def test_an_entity_with_one_row_is_a_finding(tmp_path: Path) -> None:
    df = monthly_panel()
    lone = df.iloc[[0]].assign(region="lonely")
    profile = profile_of(tmp_path, pd.concat([df, lone], ignore_index=True))
    finding = next(f for f in profile.findings if f.kind == "single_row_entity")
    assert "1 of 4 values of region have one row only (e.g. lonely)" in finding.message


def test_repeated_events_are_a_finding_and_drop_the_unique_rule(tmp_path: Path) -> None:
    df = monthly_panel()
    df = pd.concat([df, df.iloc[:5]], ignore_index=True)
    data = write(tmp_path, df)
    init_usecase(options(tmp_path, data))
    profile = json.loads((tmp_path / "case" / "profile.json").read_text())
    assert "duplicate_events" in {f["kind"] for f in profile["findings"]}
    assert load_usecase(str(tmp_path / "case")).sources["data"].unique is None


def test_a_decimal_year_is_the_time_not_a_feature(tmp_path: Path) -> None:
    df = monthly_panel()
    df["date"] = df["year"] + (df["month"] - 1) / 12
    data = write(tmp_path, df)
    init_usecase(options(tmp_path, data))
    raw = yaml.safe_load((tmp_path / "case" / "usecase.yaml").read_text())
    source = raw["sources"]["data"]
    assert source["partition_by"] == "period"  # 'date' is taken by the file's own column
    assert {"name": "period", "date_from": {"year": "year", "month": "month"}} in source["derive"]
    assert "'date'" not in json.dumps(raw["feature_views"])
    profile = json.loads((tmp_path / "case" / "profile.json").read_text())
    assert "time_encoding" in {f["kind"] for f in profile["findings"]}


def test_a_thin_start_lets_early_intervals_be_short(tmp_path: Path) -> None:
    df = monthly_panel(regions=6, months=36)
    early = (df["year"] == 2000) & (df["region"] != "r0")
    data = write(tmp_path, df[~early])
    init_usecase(options(tmp_path, data))
    source = load_usecase(str(tmp_path / "case")).sources["data"]
    assert str(source.allow_empty_before) == "2001-01-01" and source.min_rows == 3


# -- cadence ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("freq", "cadence"),
    [("h", "hourly"), ("30min", "hourly"), ("D", "daily"), ("B", "daily"), ("W-MON", "weekly"),
     ("MS", "monthly"), ("QS", "monthly")],
)  # fmt: skip
def test_the_cadence_is_the_typical_gap_of_an_entity(freq: str, cadence: str) -> None:
    stamps = pd.Series(pd.date_range("2021-01-01", periods=60, freq=freq, tz="UTC"))
    both = pd.concat([stamps, stamps], ignore_index=True)
    keys = pd.Series(["a"] * 60 + ["b"] * 60)
    assert detect_cadence(both, keys)[0] == cadence


def test_the_cadence_comes_from_all_rows_when_no_entity_repeats() -> None:
    stamps = pd.Series(pd.date_range("2021-01-01", periods=30, freq="D", tz="UTC"))
    assert detect_cadence(stamps, pd.Series([f"e{i}" for i in range(30)])) == (
        "daily",
        pd.Timedelta(days=1).to_pytimedelta(),
    )
    assert detect_cadence(stamps.iloc[:1], pd.Series(["e"]))[0] == "daily"  # a guess, said so


def test_weekday_data_has_empty_intervals_and_says_so(tmp_path: Path) -> None:
    df = event_log("B", periods=60)
    profile = profile_of(
        tmp_path, df, entity=["store"], timestamp="at", target="spend", task="regression"
    )
    assert profile.time.cadence == "daily" and profile.per_interval.empty > 0
    assert "empty_intervals" in kinds(profile)
