"""Commands for serving: serve the champion, roll it back, score intervals in batch."""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer

from airloop.cli.common import EndOpt, IntervalsOpt, StartOpt, app, context, window


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            help="Port (default: AIRLOOP_SERVING_PORT, 8300; the next one for each next use case"
            " of AIRLOOP_USECASES)"
        ),
    ] = 0,
    poll: Annotated[float, typer.Option(help="Seconds between checks of the champion alias")] = 5.0,
) -> None:
    """Serve the champion: /v1/predict (with online features), /invocations, /health, /ready, /metrics."""
    settings, uc = context()
    os.environ.update(settings.thread_env())  # before the model's libraries load (below)
    import uvicorn

    from airloop.serving.app import create_app

    uvicorn.run(
        create_app(settings, uc, poll_seconds=poll),
        host=host,
        port=port or settings.usecase_serving_port(),
        log_level="warning",
    )


@app.command()
def rollback(
    reason: Annotated[str, typer.Option(help="Why: recorded on both versions")],
    who: Annotated[
        str | None, typer.Option(help="Who: recorded on both versions (default: your user)")
    ] = None,
) -> None:
    """Put the previous champion back, recording who and why; the service follows the alias."""
    from airloop.registry.models import rollback as roll_back
    from airloop.serving.client import reload_champion, service_alive

    settings, uc = context()
    who = who or getpass.getuser()
    result = roll_back(settings, uc, reason, who)
    if service_alive(settings):
        reload_champion(settings)
    typer.echo(
        f"{result.model}: champion v{result.from_version} → v{result.to_version} ({who}: {reason})"
    )


@app.command()
def score(start: StartOpt = None, end: EndOpt = None, intervals: IntervalsOpt = None) -> None:
    """Batch inference in this process: the champion scores each interval's events (as the DAG does)."""
    from airloop.serving.batch import score_interval

    settings, uc = context()
    for lo, hi in window(uc, start, end, intervals).intervals:
        scores = score_interval(lo, hi, uc, settings)
        typer.echo(
            f"{uc.cadence.label(lo)}: {scores.rows} rows by v{scores.model_version} → {scores.uri}"
        )
