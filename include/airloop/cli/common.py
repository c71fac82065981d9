"""What every ``airloop`` command shares: the app, the active use case, the window options."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

import typer
from pydantic import ValidationError

from airloop.settings import Settings, SettingsError, get_settings
from airloop.usecase import UseCase, load_usecase

app = typer.Typer(
    help="The airloop command: one entry point per stage, for shells, notebooks and containers.",
    no_args_is_help=True,
    add_completion=False,
)

StartOpt = Annotated[
    str | None, typer.Option(help="First day (YYYY-MM-DD); default: the use case's replay start")
]
EndOpt = Annotated[
    str | None, typer.Option(help="Day after the last one (exclusive); default: replay end")
]
DaysOpt = Annotated[int | None, typer.Option(help="Number of days from --start, instead of --end")]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile", help="embedded or production (default: AIRLOOP_PROFILE, else embedded)"
    ),
]
DEMO_DAYS = 21  # days served and monitored after the first champion


def context(profile: str | None = None) -> tuple[Settings, UseCase]:
    """The settings from the environment (in ``profile`` when given) and their use case."""
    settings = get_settings()
    if profile is not None and profile != settings.profile:
        settings = in_profile(settings, profile)
    return settings, load_usecase(settings.usecase)


def in_profile(settings: Settings, profile: str) -> Settings:
    """The same settings in another profile, validated (production refuses what it lacks)."""
    if profile not in ("embedded", "production"):
        raise typer.BadParameter(f"--profile {profile!r}: choose embedded or production")
    try:
        return Settings(**{**dict(settings), "profile": profile})
    except ValidationError as exc:
        problems = "\n".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise SettingsError(problems) from None


def window(uc: UseCase, start: str | None, end: str | None, days: int | None) -> tuple[date, date]:
    """The days [first, last) the options ask for, defaulting to the use case's replay."""
    if uc.replay is None and (start is None or (end is None and days is None)):
        raise typer.BadParameter("this use case has no replay window: give --start and --end")
    first = date.fromisoformat(start) if start else uc.replay.start  # type: ignore[union-attr]
    if days is not None:
        last = first + timedelta(days=days)
    else:
        last = date.fromisoformat(end) if end else uc.replay.end  # type: ignore[union-attr]
    if last <= first:
        raise typer.BadParameter(f"the window is empty: {first} .. {last}")
    return first, last


def days_of(first: date, last: date) -> list[date]:
    """Every day of [first, last)."""
    return [first + timedelta(days=i) for i in range((last - first).days)]


def covering(settings: Settings, uc: UseCase, last: date) -> Settings:
    """Settings whose replay end covers ``last``, so the DAGs' end date lets its runs happen."""
    if uc.replay is not None and last > (settings.replay_end or uc.replay.end):
        return settings.model_copy(update={"replay_end": last})
    return settings
