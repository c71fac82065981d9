"""The use-case language for a user's own data: derived columns, source-based feature views,
calendar features and labels from the events' own source, point-in-time correct.

The data: monthly sales per city, published a month after the month they describe
(``available_after: 1mo``), whose median price is also the label (known a month later).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airloop.core.columns import AVAILABLE_AT, EVENT_TS, EVENTS_TABLE, LABEL, LABELS_TABLE
from airloop.features import compute, pipeline
from airloop.features.offline import partition_file, read_partitions
from airloop.features.transforms import clean_source, derive_columns
from airloop.serving.predict import add_calendar
from airloop.settings import Settings
from airloop.usecase import (
    SourceSpec,
    TransformError,
    UseCase,
    UseCaseError,
    ViewInputs,
    known_at,
    load_usecase,
    source_table,
)
from tests.sales_usecase import sales_raw, write_usecase

CITIES = ["lyon", "paris"]
MONTHS = pd.date_range("1999-01-01", "2001-12-01", freq="MS", tz="UTC")  # 36 month starts
SALES_TABLE = source_table("sales")


def load(folder: Path, edit: Callable[[dict[str, Any]], Any] | None = None) -> UseCase:
    raw = sales_raw()
    if edit is not None:
        edit(raw)
    return load_usecase(str(write_usecase(folder, raw)))


@pytest.fixture
def sales(tmp_path: Path) -> UseCase:
    return load(tmp_path / "sales")


def raw_rows(months: pd.DatetimeIndex = MONTHS) -> pd.DataFrame:
    """Rows as they land: text in CSV. Month ``i`` of a city has a median of base + i."""
    rows = []
    for month in months:
        i = MONTHS.get_loc(month)
        for j, city in enumerate(CITIES):
            rows.append(
                {
                    "city": city,
                    "year": month.year,
                    "month": month.month,
                    "sales": float(10 + i + j),
                    "volume": float(100 * (i + 1)),
                    "median": 1000.0 + 500 * j + i,
                }
            )
    return pd.DataFrame(rows)


def history_of(usecase: UseCase, raw: pd.DataFrame) -> pd.DataFrame:
    """Every row as the pipeline keeps it for later intervals: known or not, future included."""
    return compute.source_history_table(
        usecase, "sales", clean_source(raw, usecase.sources["sales"])
    )


def inputs_at(as_of: pd.Timestamp, tables: dict[str, pd.DataFrame]) -> ViewInputs:
    return ViewInputs(
        start=as_of, end=as_of + pd.DateOffset(months=1), sources={}, history=tables.get
    )


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def median(city: str, month: str) -> float:
    return 1000.0 + 500 * CITIES.index(city) + MONTHS.get_loc(ts(month))


# -- the file and what it declares ------------------------------------------------------------


def test_the_whole_language_loads_and_names_its_features(sales: UseCase, tmp_path: Path) -> None:
    assert sales.folder == (tmp_path / "sales").resolve()
    spec = sales.sources["sales"]
    assert spec.column_type("date") == "timestamp" and spec.partition_by == "date"
    assert sales.feature_view("city_sales").feature_names(sales)[:8] == [
        "sales_mean_3mo",
        "sales_sum_3mo",
        "sales_min_3mo",
        "sales_max_3mo",
        "sales_std_3mo",
        "sales_count_3mo",
        "sales_last_3mo",
        "median_mean_3mo",
    ]
    assert sales.feature_view("city_sales").feature_dtypes(sales)["sales_count_12mo"] == "int"
    assert sales.feature_view("city_lags").feature_names(sales) == [
        "median_lag_1mo",
        "sales_lag_1mo",
        "median_lag_12mo",
        "sales_lag_12mo",
    ]
    assert sales.feature_view("city_labels").feature_names(sales) == [
        "mean_3mo",
        "std_3mo",
        "last_3mo",
        "count_3mo",
        "mean_12mo",
        "std_12mo",
        "last_12mo",
        "count_12mo",
    ]
    assert sales.events.calendar_features[:2] == ["event_month", "event_quarter"]
    kept = sales.source_history()["sales"]
    assert kept[:2] == ["city", "date"] and set(kept) == set(spec.output_columns())


def test_views_say_which_history_they_read_and_from_when(sales: UseCase) -> None:
    as_of = ts("2001-01-01")
    assert sales.feature_view("city_sales").history_since(sales, as_of) == {
        SALES_TABLE: ts("1999-12-01")  # the longest window, 12 months, and the month's delay
    }
    assert sales.feature_view("city_trend").history_since(sales, as_of) == {
        SALES_TABLE: ts("1998-12-01")
    }
    since = ts("1999-12-01")  # labels of events a year back arrive a month later
    assert sales.feature_view("city_labels").history_since(sales, as_of) == {
        LABELS_TABLE: since,
        EVENTS_TABLE: since,
    }


def test_view_bounds_follow_the_columns_they_read(sales: UseCase) -> None:
    bounds = sales.feature_view("city_sales").bounds(sales)
    assert bounds["sales_count_3mo"] == (0.0, None) and bounds["sales_std_12mo"] == (0.0, None)
    assert bounds["median_mean_3mo"] == (0.0, 100000.0) and "sales_sum_3mo" not in bounds
    assert sales.feature_view("city_lags").bounds(sales)["median_lag_1mo"] == (0.0, 100000.0)
    assert sales.feature_view("city_labels").bounds(sales) == {
        "count_3mo": (0.0, None),
        "std_3mo": (0.0, None),
        "count_12mo": (0.0, None),
        "std_12mo": (0.0, None),
    }


# -- derived columns --------------------------------------------------------------------------


def _source(derive: list[dict[str, Any]], **extra: Any) -> SourceSpec:
    return SourceSpec.model_validate(
        {
            "kind": "reference",
            "columns": [
                {"name": "y", "type": "integer"},
                {"name": "m", "type": "integer"},
                {"name": "d", "type": "integer"},
                {"name": "h", "type": "integer"},
                {"name": "a", "type": "number"},
                {"name": "b", "type": "number"},
                {"name": "code", "type": "string"},
            ],
            "derive": derive,
            **extra,
        }
    )


def test_date_from_defaults_to_the_first_day_at_midnight_utc() -> None:
    spec = _source(
        [
            {"name": "month_start", "date_from": {"year": "y", "month": "m"}},
            {"name": "at", "date_from": {"year": "y", "month": "m", "day": "d", "hour": "h"}},
        ]
    )
    raw = pd.DataFrame({"y": ["2000", 2001, None], "m": [3, 13, 1], "d": [5, 1, 1], "h": [7, 0, 0]})
    out = spec.add_derived(raw)
    assert str(out["month_start"].dtype) == "datetime64[ns, UTC]"
    assert out["month_start"].iloc[0] == ts("2000-03-01")
    assert out["at"].iloc[0] == ts("2000-03-05T07:00")
    assert out["month_start"].iloc[1:].isna().all()  # month 13, a missing year: no date


def test_expr_is_arithmetic_with_precedence_and_no_division_by_zero() -> None:
    spec = _source(
        [
            {"name": "ratio", "expr": "a / b"},
            {"name": "mixed", "expr": "-(a + 1) * 2 - b / 4"},
            {"name": "scaled", "expr": "ratio * 100"},  # one derived column from another
            {"name": "nothing", "expr": "a / 0"},
        ]
    )
    raw = pd.DataFrame({"a": ["6", 3.0, None], "b": [3.0, 0.0, 1.0]})
    out = spec.add_derived(raw)
    assert out["ratio"].iloc[0] == 2.0 and math.isnan(out["ratio"].iloc[1])
    assert out["mixed"].iloc[0] == pytest.approx(-(6 + 1) * 2 - 3 / 4)
    assert out["scaled"].iloc[0] == 200.0 and math.isnan(out["ratio"].iloc[2])
    assert out["nothing"].isna().all()
    assert str(out["ratio"].dtype) == "float64"


@pytest.mark.parametrize(
    "expr",
    ["a ** 2", "__import__('os').system('true')", "a.real", "a if b else 1", "'a'", "True + a"],
)
def test_expr_refuses_anything_but_arithmetic(expr: str) -> None:
    with pytest.raises(ValueError, match="only \\+ - \\* /"):
        _source([{"name": "x", "expr": expr}])


def test_derived_columns_may_be_listed_before_what_they_use(sales: UseCase) -> None:
    out = derive_columns(raw_rows(MONTHS[:1]), sales.sources["sales"])
    assert out["city_month"].tolist() == ["lyon_1999-01-01T00:00:00Z", "paris_1999-01-01T00:00:00Z"]
    assert out["price_per_sale"].tolist() == [10.0, 100 / 11]


@pytest.mark.parametrize(
    ("derive", "message"),
    [
        ([{"name": "x", "concat": ["code"], "expr": "a"}], "exactly one of 'concat'"),
        ([{"name": "x", "sep": "-"}], "exactly one of 'concat'"),
        ([{"name": "x", "expr": "a / c"}], r"uses \['c'\]"),
        ([{"name": "x", "date_from": {"year": "yy", "month": "m"}}], r"uses \['yy'\]"),
        ([{"name": "x", "expr": "y2 + 1"}, {"name": "y2", "expr": "x + 1"}], "from each other"),
        ([{"name": "a", "expr": "b + 1"}], "already a declared column"),
    ],
    ids=["two-kinds", "no-kind", "unknown-expr-column", "unknown-date-part", "cycle", "clash"],
)
def test_derived_columns_are_checked(derive: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _source(derive)


def test_partition_by_may_name_a_derived_date_only() -> None:
    derive = [
        {"name": "period", "date_from": {"year": "y", "month": "m"}},
        {"name": "ratio", "expr": "a / b"},
    ]
    assert _source(derive, kind="partitioned", partition_by="period").partition_by == "period"
    with pytest.raises(ValueError, match="partition_by 'ratio' must be a timestamp"):
        _source(derive, kind="partitioned", partition_by="ratio")


def test_allow_empty_before_lowers_the_gate_row_count_for_early_intervals(sales: UseCase) -> None:
    from airloop.quality.expectations import build_expectations

    spec = sales.sources["sales"]
    early, later = datetime(1999, 2, 1, tzinfo=UTC), datetime(1999, 3, 1, tzinfo=UTC)
    assert spec.min_rows_at(early) == 0 and spec.min_rows_at(later) == spec.min_rows == 1

    def minimum(start: datetime) -> Any:
        exps = build_expectations(spec, start)
        return next(e.min_value for e in exps if type(e).__name__.endswith("RowCountToBeBetween"))

    assert minimum(early) == 0 and minimum(later) == 1


# -- what the file may not say ----------------------------------------------------------------


def _feature_view(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in raw["feature_views"] if v["name"] == name)


def _partitioned(partition_by: str, columns: dict[str, str], **extra: Any) -> dict[str, Any]:
    """A partitioned source's YAML mapping: its columns by name and type."""
    declared = [{"name": name, "type": kind} for name, kind in columns.items()]
    return {"kind": "partitioned", "partition_by": partition_by, "columns": declared, **extra}


def _add_outcomes_source(raw: dict[str, Any]) -> None:
    columns = {"id": "string", "known": "timestamp", "price": "number"}
    raw["sources"]["outcomes"] = _partitioned("known", columns)
    raw["label"].update(source="outcomes", column="price")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda raw: raw["sources"]["sales"]["derive"][2].update(expr="volume / salez"),
            r"derived column 'price_per_sale' uses \['salez'\]",
        ),
        (
            lambda raw: raw["sources"]["sales"]["derive"][1].update(
                date_from={"year": "yr", "month": "month"}
            ),
            r"derived column 'date' uses \['yr'\]",
        ),
        (
            lambda raw: _feature_view(raw, "city_sales")["aggregates"].append(
                {"column": "revenue", "functions": ["sum"]}
            ),
            r"feature view 'city_sales': source 'sales' has no columns \['revenue'\]",
        ),
        (
            lambda raw: _feature_view(raw, "city_sales")["aggregates"].append(
                {"column": "city", "functions": ["max"]}
            ),
            "only numbers can be aggregated",
        ),
        (
            lambda raw: _feature_view(raw, "city_sales")["aggregates"][0].update(
                functions=["median"]
            ),
            "Input should be 'mean', 'sum', 'min', 'max', 'std', 'count' or 'last'",
        ),
        (
            lambda raw: _feature_view(raw, "city_lags").update(columns=["median", "stock"]),
            r"feature view 'city_lags': source 'sales' has no columns \['stock'\]",
        ),
        (
            lambda raw: _feature_view(raw, "city_lags").update(lags=["0mo", "1mo"]),
            "feature view 'city_lags': every lag must be longer than 0",
        ),
        (
            lambda raw: _feature_view(raw, "city_trend").update(function="price_trnd"),
            r"transforms\.py defines no top-level function 'price_trnd'",
        ),
        (
            lambda raw: raw["events"]["request_fields"].append("median"),
            "events.request_fields names 'median', the label's column.*it leaks",
        ),
        (
            lambda raw: raw["events"]["calendar"].append("day_of_month"),
            r"events\.calendar\.7: Input should be 'month', 'quarter'",
        ),
        (
            lambda raw: raw["training"]["numeric"].append("event_minute"),
            "training field 'event_minute' is not one of events.request_fields nor a calendar",
        ),
        (
            lambda raw: raw["label"].update(delay="0d"),
            "label.delay must be longer than 0",
        ),
        (
            lambda raw: raw["sources"]["sales"].update(available_after="1d"),
            "feature view 'city_sales' reads 'median', the label, from 'sales'.*it leaks",
        ),
        (
            _add_outcomes_source,
            r"label\.event_id is required when label\.source \('outcomes'\) is not the events'",
        ),
        (
            lambda raw: _feature_view(raw, "city_labels").update(name="source__sales"),
            "names starting with '_' or 'source__' are airloop's own tables",
        ),
    ],
    ids=[
        "expr-column",
        "date-part",
        "aggregate-column",
        "aggregate-text",
        "aggregate-function",
        "lag-column",
        "zero-lag",
        "transform-function",
        "label-in-request",
        "calendar-name",
        "training-field",
        "zero-delay",
        "source-known-before-label",
        "label-source-keys",
        "reserved-view-name",
    ],
)
def test_mistakes_are_named_with_the_file(tmp_path: Path, edit: Any, message: str) -> None:
    with pytest.raises(UseCaseError, match=message) as err:
        load(tmp_path / "sales", edit)
    assert str(tmp_path / "sales" / "usecase.yaml") in str(err.value)


def test_a_transform_view_without_transforms_py_names_the_missing_file(tmp_path: Path) -> None:
    path = write_usecase(tmp_path / "bare", sales_raw(), transforms=None)
    with pytest.raises(UseCaseError, match=r"transforms\.py not found: it must define price_trend"):
        load_usecase(str(path))


# -- the boundary rule ------------------------------------------------------------------------


def test_a_row_arriving_exactly_at_the_snapshot_is_known_and_its_own_event_is_not() -> None:
    from airloop.core.periods import Span

    rows = pd.DataFrame({"t": [ts("2000-05-01"), ts("2000-05-02"), ts("2000-06-01")]})
    as_of = ts("2000-06-01")
    # Published a month later: May's row arrives exactly at June's start, so it counts.
    assert known_at(rows, "t", Span.parse("1mo"), as_of)["t"].tolist() == [ts("2000-05-01")]
    # Known at once: still no row of the snapshot's own time, the time of the events it serves.
    assert known_at(rows, "t", Span.parse("0d"), as_of)["t"].tolist() == rows["t"][:2].tolist()


@pytest.mark.parametrize("after", ["0d", "30m", "1h", "6h", "1d"])
def test_the_first_moment_a_row_is_known_is_the_rule_of_known_at(after: str) -> None:
    """``known_from`` (when each row becomes known) and ``known_at`` (the rows known at one
    moment) are one boundary rule: on a grid of moments they pick the same rows, those
    arriving exactly at the moment and those a nanosecond after their own time included."""
    from airloop.core.periods import Span
    from airloop.usecase.views import known_from

    span = Span.parse(after)
    start = ts("2000-01-31T22:00")
    ns = pd.Timedelta(1, "ns")
    times = pd.date_range(start, periods=97, freq="30min")
    rows = pd.DataFrame({"t": times.append(pd.DatetimeIndex([start + ns, times[-1] - ns]))})
    first = known_from(rows["t"], span)
    checked = 0
    for as_of in pd.date_range(start - pd.Timedelta(hours=1), periods=3 * 24 * 2, freq="30min"):
        for moment in (as_of - ns, as_of, as_of + ns):
            by_filter = known_at(rows, "t", span, moment).index.tolist()
            assert by_filter == rows.index[first <= moment.as_unit("ns").value].tolist(), moment
            checked += len(by_filter)
    assert checked > 0


def test_aggregates_cover_the_known_months_of_each_window(sales: UseCase) -> None:
    history = history_of(sales, raw_rows())
    out = sales.feature_view("city_sales").compute(
        sales, inputs_at(ts("2001-01-01"), {SALES_TABLE: history})
    )
    paris = out.set_index("city").loc["paris"]
    # 3mo: October, November and December 2000 (December published exactly on 1 January).
    i = MONTHS.get_loc(ts("2000-12-01"))
    assert paris["sales_count_3mo"] == 3 and paris["sales_count_12mo"] == 12
    assert paris["sales_last_3mo"] == 10 + i + 1 and paris["sales_min_3mo"] == 10 + i - 2 + 1
    assert paris["sales_sum_3mo"] == sum(10 + k + 1 for k in (i - 2, i - 1, i))
    assert paris["sales_std_3mo"] == pytest.approx(1.0)
    assert paris["median_mean_12mo"] == pytest.approx(median("paris", "2000-06-01") + 0.5)
    assert (out[EVENT_TS] == ts("2001-01-01")).all()
    assert str(out["sales_count_3mo"].dtype) == "Int64"


def test_lags_take_the_latest_known_row_at_or_before_the_lag(sales: UseCase) -> None:
    history = history_of(sales, raw_rows())
    view = sales.feature_view("city_lags")
    out = view.compute(sales, inputs_at(ts("2001-01-01"), {SALES_TABLE: history}))
    lyon = out.set_index("city").loc["lyon"]
    assert lyon["median_lag_1mo"] == median("lyon", "2000-12-01")
    assert lyon["median_lag_12mo"] == median("lyon", "2000-01-01")
    # Mid-month, the lag finds the last month published by then.
    out = view.compute(sales, inputs_at(ts("2001-01-15"), {SALES_TABLE: history}))
    assert out.set_index("city").loc["lyon", "median_lag_1mo"] == median("lyon", "2000-12-01")


def test_label_statistics_of_a_regression_use_the_labels_known_at_the_snapshot(
    sales: UseCase,
) -> None:
    clean = clean_source(raw_rows(), sales.sources["sales"])
    labels, events = compute.labels_table(sales, clean), compute.events_table(sales, clean)
    assert (labels[AVAILABLE_AT] == labels[EVENT_TS] + pd.DateOffset(months=1)).all()
    view = sales.feature_view("city_labels")
    out = view.rates(sales, labels, events, ts("2001-01-01")).set_index("city")
    assert out.loc["paris", "count_3mo"] == 3  # October to December: December's arrived at as_of
    assert out.loc["paris", "last_3mo"] == median("paris", "2000-12-01")
    assert out.loc["paris", "mean_3mo"] == median("paris", "2000-11-01")
    assert out.loc["paris", "std_3mo"] == pytest.approx(1.0)


# -- no feature sees its own event or anything after it, whatever the kind --------------------


AS_OFS = ["1999-02-01", "1999-07-01", "2000-01-01", "2000-06-15", "2001-01-01", "2001-12-01"]


def _scrambled_sources(
    usecase: UseCase, history: pd.DataFrame, as_of: pd.Timestamp
) -> pd.DataFrame:
    """The rows not known at ``as_of`` changed beyond recognition, and a city that appears only
    at ``as_of`` (its own event's row) and later."""
    after = usecase.sources["sales"].available_after
    unknown = ~history.index.isin(known_at(history, "date", after, as_of).index)
    out = history.copy()
    for column in {"sales", "volume", "median", "price_per_sale"} & set(out.columns):
        out.loc[unknown, column] = out.loc[unknown, column] * 1000 + 7
    newcomer = out[out["date"] == out["date"].max()].head(1).assign(city="nice")
    stamps = [as_of, as_of + pd.DateOffset(months=1)]
    late = pd.concat([newcomer.assign(date=t) for t in stamps], ignore_index=True)
    return pd.concat([out, late], ignore_index=True)


def _scrambled_labels(labels: pd.DataFrame, events: pd.DataFrame, as_of: pd.Timestamp) -> tuple:
    """Labels not known at ``as_of`` changed, and a bogus early label of an event at ``as_of``."""
    unknown = (labels[AVAILABLE_AT] > as_of) | (labels[EVENT_TS] >= as_of)
    labels = labels.copy()
    labels.loc[unknown, LABEL] = labels.loc[unknown, LABEL] * 1000 + 7
    early = {"event_id": "nice_now", EVENT_TS: as_of, AVAILABLE_AT: as_of - pd.Timedelta("1D")}
    labels = pd.concat([labels, pd.DataFrame([{**early, LABEL: 1.0}])], ignore_index=True)
    events = pd.concat([events, pd.DataFrame([{"event_id": "nice_now", "city": "nice"}])])
    return labels, events


@pytest.mark.parametrize("as_of", AS_OFS)
def test_no_view_changes_when_what_was_not_yet_known_changes(sales: UseCase, as_of: str) -> None:
    at = ts(as_of)
    raw = raw_rows()
    clean = clean_source(raw, sales.sources["sales"])
    history = history_of(sales, raw)
    labels, events = compute.labels_table(sales, clean), compute.events_table(sales, clean)
    honest = {SALES_TABLE: history, LABELS_TABLE: labels, EVENTS_TABLE: events}
    scrambled_labels, scrambled_events = _scrambled_labels(labels, events, at)
    scrambled = {
        SALES_TABLE: _scrambled_sources(sales, history, at),
        LABELS_TABLE: scrambled_labels,
        EVENTS_TABLE: scrambled_events,
    }
    for view in sales.feature_views:
        seen = view.compute(sales, inputs_at(at, honest))
        if seen is None:
            assert view.compute(sales, inputs_at(at, scrambled)) is None, view.name
            continue
        pd.testing.assert_frame_equal(seen, view.compute(sales, inputs_at(at, scrambled)))
        assert "nice" not in set(seen["city"])


def test_without_a_publication_delay_an_event_still_never_sees_its_own_row(tmp_path: Path) -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["sources"]["sales"]["available_after"] = "0d"
        raw["feature_views"] = [
            v for v in raw["feature_views"] if v["kind"] in ("aggregate", "lag", "label_rate")
        ]
        _feature_view(raw, "city_sales")["aggregates"].pop()  # the label's column would leak
        _feature_view(raw, "city_lags")["columns"] = ["sales"]

    usecase = load(tmp_path / "eager", edit)
    history = history_of(usecase, raw_rows())
    for as_of in map(ts, AS_OFS):
        honest = inputs_at(as_of, {SALES_TABLE: history})
        scrambled = inputs_at(as_of, {SALES_TABLE: _scrambled_sources(usecase, history, as_of)})
        for name in ("city_sales", "city_lags"):
            view = usecase.feature_view(name)
            seen = view.compute(usecase, honest)
            if seen is not None:
                pd.testing.assert_frame_equal(seen, view.compute(usecase, scrambled))
    out = usecase.feature_view("city_lags").compute(
        usecase, inputs_at(ts("2001-01-01"), {SALES_TABLE: history})
    )
    assert (
        out.set_index("city").loc["paris", "sales_lag_1mo"]
        == 10 + MONTHS.get_loc(ts("2000-12-01")) + 1
    )


def test_a_transform_that_would_cheat_is_never_handed_a_later_row(sales: UseCase) -> None:
    history = history_of(sales, raw_rows())  # every row, future ones included
    view = sales.feature_view("city_peek")
    first = inputs_at(ts("1999-01-15"), {SALES_TABLE: history})
    assert view.compute(sales, first) is None  # January 1999 is published on 1 February
    for as_of in map(ts, AS_OFS):
        out = view.compute(sales, inputs_at(as_of, {SALES_TABLE: history}))
        latest = pd.to_datetime(out["latest_seen"], unit="s", utc=True)
        published = as_of - pd.DateOffset(months=1)
        assert (latest <= published).all() and (latest < as_of).all()
        if as_of.day == 1:  # last month's row arrived exactly now: it is handed over
            assert (latest == published).all()
        paris = out.set_index("city").loc["paris", "latest_median"]
        assert paris == median("paris", str(latest.max().date()))


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("extra_column", r"returned undeclared \['event_timestamp'\].*adds event_timestamp"),
        ("missing_feature", r"it lacks \['n_months'\]"),
        ("wrong_type", "feature 'median_trend' is declared float but came back as object"),
        ("twice", r"more than one row for city \['lyon', 'paris'\]"),
        ("not_a_frame", "returned dict, not a DataFrame"),
    ],
)
def test_a_transform_breaking_its_contract_is_refused_naming_transforms_py(
    sales: UseCase, function: str, message: str
) -> None:
    view = sales.feature_view("city_trend").model_copy(update={"function": function})
    inputs = inputs_at(ts("2001-01-01"), {SALES_TABLE: history_of(sales, raw_rows())})
    with pytest.raises(TransformError, match=message) as err:
        view.compute(sales, inputs)
    assert f"{sales.folder / 'transforms.py'}: {function}() for feature view 'city_trend'" in str(
        err.value
    )


def test_a_transform_result_is_typed_and_stamped(sales: UseCase) -> None:
    inputs = inputs_at(ts("2001-01-01"), {SALES_TABLE: history_of(sales, raw_rows())})
    out = sales.feature_view("city_trend").compute(sales, inputs)
    assert list(out.columns) == ["city", EVENT_TS, "median_trend", "n_months"]
    # January 1999 to December 2000: 24 months back, December published exactly at as_of.
    assert str(out["n_months"].dtype) == "Int64" and out["n_months"].tolist() == [24, 24]
    assert out["median_trend"].tolist() == [23.0, 23.0]


# -- calendar features ------------------------------------------------------------------------


def test_calendar_features_are_in_the_events_table_and_computed_alike_at_serving(
    sales: UseCase,
) -> None:
    clean = clean_source(raw_rows(MONTHS[14:15]), sales.sources["sales"])  # March 2000
    events = compute.events_table(sales, clean)
    assert events.loc[0, sales.events.calendar_features].tolist() == [3, 1, 2, 61, 9, 0, 0]
    rows: list[dict[str, Any]] = [{"city": "paris", "month": 3}, {"city": "lyon", "month": 3}]
    add_calendar(
        sales, rows, [datetime(2000, 3, 1, tzinfo=UTC), datetime(2000, 3, 5, 7, tzinfo=UTC)]
    )
    assert {k: rows[0][k] for k in sales.events.calendar_features} == events.loc[
        0, sales.events.calendar_features
    ].to_dict()
    assert rows[1]["event_is_weekend"] == 1 and rows[1]["event_hour"] == 7
    missing = sales.events.calendar_columns(pd.Series([pd.NaT, ts("2000-01-01")]))
    assert math.isnan(missing.loc[0, "event_month"]) and missing.loc[1, "event_month"] == 1


def test_calendar_features_are_not_asked_of_callers(sales: UseCase) -> None:
    assert sales.request_keys == ["city", "month"]


# -- through the feature pipeline -------------------------------------------------------------


def _publish_months(
    usecase: UseCase, settings: Settings, months: pd.DatetimeIndex, monkeypatch: Any
) -> None:
    """Each month's raw rows through build_offline_features, as the feature DAG would."""
    monkeypatch.setattr(pipeline, "record_interval", lambda *args: None)
    raw = raw_rows()
    for month in months:
        folder = settings.staging_dir / "given" / f"{month:%Y-%m}"
        folder.mkdir(parents=True, exist_ok=True)
        part = raw[(raw["year"] == month.year) & (raw["month"] == month.month)]
        part.to_csv(folder / "sales.csv", index=False)
        manifest = folder / "manifest.json"
        landed = {"uri": str(folder / "sales.csv"), "landed": str(folder / "sales.csv")}
        manifest.write_text(json.dumps({"files": {"sales": landed}}))
        extracted = pipeline.Extracted(partition=f"{month:%Y-%m-%d}", manifest=str(manifest))
        end = month + pd.DateOffset(months=1)
        pipeline.build_offline_features(
            month.to_pydatetime(), end.to_pydatetime(), extracted, usecase, settings
        )


def test_the_pipeline_keeps_source_rows_and_reads_them_back(
    sales: UseCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=tmp_path / "home")
    _publish_months(sales, settings, MONTHS[:26], monkeypatch)  # January 1999 to February 2001
    start, end = datetime(2001, 2, 1, tzinfo=UTC), datetime(2001, 3, 1, tzinfo=UTC)
    kept = read_partitions(settings, sales, SALES_TABLE, datetime(1999, 1, 1, tzinfo=UTC), end)
    assert set(kept.columns) == set(sales.source_history()["sales"]) and len(kept) == 52
    everything = {
        SALES_TABLE: history_of(sales, raw_rows()),
        LABELS_TABLE: read_partitions(settings, sales, LABELS_TABLE, MONTHS[0], end),
        EVENTS_TABLE: read_partitions(settings, sales, EVENTS_TABLE, MONTHS[0], end),
    }
    for view in sales.feature_views:
        published = read_partitions(settings, sales, view.name, start, end)
        expected = view.compute(sales, inputs_at(pd.Timestamp(start), everything))
        pd.testing.assert_frame_equal(
            published.reset_index(drop=True), expected, check_dtype=False, obj=view.name
        )
    first = partition_file(settings, sales, "city_trend", start).read_bytes()
    _publish_months(sales, settings, MONTHS[25:26], monkeypatch)  # the same interval again
    assert partition_file(settings, sales, "city_trend", start).read_bytes() == first


def test_a_view_that_says_it_stays_put_stamps_every_row_at_the_interval_start(
    sales: UseCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay clock refreshes within an interval only the views that move; one that said
    it stays put but stamped a row later would serve a stale value for the rest of the day."""
    settings = Settings(home=tmp_path / "home")
    _publish_months(sales, settings, MONTHS[:26], monkeypatch)
    start, end = datetime(2001, 2, 1, tzinfo=UTC), datetime(2001, 3, 1, tzinfo=UTC)
    everything = {
        SALES_TABLE: history_of(sales, raw_rows()),
        LABELS_TABLE: read_partitions(settings, sales, LABELS_TABLE, MONTHS[0], end),
        EVENTS_TABLE: read_partitions(settings, sales, EVENTS_TABLE, MONTHS[0], end),
    }
    kinds = set()
    for view in sales.feature_views:
        rows = view.compute(sales, inputs_at(pd.Timestamp(start), everything))
        assert rows is not None and not rows.empty, view.name
        if not view.moves_within_interval():
            kinds.add(view.kind)
            assert (rows[EVENT_TS] == pd.Timestamp(start)).all(), view.name
    assert {"label_rate", "aggregate"} <= kinds  # the snapshot kinds this use case has


def test_an_aggregate_with_every_moves_within_its_interval(tmp_path: Path) -> None:
    usecase = load(tmp_path, _add_visits)
    [visits] = [v for v in usecase.feature_views if v.name == "city_visits"]
    assert visits.moves_within_interval()
    assert not visits.model_copy(update={"every": None}).moves_within_interval()


def test_view_inputs_refuse_a_table_no_view_declared(sales: UseCase, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    start, end = datetime(2001, 2, 1, tzinfo=UTC), datetime(2001, 3, 1, tzinfo=UTC)
    inputs = pipeline.view_inputs(settings, sales, start, end, {})
    assert inputs.history(SALES_TABLE) is None
    with pytest.raises(KeyError, match="source__weather"):
        inputs.history(source_table("weather"))


# -- snapshots within an interval: the state of the last hours --------------------------------


def _add_visits(raw: dict[str, Any]) -> None:
    """Visits per city, each on record at a minute of its own (a scheduled time plus a
    delay), and a view of them refreshed every day of the monthly interval."""
    raw["sources"]["visits"] = _partitioned(
        "at",
        {"city": "string", "scheduled": "timestamp", "late": "number"},
        derive=[
            {"name": "minutes", "expr": "max(late, 0) + 1"},
            {"name": "at", "offset": {"time": "scheduled", "minutes": "minutes"}},
        ],
    )
    raw["feature_views"].append(
        {
            "name": "city_visits",
            "kind": "aggregate",
            "entity": "city",
            "source": "visits",
            "windows": ["1d", "3d"],
            "every": "1d",
            "ttl": "1d",
            "aggregates": [{"column": "late", "functions": ["mean", "max", "count"]}],
        }
    )


def visit_rows(days: pd.DatetimeIndex) -> pd.DataFrame:
    """Two visits a day per city, at 06:00 and 23:00 plus their lateness (up to 72 minutes:
    the late ones of some days are on record the next day)."""
    rows = []
    for i, day in enumerate(days):
        for j, city in enumerate(CITIES):
            for hour, late in ((6, float(i % 5)), (23, float(30 + i % 41))):
                at = (day + pd.Timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")
                rows.append({"city": city, "scheduled": at, "late": late + j})
    return pd.DataFrame(rows)


def _visits_inputs(
    usecase: UseCase, clean: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> ViewInputs:
    """The interval's own visits as its source, the earlier ones as the history table."""
    spec = usecase.sources["visits"]
    history = compute.source_history_table(usecase, "visits", clean[clean["at"] < start])
    current = clean[(clean["at"] >= start) & (clean["at"] < end)]
    tables = {source_table("visits"): history}
    return ViewInputs(
        start=start, end=end, sources={"visits": current[spec.output_columns()]}, history=tables.get
    )


def test_offset_moves_a_time_by_a_column_and_expr_takes_min_and_max() -> None:
    spec = _source(
        [
            {"name": "lateness", "expr": "max(a, 0) + min(b, 1, 2)"},
            {"name": "start", "date_from": {"year": "y", "month": "m", "day": "d", "hour": "h"}},
            {"name": "at", "offset": {"time": "start", "minutes": "lateness"}},
            {"name": "earlier", "offset": {"time": "start", "hours": "a"}},
        ]
    )
    raw = pd.DataFrame(
        {
            "y": [2000, 2000, 2000],
            "m": [1, 1, 1],
            "d": [31, 5, 5],
            "h": [23, 7, 7],
            "a": [75.0, -5.0, None],
            "b": [3.0, 0.0, 1.0],
        }
    )
    out = spec.add_derived(raw)
    assert out["lateness"].iloc[:2].tolist() == [76.0, 0.0] and math.isnan(out["lateness"].iloc[2])
    assert out["at"].iloc[0] == ts("2000-02-01T00:16")  # 23:00 plus 76 minutes: the next day
    assert out["at"].iloc[1] == ts("2000-01-05T07:00") and pd.isna(out["at"].iloc[2])
    assert out["earlier"].iloc[1] == ts("2000-01-05T02:00")
    assert spec.derived("at").inputs() == ["start", "lateness"]
    assert _source([{"name": "x", "expr": "max(a, b)"}]).derived("x").inputs() == ["a", "b"]
    with pytest.raises(ValueError, match="exactly one of minutes, hours or days"):
        _source([{"name": "x", "offset": {"time": "a", "minutes": "b", "hours": "b"}}])


@pytest.mark.parametrize("expr", ["max(a)", "abs(a)", "max(a, b, key=1)", "max(*a)", "a.max(b, 1)"])
def test_expr_takes_only_min_and_max_of_two_or_more_values(expr: str) -> None:
    with pytest.raises(ValueError, match="only \\+ - \\* /"):
        _source([{"name": "x", "expr": expr}])


def test_an_aggregate_every_day_snapshots_each_moment_from_the_rows_known_then(
    tmp_path: Path,
) -> None:
    usecase = load(tmp_path / "visits", _add_visits)
    view = usecase.feature_view("city_visits")
    days = pd.date_range("2000-01-01", "2000-02-29", freq="D", tz="UTC")
    clean = clean_source(visit_rows(days), usecase.sources["visits"])
    start, end = ts("2000-02-01"), ts("2000-03-01")
    out = view.compute(usecase, _visits_inputs(usecase, clean, start, end))
    stamps = sorted(out[EVENT_TS].unique())
    assert stamps == list(pd.date_range(start, end, freq="D", inclusive="left"))
    paris = out[out["city"] == "paris"].set_index(EVENT_TS)
    # At 15 February, the last day holds the two visits of the 14th (paris: lateness + 1).
    day = days.get_loc(ts("2000-02-14"))
    on_14th = [float(day % 5) + 1, float(30 + day % 41) + 1]
    snap = paris.loc[ts("2000-02-15")]
    assert snap["late_count_1d"] == 2 and snap["late_max_1d"] == max(on_14th)
    assert snap["late_mean_1d"] == pytest.approx(sum(on_14th) / 2)
    assert snap["late_count_3d"] == 6
    # The first snapshot of the interval reads only January's rows, from the history table.
    assert paris.loc[start, "late_count_1d"] == 2


def test_a_snapshot_says_when_an_entitys_windows_emptied(tmp_path: Path) -> None:
    """An online store keeps an entity's last row whatever the view's ttl, so the snapshot
    after an entity's last visit has a row of its own (count 0, nothing else known) rather
    than none: the store then says "no visits lately", not the day before's figures."""
    usecase = load(tmp_path / "visits", _add_visits)
    view = usecase.feature_view("city_visits")
    days = pd.date_range("2000-01-01", "2000-02-29", freq="D", tz="UTC")
    rows = visit_rows(days)
    scheduled = pd.to_datetime(rows["scheduled"], utc=True)
    rows = rows[(rows["city"] != "paris") | (scheduled < ts("2000-02-10"))]  # paris stops
    clean = clean_source(rows, usecase.sources["visits"])
    start, end = ts("2000-02-01"), ts("2000-03-01")
    out = view.compute(usecase, _visits_inputs(usecase, clean, start, end))
    paris = out[out["city"] == "paris"].set_index(EVENT_TS)
    # Its last visits (the 9th, the late one on record on the 10th) are in the 3-day window
    # until the 13th; the 14th says the windows emptied; after that, no more rows.
    assert paris.loc[ts("2000-02-13"), "late_count_3d"] == 1
    emptied = paris.loc[ts("2000-02-14")]
    assert emptied["late_count_1d"] == 0 and emptied["late_count_3d"] == 0
    assert pd.isna(emptied["late_mean_3d"]) and pd.isna(emptied["late_max_1d"])
    assert paris.index.max() == ts("2000-02-14")


@pytest.mark.parametrize("moment", ["2000-02-01", "2000-02-01T06:01", "2000-02-10", "2000-02-29"])
def test_no_snapshot_within_an_interval_changes_when_later_rows_change(
    tmp_path: Path, moment: str
) -> None:
    usecase = load(tmp_path / "visits", _add_visits)
    view = usecase.feature_view("city_visits")
    days = pd.date_range("2000-01-01", "2000-03-05", freq="D", tz="UTC")
    clean = clean_source(visit_rows(days), usecase.sources["visits"])
    start, end, at = ts("2000-02-01"), ts("2000-03-01"), ts(moment)
    scrambled = clean.copy()
    later = scrambled["at"] >= at  # not yet on record at the moment: changed, and a newcomer
    scrambled.loc[later, "late"] = scrambled.loc[later, "late"] * 1000 + 7
    newcomer = scrambled[later].head(1).assign(city="nice", at=at)
    scrambled = pd.concat([scrambled, newcomer], ignore_index=True)
    honest = view.compute(usecase, _visits_inputs(usecase, clean, start, end))
    changed = view.compute(usecase, _visits_inputs(usecase, scrambled, start, end))
    seen = honest[honest[EVENT_TS] <= at].reset_index(drop=True)
    pd.testing.assert_frame_equal(seen, changed[changed[EVENT_TS] <= at].reset_index(drop=True))
    assert "nice" not in set(changed.loc[changed[EVENT_TS] <= at, "city"])
    assert not seen.empty


def test_every_must_be_longer_than_zero(tmp_path: Path) -> None:
    def edit(raw: dict[str, Any]) -> None:
        _add_visits(raw)
        _feature_view(raw, "city_visits")["every"] = "0d"

    with pytest.raises(UseCaseError, match="every every must be longer than 0"):
        load(tmp_path / "visits", edit)


# -- a queue: what was planned and not done yet ----------------------------------------------


def _add_queue(raw: dict[str, Any]) -> None:
    """Planned visits (on record from their scheduled moment) and the visits as they happen,
    matched by a visit id; a queue per city refreshed every six hours."""
    _add_visits(raw)
    columns = {"visit": "string", "city": "string", "scheduled": "timestamp"}
    raw["sources"]["plans"] = _partitioned("scheduled", columns)
    raw["sources"]["visits"]["columns"].append({"name": "visit", "type": "string"})
    raw["feature_views"].append(
        {
            "name": "city_queue",
            "kind": "pending",
            "entity": "city",
            "source": "plans",
            "planned_at": "scheduled",
            "done": {"source": "visits"},
            "item": "visit",
            "windows": ["12h", "1d"],
            "every": "6h",
            "ttl": "1d",
        }
    )


def queue_rows(days: pd.DatetimeIndex) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plans, and the visits that happened: those of ``visit_rows``, each with an id, and
    every third day a noon visit per city that is planned and never happens."""
    visits = visit_rows(days)
    visits["visit"] = visits["city"] + "@" + visits["scheduled"]
    plans = visits[["visit", "city", "scheduled"]]
    noon = [
        {"visit": f"{city}@noon{i}", "city": city, "scheduled": f"{day:%Y-%m-%d}T12:00:00Z"}
        for i, day in enumerate(days)
        if i % 3 == 0
        for city in CITIES
    ]
    return pd.concat([plans, pd.DataFrame(noon)], ignore_index=True), visits


def _queue_inputs(
    usecase: UseCase,
    plans: pd.DataFrame,
    visits: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> ViewInputs:
    """Each source's rows of [start, end) as the interval's, the earlier ones as history."""
    tables, current = {}, {}
    for name, rows in (("plans", plans), ("visits", visits)):
        clean = clean_source(rows, usecase.sources[name])
        stamp = usecase.sources[name].partition_by
        before = clean[clean[stamp] < start]
        tables[source_table(name)] = compute.source_history_table(usecase, name, before)
        now = clean[(clean[stamp] >= start) & (clean[stamp] < end)]
        current[name] = now[usecase.sources[name].output_columns()]
    return ViewInputs(start=start, end=end, sources=current, history=tables.get)


def _queue_by_hand(
    plans: pd.DataFrame, visits: pd.DataFrame, at: pd.Timestamp, window: pd.Timedelta
) -> dict[str, tuple[int, int]]:
    """Per city, (pending, planned): planned in [at - window, at), not visited before ``at``."""
    happened = pd.to_datetime(visits["scheduled"], utc=True) + pd.to_timedelta(
        visits["late"].clip(lower=0) + 1, unit="min"
    )
    done = set(visits.loc[happened < at, "visit"])
    scheduled = pd.to_datetime(plans["scheduled"], utc=True)
    inside = plans[(scheduled >= at - window) & (scheduled < at)]
    return {
        city: (int((~group["visit"].isin(done)).sum()), len(group))
        for city, group in inside.groupby("city")
    }


def test_a_pending_view_counts_what_was_planned_and_not_done_by_each_snapshot(
    tmp_path: Path,
) -> None:
    usecase = load(tmp_path / "queue", _add_queue)
    view = usecase.feature_view("city_queue")
    assert view.feature_names(usecase) == [
        "pending_12h",
        "planned_12h",
        "pending_share_12h",
        "pending_1d",
        "planned_1d",
        "pending_share_1d",
    ]
    plans, visits = queue_rows(pd.date_range("2000-01-01", "2000-03-05", freq="D", tz="UTC"))
    start, end = ts("2000-02-01"), ts("2000-03-01")
    out = view.compute(usecase, _queue_inputs(usecase, plans, visits, start, end))
    moments = list(pd.date_range(start, end, freq="6h", inclusive="left"))
    assert sorted(out[EVENT_TS].unique()) == moments
    rows = out.set_index([EVENT_TS, "city"])
    checked = 0
    for at in moments:
        for window, suffix in ((pd.Timedelta(hours=12), "12h"), (pd.Timedelta(days=1), "1d")):
            for city, (pending, planned) in _queue_by_hand(plans, visits, at, window).items():
                row = rows.loc[(at, city)]
                assert (row[f"pending_{suffix}"], row[f"planned_{suffix}"]) == (pending, planned)
                assert row[f"pending_share_{suffix}"] == pytest.approx(pending / planned)
                checked += pending
    assert checked > 0  # the late evening visits and the noon ones that never happen
    # At midnight after a noon that never happened, both of its cities still wait for it.
    assert rows.loc[(ts("2000-02-02"), "paris"), "pending_1d"] >= 1


def test_a_pending_view_never_counts_a_completion_that_was_not_yet_known(tmp_path: Path) -> None:
    usecase = load(tmp_path / "queue", _add_queue)
    view = usecase.feature_view("city_queue")
    plans, visits = queue_rows(pd.date_range("2000-01-01", "2000-03-05", freq="D", tz="UTC"))
    start, end, at = ts("2000-02-01"), ts("2000-03-01"), ts("2000-02-10T06:00")
    happened = pd.to_datetime(visits["scheduled"], utc=True) + pd.to_timedelta(
        visits["late"].clip(lower=0) + 1, unit="min"
    )
    # What was not yet on record at the moment: visits happen sooner, plans change.
    hurried = visits.copy()
    later = happened >= at
    hurried.loc[later, "late"] = -120.0
    moved = plans.copy()
    ahead = pd.to_datetime(plans["scheduled"], utc=True) >= at
    moved.loc[ahead, "city"] = "nice"
    honest = view.compute(usecase, _queue_inputs(usecase, plans, visits, start, end))
    changed = view.compute(usecase, _queue_inputs(usecase, moved, hurried, start, end))
    seen = honest[honest[EVENT_TS] <= at].reset_index(drop=True)
    pd.testing.assert_frame_equal(seen, changed[changed[EVENT_TS] <= at].reset_index(drop=True))
    assert seen["pending_12h"].sum() > 0


def test_a_pending_view_names_what_it_cannot_find(tmp_path: Path) -> None:
    def edit(raw: dict[str, Any]) -> None:
        _add_queue(raw)
        _feature_view(raw, "city_queue")["item"] = "booking"

    with pytest.raises(UseCaseError, match=r"source 'plans' has no columns \['booking'\]"):
        load(tmp_path / "queue", edit)
