"""``airloop init``: from a CSV or parquet file to a use-case folder the engine can run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from airloop.cli.common import app


@app.command()
def init(
    name: Annotated[str, typer.Argument(help="The use case's name: lowercase, digits and '_'")],
    data: Annotated[Path, typer.Option(help="The data: a CSV (optionally compressed) or parquet")],
    entity: Annotated[
        str, typer.Option(help="What features are kept per: a column, or several as A,B")
    ],
    timestamp: Annotated[
        str,
        typer.Option(help="When each row happened: a column, or year+month[+day[+hour]] columns"),
    ],
    target: Annotated[str, typer.Option(help="The column to predict")],
    task: Annotated[
        str | None,
        typer.Option(help="classification or regression (default: from the target's values)"),
    ] = None,
    label_delay: Annotated[
        str | None,
        typer.Option(
            help="How long after a row its target is known: 6h, 2d, 1mo (default: one interval)"
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="Classification of a number: the class is TARGET > X"),
    ] = None,
    timestamp_format: Annotated[
        str | None,
        typer.Option(
            help="The strftime form of a timestamp not in ISO 8601, e.g. '%d/%m/%Y %H:%M' "
            "(default: ISO 8601, or the one common form that reads every value)"
        ),
    ] = None,
    into: Annotated[Path | None, typer.Option(help="The folder to write (default: ./NAME)")] = None,
    force: Annotated[
        bool,
        typer.Option(help="Overwrite the generated files of an existing folder (others stay)"),
    ] = False,
) -> None:
    """Profile the data and write a use case for it: usecase.yaml, transforms.py, README.md,
    profile.html and profile.json. Nothing is written when the data cannot make a use case."""
    from airloop.initiation import InitError, InitOptions, display_path, init_usecase

    if task not in (None, "classification", "regression"):
        raise InitError(f"--task {task!r}: choose classification or regression")
    result = init_usecase(
        InitOptions(
            name=name,
            data=data,
            entity=[c.strip() for c in entity.split(",") if c.strip()],
            timestamp=timestamp,
            target=target,
            task=task,  # type: ignore[arg-type]
            label_delay=label_delay,
            threshold=threshold,
            timestamp_format=timestamp_format,
            into=into,
            force=force,
        )
    )
    profile, shown = result.profile, display_path(result.folder)
    t, target_profile = profile.time, profile.target
    typer.echo(f"wrote {shown}/: {', '.join(result.files)}")
    typer.echo(
        f"  {profile.rows} rows, {t.first[:10]} .. {t.last[:10]}, {t.cadence} ({t.schedule}); "
        f"{profile.entity.count} values of {'+'.join(profile.entity.columns)}; "
        f"target {target_profile.column} ({target_profile.task}, "
        f"{target_profile.labelled} labelled)"
    )
    if profile.findings:
        typer.echo("findings:")
        for finding in profile.findings:
            typer.echo(f"  {finding.severity}: {finding.message}")
    typer.echo("next:")
    typer.echo(f"  read {shown}/profile.html, and edit {shown}/usecase.yaml if needed")
    typer.echo(f"  airloop demo --usecase {shown}")
