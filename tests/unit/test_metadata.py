"""airloop's metadata tables, the champion history and the lineage chain's pure parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airloop.lineage.chain import LineageError, Link, parse_ref, render_text
from airloop.metadata.store import MetadataStore
from airloop.registry.evidence import ModelEvent, champion_at, history, render_evidence
from airloop.settings import Settings


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2013, 2, day, hour, tzinfo=UTC)


@pytest.fixture
def home(tmp_path) -> Settings:
    return Settings(home=tmp_path)


def task_row(**over: Any) -> dict[str, Any]:
    return {
        "dag_id": "feature_pipeline",
        "run_id": "r1",
        "task_id": "extract_partition",
        "map_index": -1,
        "try_number": 1,
        "state": "running",
        "start_date": at(1),
        "conf": {"conf": {}, "params": {"a": 1}},
        **over,
    }


def test_task_tries_are_kept_apart_and_updated_in_place(home) -> None:
    store = MetadataStore(home)
    store.record_task(task_row())
    store.record_task(task_row(try_number=2, start_date=at(1, 1)))
    store.record_task(task_row())  # the same try's event again replaces, never duplicates
    key = {
        k: v
        for k, v in task_row().items()
        if k in ("dag_id", "run_id", "task_id", "map_index", "try_number")
    }
    store.update_task(
        key,
        state="up_for_retry",
        end_date=at(1, 0) + timedelta(seconds=5),
        duration=5.0,
        mlflow_run_ids=["abc"],
    )
    rows = store.task_runs("feature_pipeline", "r1")
    assert [(r["try_number"], r["state"]) for r in rows] == [(1, "up_for_retry"), (2, "running")]
    assert rows[0]["mlflow_run_ids"] == ["abc"] and rows[0]["conf"]["params"] == {"a": 1}
    assert rows[0]["start_date"] == at(1)  # aware UTC back from SQLite
    assert store.task_runs("other") == []


def interval_row(day: int) -> dict[str, Any]:
    return {
        "usecase": "u",
        "partition": f"2013-02-{day:02d}",
        "interval_start": at(day),
        "interval_end": at(day + 1),
        "dag_id": "feature_pipeline",
        "run_id": f"r{day}",
        "trigger": "scheduled",
        "raw": {"events": {"sha256": "ab" * 32, "bytes": 10}},
        "validation": {"success": True, "report": None},
        "published": {},
    }


def test_intervals_overlapping_a_window_and_deleting_one(home) -> None:
    store = MetadataStore(home)
    for d in (1, 2, 3, 4):
        store.record_interval(interval_row(d))
    store.record_interval(interval_row(2))  # a rerun replaces its record
    inside = store.intervals("u", at(2), at(4))
    assert [r["partition"] for r in inside] == ["2013-02-02", "2013-02-03"]
    assert store.delete_interval("u", "2013-02-03") == 1
    assert [r["partition"] for r in store.intervals("u")] == [
        "2013-02-01",
        "2013-02-02",
        "2013-02-04",
    ]
    assert store.intervals("another") == []


def event(
    kind: str, version: str, before: str | None, after: str | None, when: datetime
) -> dict[str, Any]:
    return {
        "usecase": "flights",
        "model": "flight_delay",
        "kind": kind,
        "version": version,
        "champion_before": before,
        "champion_after": after,
        "effective_at": when,
        "actor": "the gate",
        "reason": "<b>because</b>",
        "evidence": {"gate": {"reasons": []}},
    }


def test_champion_at_a_time_follows_promotions_refusals_and_rollbacks(home, flights) -> None:
    store = MetadataStore(home)
    assert champion_at(home, flights, at(5)) is None
    store.record_model_event(event("promoted", "1", None, "1", at(2)))
    store.record_model_event(event("refused", "2", "1", "1", at(9)))
    store.record_model_event(event("promoted", "3", "1", "3", at(16)))
    store.record_model_event(event("rolled_back", "1", "3", "1", at(20)))
    answers = {d: champion_at(home, flights, at(d)) for d in (1, 2, 10, 16, 19, 21)}
    assert answers[1] is None
    assert {d: e.champion_after for d, e in answers.items() if e} == {
        2: "1",
        10: "1",
        16: "3",
        19: "3",
        21: "1",
    }
    assert answers[21].kind == "rolled_back"
    assert [e.kind for e in history(home, flights)] == [
        "promoted",
        "refused",
        "promoted",
        "rolled_back",
    ]
    # A naive time is read as UTC.
    assert champion_at(home, flights, datetime(2013, 2, 17)).champion_after == "3"


def test_evidence_page_escapes_what_it_shows() -> None:
    page = render_evidence(
        ModelEvent(id=1, recorded_at=at(3), **event("promoted", "1", None, "1", at(2)))
    )
    assert "&lt;b&gt;because&lt;/b&gt;" in page and "<b>because</b>" not in page


def test_model_references(flights) -> None:
    name = flights.training.model_name
    assert parse_ref("models:/m@champion", flights) == ("m", "champion", None)
    assert parse_ref("models:/m/12", flights) == ("m", None, "12")
    assert parse_ref("@previous", flights) == (name, "previous", None)
    assert parse_ref("7", flights) == (name, None, "7")
    with pytest.raises(LineageError, match="models:/<name>@<alias>"):
        parse_ref("runs:/abc/model", flights)


def test_broken_links_are_found_under_ok_ones_and_marked() -> None:
    chain = Link(
        kind="model version",
        ref="models:/m/1",
        links=[
            Link(
                kind="training set",
                ref="d",
                links=[
                    Link(
                        kind="feature-pipeline run",
                        ref="2013-01-03",
                        status="broken",
                        problem="gone",
                    )
                ],
            ),
            Link(kind="feature view", ref="v@1", status="changed"),
        ],
    )
    assert [b.ref for b in chain.broken()] == ["2013-01-03"]
    text = render_text(chain)
    assert text[0] == "✓ model version: models:/m/1"
    assert "    ✗ feature-pipeline run: 2013-01-03  (gone)" in text
    assert "  ~ feature view: v@1" in text
