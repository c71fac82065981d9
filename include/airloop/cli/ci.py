"""``airloop ci``: model CI for a change, as a pull request's job or a person before pushing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from airloop.cli.common import EndOpt, IntervalsOpt, StartOpt, app, moment


@app.command()
def ci(
    base: Annotated[
        str, typer.Option(help="The ref the change is compared with (its merge base with HEAD)")
    ] = "main",
    start: StartOpt = None,
    end: EndOpt = None,
    intervals: IntervalsOpt = None,
    work: Annotated[
        Path | None,
        typer.Option(
            help="Where the check's homes live (default: <AIRLOOP_HOME>/ci); the"
            " base's is kept and reused while its use case and the engine are the same"
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Folder for report.md, .html and .json (default: <work>/report)"),
    ] = None,
    contract_change: Annotated[
        str | None,
        typer.Option(help="Why this change breaks the serving contract on purpose (recorded)"),
    ] = None,
    registered: Annotated[
        bool,
        typer.Option(
            help="Compare with the champion registered in the stores of AIRLOOP_HOME (or the"
            " production profile's), on rows of its offline store; the candidate is built from"
            " its landing zone. Default: the base trains its own champion from the replay"
        ),
    ] = False,
    skip_unaffected: Annotated[
        bool,
        typer.Option(
            help="Exit 0 at once when no file that can change the model changed (docs, tests)"
        ),
    ] = False,
) -> None:
    """Train a candidate from this tree and the base's champion on the same recent window,
    compare them on the same rows with the use case's gate, check the serving contract;
    write the report and exit 1 when the gate refuses or the contract breaks.

    The window defaults to the use case's first champion's (replay.first_window) at the end of
    its replay; --start/--end/--intervals choose another.
    """
    from airloop.ci.report import markdown, verdict, write_reports
    from airloop.ci.run import changes_of, run_ci
    from airloop.settings import get_settings

    settings = get_settings()
    if skip_unaffected and not changes_of(settings.usecase, base).affects_model:
        say(f"airloop ci: nothing that can change the model changed against {base}; skipped\n")
        return
    folder = work or settings.home / "ci"
    result = run_ci(
        settings.usecase,
        base,
        folder,
        moment(start, "--start") if start else None,
        moment(end, "--end") if end else None,
        intervals,
        contract_change,
        registered=settings if registered else None,
    )
    result = result.model_copy(
        update={"reports": write_reports(result, report or folder / "report")}
    )
    say(markdown(result))
    typer.echo(f"airloop ci: {verdict(result)}; report: {result.reports['html']}", err=True)
    if not result.passed:
        raise typer.Exit(1)


def say(text: str) -> None:
    """Print, and add to the job's summary under GitHub Actions (shown on the job's page)."""
    typer.echo(text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with Path(summary).open("a", encoding="utf-8") as f:
            f.write(text)
