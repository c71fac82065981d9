"""The timeline: the life of a model on one figure, as a page and a PNG beside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from airloop.monitoring.report.timeline import render_timeline, timeline_figure
from airloop.settings import Settings
from airloop.usecase import UseCase


def history(days: int = 10, retrained_on: int = 6) -> pd.DataFrame:
    start = datetime(2013, 1, 15, tzinfo=UTC)
    return pd.DataFrame(
        {
            "interval_start": [start + timedelta(days=d) for d in range(days)],
            "share_drifted": [0.1 + 0.05 * d for d in range(days)],
            "prediction_psi": [0.05] * days,
            "live_metric": [0.7 - 0.01 * d for d in range(days)],
            "expected_metric": [0.72] * days,
            "model_version": ["1" if d < retrained_on else "2" for d in range(days)],
        }
    )


def test_the_figure_marks_versions_requests_promotions_and_refusals() -> None:
    requests = [{"interval_start": "2013-01-20T00:00:00+00:00"}]
    events = [
        {"day": "2013-01-15", "kind": "champion", "detail": "v1"},
        {"day": "2013-01-21", "kind": "promoted", "detail": "v2: promoted"},
        {"day": "2013-01-23", "kind": "gate", "detail": "v3: refused"},
        {"day": "2013-01-23", "kind": "drift", "detail": "not a mark"},
    ]
    drift, live = timeline_figure(history(), requests, events).axes
    legend = [t.get_text() for t in live.get_legend().get_texts()]
    assert {"first champion", "promoted", "refused by the gate", "live metric"} <= set(legend)
    assert "retrain request" in [t.get_text() for t in drift.get_legend().get_texts()]
    # Each run of one serving version is shaded and named.
    assert [t.get_text() for t in live.texts] == ["v1", "v2"]
    drawn = [line for line in drift.lines if line.get_color() == "red" and len(line.get_xdata())]
    assert len(drawn) == 1


def test_over_a_year_a_version_that_served_a_day_is_shaded_but_not_named() -> None:
    year = history(days=360, retrained_on=100)
    year.loc[200, "model_version"] = "3"  # served one day between two runs of v2
    year.loc[201:, "model_version"] = "4"
    _, live = timeline_figure(year, [], []).axes
    assert [t.get_text() for t in live.texts] == ["v1", "v2", "v4"]
    assert len(live.patches) == 4  # every run is shaded
    heights = [t.xy[1] for t in live.texts]
    assert heights[0] != heights[1] and heights[1] != heights[2]  # neighbours do not collide


def test_the_page_and_its_png_are_written_for_an_empty_home(tmp_path: Path, flights) -> None:
    settings = Settings(home=tmp_path)
    page = render_timeline(settings, flights, [], tmp_path / "reports" / "timeline.html")
    png = page.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in page.read_text()


def test_the_use_cases_live_target_is_a_line_and_a_count_in_its_direction(flights) -> None:
    from airloop.monitoring.report.history import at_target

    days = history()  # live 0.70, 0.69, ... 0.61
    _, live = timeline_figure(days, [], [], target=0.68).axes
    assert "target 0.68" in [t.get_text() for t in live.get_legend().get_texts()]
    assert flights.monitoring.live_target == 0.68

    def aiming(target: float | None, metrics: list[str]) -> UseCase:
        monitoring = flights.monitoring.model_copy(update={"live_target": target})
        return flights.model_copy(update={"monitoring": monitoring, "metrics": metrics})

    assert at_target(aiming(0.675, flights.metrics), days) == (3, 10)  # 0.70, 0.69, 0.68
    assert at_target(aiming(0.675, ["brier_score"]), days) == (7, 10)  # lower is better
    assert at_target(aiming(None, flights.metrics), days) is None
