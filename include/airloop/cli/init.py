"""``airloop init``: from a CSV or parquet file to a use-case folder the engine can run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from airloop.cli.common import app, context


@app.command()
def init(
    name: Annotated[str, typer.Argument(help="The use case's name: lowercase, digits and '_'")],
    data: Annotated[
        Path | None, typer.Option(help="The data: a CSV (optionally compressed) or parquet")
    ] = None,
    entity: Annotated[
        str | None, typer.Option(help="What features are kept per: a column, or several as A,B")
    ] = None,
    timestamp: Annotated[
        str | None,
        typer.Option(help="When each row happened: a column, or year+month[+day[+hour]] columns"),
    ] = None,
    target: Annotated[str | None, typer.Option(help="The column to predict")] = None,
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
    ci: Annotated[
        bool,
        typer.Option(
            "--ci",
            help="Also write the use case's pipeline for its repository: a GitHub Actions"
            " workflow (check, airloop ci, deploy) and a Dockerfile; alone, for an existing"
            " folder",
        ),
    ] = False,
) -> None:
    """Profile the data and write a use case for it: usecase.yaml, transforms.py, README.md,
    profile.html and profile.json. Nothing is written when the data cannot make a use case.
    With --ci, the pipeline of its repository too (with no --data: for an existing folder)."""
    from airloop.initiation import InitError, InitOptions, display_path, init_usecase

    if task not in (None, "classification", "regression"):
        raise InitError(f"--task {task!r}: choose classification or regression")
    folder = into or Path(name)
    if ci and data is None:
        write_pipeline(name, folder)
        return
    missing = [
        option
        for option, value in (
            ("--data", data),
            ("--entity", entity),
            ("--timestamp", timestamp),
            ("--target", target),
        )
        if value is None
    ]
    if missing:
        raise typer.BadParameter(
            f"missing {', '.join(missing)}: airloop init profiles a table into a use case"
            " (or, with --ci alone, writes the pipeline of an existing use-case folder)"
        )
    assert data is not None and entity is not None  # nosec B101 # for mypy: checked above
    assert timestamp is not None and target is not None  # nosec B101
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
    if ci:
        write_pipeline(name, result.folder)


def write_pipeline(name: str, folder: Path) -> None:
    """The use case's workflow and Dockerfile (airloop.initiation.workflow), and what to set."""
    from airloop.core.version import airloop_version
    from airloop.initiation import InitError
    from airloop.initiation.workflow import write_workflow

    if not (folder / "usecase.yaml").is_file():
        raise InitError(
            f"{folder} holds no usecase.yaml: give the use case's folder (--into), or --data"
            " and the other options to write one first"
        )
    for path in write_workflow(name, folder, airloop_version()):
        typer.echo(f"wrote {path}")
    typer.echo(
        "set, in the repository's settings: the variable AIRLOOP_IMAGE (your airloop image),"
        " AIRLOOP_DEPLOY (image or folder) and, for image, AIRLOOP_REGISTRY and the secrets"
        " REGISTRY_USER and REGISTRY_PASSWORD; for folder, AIRLOOP_USECASE_DIR"
        " (docs/guides/model-ci.md)"
    )


@app.command()
def check() -> None:
    """Validate the use case: its file, and its Feast definitions applied to a scratch
    registry; exit 1 with the problems named when either fails."""
    import tempfile

    from airloop.ci.homes import home_settings
    from airloop.features.store import apply_definitions

    settings, uc = context()
    with tempfile.TemporaryDirectory(prefix="airloop-check-") as tmp:
        apply_definitions(home_settings(Path(tmp), settings.usecase), uc)
    typer.echo(
        f"use case {uc.name!r} is valid: {len(uc.sources)} sources,"
        f" {len(uc.feature_views)} feature views, {len(uc.model_inputs)} model inputs"
    )
