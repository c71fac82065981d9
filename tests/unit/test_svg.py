"""Inline SVG charts: ticks, coordinates, escaping, gaps; the report's distribution charts."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from airloop.core.svg import Chart, date_ticks, nice_ticks, value_range
from airloop.monitoring.report.charts import distribution_chart, history_plot

SVG = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ET.Element:
    """The chart as XML: a chart that is not well-formed fails here."""
    return ET.fromstring(svg)


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0.0, 0.72, [0.0, 0.2, 0.4, 0.6]),
        (-3.0, 7.0, [-2.0, 0.0, 2.0, 4.0, 6.0]),
        (1000.0, 1040.0, [1000.0, 1010.0, 1020.0, 1030.0, 1040.0]),
    ],
)
def test_ticks_are_round_numbers_within_the_range(lo, hi, expected) -> None:
    assert nice_ticks(lo, hi) == pytest.approx(expected)


def test_ticks_of_a_point_or_an_infinite_range() -> None:
    assert nice_ticks(2.0, 2.0) == [2.0]
    assert nice_ticks(0.0, float("inf")) == []


def test_a_flat_or_empty_range_is_widened_and_missing_values_ignored() -> None:
    assert value_range([3.0, 3.0]) == (2.5, 3.5)
    assert value_range([]) == (0.0, 1.0)
    assert value_range([1.0, float("nan"), 3.0], pad=0.5) == (0.0, 4.0)


def test_data_maps_into_the_box_with_up_as_more() -> None:
    chart = Chart("c", (0.0, 10.0), (0.0, 1.0), width=200, height=100)
    assert chart.px(0.0) == chart.left and chart.px(10.0) == 200 - chart.right
    assert chart.py(0.0) == 100 - chart.bottom and chart.py(1.0) == chart.top


def test_a_missing_value_breaks_the_line_and_gets_no_dot() -> None:
    chart = Chart("live", (0.0, 4.0), (0.0, 1.0))
    chart.line([0, 1, 2, 3, 4], [0.1, 0.2, None, 0.4, float("nan")], "black", "live")
    root = parsed(chart.render())
    assert len(root.findall(f"{SVG}polyline")) == 1  # 0-1; 3 stands alone
    assert len(root.findall(f"{SVG}circle")) == 3


def test_titles_labels_and_ticks_are_escaped() -> None:
    chart = Chart("<b>&", (0.0, 1.0), (0.0, 1.0), x_ticks=[(0.5, "<i>")], y_label='"y"')
    chart.bars([0.0], [0.5], [0.5], label="a<b")
    svg = chart.render()
    parsed(svg)
    assert "<b>" not in svg and "<i>" not in svg and "a&lt;b" in svg


def test_date_ticks_label_posix_seconds_as_days() -> None:
    lo = datetime(2013, 1, 22, tzinfo=UTC).timestamp()
    ticks = date_ticks(lo, lo + 14 * 86400)
    assert ticks[0] == (lo, "01-22")
    assert all(b[0] - a[0] == ticks[1][0] - ticks[0][0] for a, b in itertools.pairwise(ticks))
    assert 4 <= len(ticks) <= 8


def test_a_numeric_feature_is_two_density_histograms_on_shared_bins() -> None:
    rng = np.random.default_rng(0)
    svg = distribution_chart(
        pd.Series(rng.normal(0, 1, 500)), pd.Series(rng.normal(2, 1, 300)), "x"
    )
    root = parsed(svg)
    bars = [r for r in root.findall(f"{SVG}rect") if r.get("fill-opacity") == "0.5"]
    assert len(bars) == 2 * 20 + 2  # 20 bins each, and the legend's two swatches
    assert "reference" in svg and "served" in svg


def test_a_categorical_feature_is_shares_side_by_side_of_its_commonest_values() -> None:
    reference = pd.Series(["UA"] * 6 + ["AA"] * 3 + ["B6"])
    served = pd.Series(["UA"] * 2 + ["DL"] * 2)
    svg = distribution_chart(reference, served, "carrier")
    labels = re.findall(r">(UA|AA|B6|DL)<", svg)
    assert labels == ["UA", "AA", "B6", "DL"]  # by the reference's share, then the new one


def test_an_empty_feature_draws_nothing() -> None:
    assert distribution_chart(pd.Series([], dtype=float), pd.Series([np.nan]), "x") == ""


def test_history_marks_requests_and_the_versions_that_served() -> None:
    starts = pd.date_range("2013-01-22", periods=4, freq="D", tz="UTC")
    history = pd.DataFrame(
        {
            "interval_start": starts,
            "share_drifted": [0.1, None, 0.4, 0.2],
            "prediction_psi": [0.05, 0.1, 0.3, 0.1],
            "live_metric": [0.70, 0.71, None, 0.72],
            "expected_metric": [0.71] * 4,
            "model_version": ["1", "1", "2", "2"],
        }
    )
    html = history_plot(history, [{"interval_start": starts[2].isoformat()}])
    drift, live = (parsed(svg) for svg in re.findall(r"<svg.*?</svg>", html))
    texts = [t.text for t in live.iter(f"{SVG}text")]
    assert "v1" in texts and "v2" in texts
    red = [line for line in drift.iter(f"{SVG}line") if line.get("stroke") == "red"]
    assert len(red) == 2  # the request's mark, and its legend entry
    assert history_plot(history.iloc[0:0], []) == "<p>No monitored intervals yet.</p>"
