"""From a profiled table to a use-case folder the engine can run: ``airloop init``.

The folder is built beside its destination and renamed into place only once the use case it
holds loads (and its validation gate accepts the file it came from), so a failure leaves
nothing behind. The parts it is made of: :mod:`airloop.initiation.profile` profiles the table,
:mod:`airloop.initiation.plan` chooses the names and sizes, :mod:`airloop.initiation.proposal`
writes ``usecase.yaml``, :mod:`airloop.initiation.example_transform` ``transforms.py``,
:mod:`airloop.initiation.readme` ``README.md`` and :mod:`airloop.initiation.page`
``profile.html``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.core.files import write_json, write_text
from airloop.initiation.example_transform import render_transforms
from airloop.initiation.page import render_html
from airloop.initiation.plan import InitOptions, Plan, make_plan, rank_for_plan
from airloop.initiation.profile import profile_data, read_table
from airloop.initiation.proposal import propose_usecase, render_yaml
from airloop.initiation.readme import example_request, last_event, render_readme, render_request
from airloop.initiation.records import DataProfile, Finding, InitError
from airloop.initiation.selfcheck import loosen, own_file_failures
from airloop.settings import get_settings
from airloop.usecase import UseCase, UseCaseError, load_usecase

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
GENERATED = ("usecase.yaml", "transforms.py", "README.md", "profile.html", "profile.json")


@dataclass(frozen=True)
class InitResult:
    """The folder written and the profile it was proposed from."""

    folder: Path
    files: list[str]
    profile: DataProfile


# -- the whole command ------------------------------------------------------------------------


def init_usecase(options: InitOptions) -> InitResult:
    """Profile the data, propose a use case, and write its folder; nothing on any failure."""
    if not NAME.match(options.name):
        raise InitError(
            f"use case name {options.name!r}: use lowercase letters, digits and '_', "
            "starting with a letter (it is also the Feast project's name)"
        )
    folder = options.folder
    _check_destination(folder, options.force)
    data = options.data.expanduser().absolute()
    frame, fmt = read_table(data)
    profile = profile_data(
        frame, data, fmt, options.entity, options.timestamp, options.target,
        options.task, options.threshold, options.timestamp_format,
    )  # fmt: skip
    plan = make_plan(profile, options)
    ranking = rank_for_plan(frame, profile, plan)
    profile = profile.model_copy(update={"relevance": ranking})
    plan = replace(plan, measurements=[r.column for r in ranking])
    raw = propose_usecase(profile, plan, folder)
    files = {
        "usecase.yaml": render_yaml(raw, profile, plan),
        "transforms.py": render_transforms(profile, plan),
        "profile.html": render_html(profile),
    }
    created = _missing_parents(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.init-"))
    try:
        for name, text in files.items():
            write_text(staging / name, text)
        write_json(staging / "profile.json", profile.to_dict())
        try:
            usecase = load_usecase(str(staging / "usecase.yaml"))
        except UseCaseError as exc:
            raise InitError(
                f"the proposed use case does not load (a bug in airloop init; please report "
                f"it with the data's profile):\n{exc}"
            ) from None
        usecase, profile = _hold_for_own_file(usecase, frame, raw, profile, plan, staging)
        last = last_event(usecase, frame)
        example = example_request(usecase, last)
        if example is not None:  # the service's /docs page shows it; it must load as before
            raw["events"]["example"] = example
            write_text(staging / "usecase.yaml", render_yaml(raw, profile, plan))
            usecase = load_usecase(str(staging / "usecase.yaml"))
        port = get_settings().serving_port
        readme = render_readme(profile, plan, folder, usecase) + render_request(usecase, last, port)
        write_text(staging / "README.md", readme)
        _as_umask_allows(staging)
        _commit(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for parent in created:
            shutil.rmtree(parent, ignore_errors=True)
        raise
    return InitResult(folder=folder, files=list(GENERATED), profile=profile)


def _hold_for_own_file(
    usecase: UseCase,
    frame: pd.DataFrame,
    raw: dict[str, Any],
    profile: DataProfile,
    plan: Plan,
    staging: Path,
) -> tuple[UseCase, DataProfile]:
    """The proposal, checked against the file it came from (:mod:`selfcheck`): a rule the
    file breaks is relaxed and a finding says so; one that cannot be is refused here, before
    the replay would quarantine the user's own data."""
    failures = own_file_failures(usecase, frame)
    if not failures:
        return usecase, profile
    relaxed = loosen(raw, plan.source, failures)
    if relaxed:
        found = Finding(
            kind="rules_relaxed",
            message="The file itself broke some of the rules observed in it, so they were "
            "relaxed: " + "; ".join(relaxed),
        )
        profile = profile.model_copy(update={"findings": [*profile.findings, found]})
        write_text(staging / "usecase.yaml", render_yaml(raw, profile, plan))
        write_text(staging / "profile.html", render_html(profile))
        write_json(staging / "profile.json", profile.to_dict())
        usecase = load_usecase(str(staging / "usecase.yaml"))
        failures = own_file_failures(usecase, frame)
    if failures:
        reasons = "\n".join(f"  - {f.reason}" for f in failures[:10])
        raise InitError(
            "the proposed validation gate refuses the file it was made from (a bug in "
            f"airloop init; please report it with the data's profile):\n{reasons}"
        )
    return usecase, profile


def _check_destination(folder: Path, force: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise InitError(f"{folder} exists and is not a folder: choose another --into")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise InitError(
            f"{folder} exists and is not empty: choose another --into, or --force to "
            f"overwrite the generated files in it ({', '.join(GENERATED)}; other files stay)"
        )


def _missing_parents(folder: Path) -> list[Path]:
    """The outermost folder above ``folder`` that does not exist yet (to remove on failure)."""
    missing = [p for p in folder.parents if not p.exists()]
    return missing[-1:]


def _as_umask_allows(staging: Path) -> None:
    """Temporary folders and atomic writes are private (0700, 0600); a use-case folder is an
    ordinary one, with the permissions the user's umask gives."""
    mask = os.umask(0)
    os.umask(mask)
    staging.chmod(0o777 & ~mask)
    for path in staging.iterdir():
        path.chmod(0o666 & ~mask)


def _commit(staging: Path, folder: Path) -> None:
    """Put the staged folder in place: one rename, or file by file into an existing folder."""
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    if not folder.exists():
        os.replace(staging, folder)
        return
    for path in staging.iterdir():
        os.replace(path, folder / path.name)
    staging.rmdir()
