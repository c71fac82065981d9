"""A prediction log with a torn line (its writer killed in the middle of a batch) is read by
monitoring without failing: the torn line is skipped and counted, every whole line kept."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

WHEN = datetime(2013, 1, 5, 10, tzinfo=UTC)


def records(first: int, count: int) -> list[dict]:
    return [
        {
            "request_id": f"r{i}",
            "index": 0,
            "time": (WHEN + timedelta(seconds=i)).isoformat(),
            "event_id": f"e{i}",
            "event_time": (WHEN + timedelta(seconds=i)).isoformat(),
            "features": {"origin": "EWR", "temp": 20.0 + i},
            "model_version": "3",
            "score": i / 100,
        }
        for i in range(first, first + count)
    ]


def write(root: Path, writer: str, batch: list[dict]) -> Path:
    """Through the service's own writer, as a process with that writer id."""
    from airloop.serving.prediction_log import PredictionLog

    log = PredictionLog(root)
    log.writer = writer
    for record in batch:
        log.append(record)
    log.close()
    return log.path_for(WHEN)


@pytest.mark.parametrize("cut", [1, 40, -2])  # bytes of the torn line that reached the disk
def test_a_torn_line_is_skipped_and_counted_and_every_whole_line_kept(
    tmp_path: Path, flights, caplog: pytest.LogCaptureFixture, cut: int
) -> None:
    from airloop.monitoring.readers import served_frame
    from airloop.settings import Settings

    settings = Settings(home=tmp_path)
    root = settings.prediction_log_dir(flights.name)
    path = write(root, "host-7", records(0, 5))
    # The writer killed in the middle of its next batch: part of a line, no line break.
    torn = json.dumps(records(5, 1)[0])[:cut]
    with path.open("a", encoding="utf-8") as fh:
        fh.write(torn)
    # Started again under the same process id (a container's), it appends to the same file.
    assert write(root, "host-7", records(6, 3)) == path

    with caplog.at_level(logging.WARNING, logger="airloop.serving.prediction_log"):
        served = served_frame(settings, flights, WHEN, WHEN + timedelta(hours=1))
    assert list(served["event_id"]) == [f"e{i}" for i in (0, 1, 2, 3, 4, 6, 7, 8)]
    assert len(path.read_text().splitlines()) == 9  # the torn line is a line of its own
    [warning] = [r.getMessage() for r in caplog.records if "torn" in r.getMessage()]
    assert f"skipped 1 torn line(s) of the prediction log {path} (line 6)" in warning


def test_a_log_whose_last_line_is_whole_gets_no_blank_line(tmp_path: Path) -> None:
    from airloop.serving.prediction_log import read_log

    path = write(tmp_path, "host-7", records(0, 2))
    write(tmp_path, "host-7", records(2, 2))
    assert path.read_text().count("\n") == 4
    assert [r["event_id"] for r in read_log(tmp_path)] == ["e0", "e1", "e2", "e3"]


def test_a_record_written_is_kept_when_its_process_is_killed_at_once(tmp_path: Path) -> None:
    """What the service answered is in the log: a writer process killed (``kill -9``) the moment
    its appends returned, before any sync, leaves every record it wrote, whole."""
    import os
    import signal

    from airloop.serving.prediction_log import PredictionLog, read_log

    pid = os.fork()
    if pid == 0:  # the child: a replica that answers 50 requests, then dies without a word
        try:
            log = PredictionLog(tmp_path, sync_seconds=3600)
            for i in range(50):
                assert log.append_many(records(2 * i, 2)) == 2
            os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert [r["event_id"] for r in read_log(tmp_path)] == [f"e{i}" for i in range(100)]


def test_a_record_that_cannot_be_written_is_counted_and_the_rest_go_on(tmp_path: Path) -> None:
    from airloop.serving.prediction_log import PredictionLog, read_log

    log = PredictionLog(tmp_path)
    (tmp_path / f"date={WHEN:%Y-%m-%d}").write_text("a file where a folder should be")
    assert log.append_many(records(0, 3)) == 0
    assert (log.dropped, log.written) == (3, 0)
    log.root = tmp_path / "elsewhere"
    assert log.append_many(records(3, 2)) == 2
    log.close()
    assert [r["event_id"] for r in read_log(log.root)] == ["e3", "e4"]
