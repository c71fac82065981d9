"""``airloop lineage`` and ``airloop history``: what made a model, and which one served when."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from airloop.cli.common import app, context

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]


@app.command()
def lineage(
    ref: Annotated[
        str,
        typer.Argument(
            help="models:/<name>@<alias>, models:/<name>/<version>, @<alias> or a version"
        ),
    ] = "@champion",
    as_json: JsonOpt = False,
) -> None:
    """Walk a model version back to its runs, features, data and code; exit 1 if a link broke."""
    from airloop.lineage.chain import LineageError, model_lineage, render_text

    settings, uc = context()
    try:
        chain = model_lineage(settings, uc, ref)
    except LineageError as exc:
        raise typer.BadParameter(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(chain.to_dict(), indent=2))
    else:
        typer.echo("\n".join(render_text(chain)))
    broken = chain.broken()
    if broken:
        if not as_json:
            typer.echo(f"{len(broken)} broken link(s)", err=True)
        raise typer.Exit(1)


@app.command()
def history(
    at: Annotated[
        str | None,
        typer.Option(help="A time (ISO 8601, UTC): print only the champion serving then"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every promotion, refusal, rollback and approval of the use case's model, in order."""
    from airloop.registry.evidence import champion_at, version_label
    from airloop.registry.evidence import history as model_history

    settings, uc = context()
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise typer.BadParameter(f"--at {at!r} is not an ISO 8601 time") from None
        event = champion_at(settings, uc, when)
        if as_json:
            typer.echo(json.dumps(event.to_dict() if event else None, indent=2))
        elif event is None:
            typer.echo(f"no champion at {at}")
        else:
            typer.echo(
                f"{version_label(event.champion_after)} was champion at {at}: {event.kind} "
                f"(effective {event.effective_at:%Y-%m-%d %H:%M}) by {event.actor}"
            )
        return
    events = model_history(settings, uc)
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in events], indent=2))
        return
    if not events:
        typer.echo("no decisions yet: train a model (the model_training DAG, or `airloop train`)")
    for e in events:
        typer.echo(
            f"{e.effective_at:%Y-%m-%d %H:%M}  {version_label(e.version):<5} {e.kind:<11} "
            f"champion {version_label(e.champion_before)} → {version_label(e.champion_after)}"
            f"  by {e.actor}: {e.reason}"
        )
