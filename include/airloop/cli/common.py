"""What every ``airloop`` command shares: the app, the active use case, the window options."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

import typer
from pydantic import ValidationError

from airloop.core.periods import Cadence, to_utc
from airloop.settings import Settings, SettingsError, get_settings
from airloop.usecase import UseCase, resolve

app = typer.Typer(
    help="The airloop command: one entry point per stage, for shells, notebooks and containers.",
    no_args_is_help=True,
    add_completion=False,
)

StartOpt = Annotated[
    str | None,
    typer.Option(
        help="The first interval: a moment in it (2013-01-05, 2003-01, 2013-01-05T06);"
        " default: the use case's replay start"
    ),
]
EndOpt = Annotated[
    str | None,
    typer.Option(help="Where the window ends (exclusive, e.g. 2003-07); default: replay end"),
]
IntervalsOpt = Annotated[
    int | None,
    typer.Option(
        "--intervals",
        "--days",
        "-n",
        help="Number of intervals from --start, in the use case's cadence (days for a daily"
        " use case, months for a monthly one), instead of --end",
    ),
]
DaysOpt = IntervalsOpt  # the name older scripts use
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile", help="embedded or production (default: AIRLOOP_PROFILE, else embedded)"
    ),
]
DEMO_DAYS = 14  # days served and monitored after the first champion


def show_version(value: bool) -> None:
    """``airloop --version``: the installed version (pyproject.toml's), then exit."""
    if value:
        from airloop.core.version import airloop_version

        typer.echo(f"airloop {airloop_version()}")
        raise typer.Exit()


@app.callback()
def options(
    usecase: Annotated[
        str | None,
        typer.Option(
            "--usecase",
            help="A built-in use case by name, or the path to a use-case folder or usecase.yaml"
            " (default: AIRLOOP_USECASE, else flights); may also follow the command",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print airloop's version and exit",
            is_eager=True,
            callback=show_version,
        ),
    ] = False,
) -> None:
    """The airloop command: one entry point per stage, for shells, notebooks and containers."""
    if usecase:
        # The environment, not only this process's settings: the servers and Airflow's
        # components it starts must build the same use case.
        os.environ["AIRLOOP_USECASE"] = usecase
        get_settings.cache_clear()


def context(profile: str | None = None) -> tuple[Settings, UseCase]:
    """The settings from the environment (in ``profile`` when given) and their use case."""
    settings = get_settings()
    if profile is not None and profile != settings.profile:
        settings = in_profile(settings, profile)
    usecase, settings = resolve(None, settings)  # settings scoped to it (its serving port)
    return settings, usecase


def in_profile(settings: Settings, profile: str) -> Settings:
    """The same settings in another profile, validated (production refuses what it lacks)."""
    if profile not in ("embedded", "production"):
        raise typer.BadParameter(f"--profile {profile!r}: choose embedded or production")
    try:
        return Settings(**{**dict(settings), "profile": profile})
    except ValidationError as exc:
        problems = "\n".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise SettingsError(problems) from None


@dataclass(frozen=True)
class Window:
    """The data intervals a command acts on, in the use case's cadence, in order."""

    intervals: list[tuple[datetime, datetime]]
    cadence: Cadence

    @property
    def first(self) -> datetime:
        """Where the first interval starts."""
        return self.intervals[0][0]

    @property
    def last(self) -> datetime:
        """Where the last interval ends (exclusive)."""
        return self.intervals[-1][1]

    def __str__(self) -> str:
        n = len(self.intervals)
        return (
            f"{self.cadence.label(self.first)} .. {self.cadence.label(self.last)} (exclusive,"
            f" {n} {self.cadence.name} interval{'s' if n != 1 else ''})"
        )


def moment(text: str, option: str) -> datetime:
    """A point in time from the command line: ``2013-01-05``, ``2003-01``, ISO 8601."""
    try:
        return to_utc(text)
    except (ValueError, TypeError):
        raise typer.BadParameter(
            f"{option} {text!r}: expected a date or time such as 2013-01-05, 2003-01 or"
            " 2013-01-05T06:00"
        ) from None


def window(uc: UseCase, start: str | None, end: str | None, count: int | None) -> Window:
    """The intervals the options ask for, in the use case's cadence, defaulting to its replay."""
    if uc.replay is None and (start is None or (end is None and count is None)):
        raise typer.BadParameter("this use case has no replay window: give --start and --end")
    cadence = uc.cadence
    first = moment(start, "--start") if start else to_utc(uc.replay.start)  # type: ignore[union-attr]
    last = first
    if count is not None:
        intervals = cadence.count(first, count)
    else:
        last = moment(end, "--end") if end else to_utc(uc.replay.end)  # type: ignore[union-attr]
        intervals = cadence.intervals(first, last)
    if not intervals:
        raise typer.BadParameter(
            f"the window is empty: {cadence.label(first)} .. {cadence.label(last)}"
            f" holds no {cadence.name} interval"
        )
    return Window(intervals, cadence)


def covering(settings: Settings, uc: UseCase, last: datetime) -> Settings:
    """Settings whose replay end covers ``last``, so the DAGs' end date lets its runs happen."""
    end = to_utc(settings.replay_end or uc.replay.end) if uc.replay is not None else None
    if end is not None and last > end:
        # replay_end is a day (exclusive): the one after an end that falls within a day
        day_after = (last + timedelta(days=1) - timedelta(microseconds=1)).date()
        return settings.model_copy(update={"replay_end": day_after})
    return settings
