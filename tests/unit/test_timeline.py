"""The timeline: the life of a model on one figure, as a page and a PNG beside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from airloop.monitoring.report import render_timeline, timeline_figure
from airloop.settings import Settings


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


def test_the_page_and_its_png_are_written_for_an_empty_home(tmp_path: Path, flights) -> None:
    settings = Settings(home=tmp_path)
    page = render_timeline(settings, flights, [], tmp_path / "reports" / "timeline.html")
    png = page.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in page.read_text()
