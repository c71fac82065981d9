"""``airloop ci`` from start to verdict: the changed files, both sides trained on the same
window in homes of their own, the comparison on the same rows, the contract, the report."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

from airloop.ci.changes import (
    Changes,
    CiSetupError,
    base_usecase_folder,
    changed_files,
    checkout_root,
    relative_folder,
)
from airloop.ci.compare import Comparison, compare, held_out_rows, load_scorer
from airloop.ci.contract import ContractCheck, check_contract
from airloop.ci.homes import (
    BaseSide,
    CiWindow,
    base_key,
    candidate_folder,
    ci_window,
    fresh_home,
    held_span,
    home_settings,
    keep_base,
    kept_base,
    prune_bases,
    seed_home,
)
from airloop.core.errors import PermanentError
from airloop.core.records import Record
from airloop.registry.models import CHAMPION, alias_version, feature_view_versions
from airloop.registry.tracking import configure
from airloop.settings import Settings
from airloop.training.dataset import TrainingSet, retrieve_training_set
from airloop.training.pipeline import run_training
from airloop.usecase import UseCase, load_usecase

log = logging.getLogger(__name__)


class ViewChange(Record):
    """A feature view of the feature service, by its definition digest on each side."""

    name: str
    base: str | None
    candidate: str | None
    status: str  # unchanged, changed, added, removed


class CiResult(Record):
    """Everything the check found; the reports are written from it."""

    usecase: str
    changes: Changes
    window: CiWindow
    base_home: str | None
    candidate_home: str
    candidate_version: str
    comparison: Comparison
    contract: ContractCheck
    views: list[ViewChange] = []
    reports: dict[str, str] = {}

    @property
    def passed(self) -> bool:
        """The gate let the candidate through and the contract holds."""
        return self.comparison.decision.promote and not self.contract.broken


def trained_side(
    settings: Settings,
    usecase: UseCase,
    window: CiWindow,
    role: str,
    landed: Path | None = None,
) -> tuple[str, TrainingSet]:
    """Seed a home and run the training pipeline (D) in it; its version serves as champion
    there (set by hand when the use case's absolute rule refused it: the check judges it)."""
    seed_home(settings, usecase, window, landed)
    run = run_training(
        window.start, window.end, None, {"trigger": "airloop ci", "role": role}, usecase, settings
    )
    version = run.registered.version
    if not run.promotion.promoted:
        configure(settings).set_registered_model_alias(
            usecase.training.model_name, CHAMPION, version
        )
    return version, run.training_set


def base_side(work: Path, folder: Path, usecase: UseCase, window: CiWindow) -> BaseSide:
    """The base's champion, from a home kept by an earlier check when nothing it depends on
    changed; else from a home built now (and kept for the next check)."""
    key = base_key(folder, window)
    home = work / f"base-{key}"
    kept = kept_base(home)
    if kept is not None:
        log.info("the base's home %s is reused (same use case, window and engine)", home)
        return kept
    prune_bases(work, key)
    settings = home_settings(fresh_home(home), str(folder / "usecase.yaml"))
    version, training_set = trained_side(settings, usecase, window, "champion")
    side = BaseSide(home=str(home), champion_version=version, training_set=training_set)
    keep_base(side)
    return side


def registered_side(settings: Settings, usecase: UseCase, window: CiWindow) -> BaseSide:
    """The champion registered in a home in use (its settings: AIRLOOP_HOME, or the production
    profile's servers), with the window's rows from that home's offline store."""
    name = usecase.training.model_name
    version = alias_version(settings, name)
    if version is None:
        raise PermanentError(
            f"no champion of {name!r} is registered in {settings.tracking_uri}: train one there"
            " first (the model_training DAG, or airloop train), or drop --registered"
        )
    lo, hi = window.bounds
    rows = retrieve_training_set(settings, usecase, lo, hi)
    return BaseSide(home=str(settings.home), champion_version=version, training_set=rows)


def view_changes(
    base: tuple[Settings, UseCase] | None, candidate: tuple[Settings, UseCase]
) -> list[ViewChange]:
    """The service's views on each side, by definition digest (what a model version pins)."""
    old: dict[str, str] = json.loads(feature_view_versions(*base, located=False)) if base else {}
    new: dict[str, str] = json.loads(feature_view_versions(*candidate, located=False))
    changes = []
    for name in sorted(set(old) | set(new)):
        was, now = old.get(name), new.get(name)
        status = (
            "added"
            if was is None
            else "removed"
            if now is None
            else "unchanged"
            if was == now
            else "changed"
        )
        changes.append(ViewChange(name=name, base=was, candidate=now, status=status))
    return changes


def changes_of(usecase_ref: str, base: str, checkout: Path | None = None) -> Changes:
    """What changed against ``base`` for this use case (the first thing :func:`run_ci` does)."""
    usecase = load_usecase(usecase_ref)
    if usecase.folder is None:
        raise CiSetupError(f"use case {usecase_ref!r} has no folder: give its usecase.yaml")
    root = checkout_root(checkout or Path.cwd())
    return changed_files(root, base, relative_folder(root, usecase.folder))


def run_ci(
    usecase_ref: str,
    base: str,
    work: Path,
    start: datetime | None = None,
    end: datetime | None = None,
    intervals: int | None = None,
    contract_change: str | None = None,
    checkout: Path | None = None,
    registered: Settings | None = None,
) -> CiResult:
    """The whole check; the caller writes the reports and turns :attr:`CiResult.passed` into
    the exit code.

    With ``registered`` (the settings of a home in use), the champion is the one registered
    there and its rows come from that home's offline store; the candidate's home is built
    from that home's landing zone over the same window. Without, both sides are trained in
    homes of their own from the use case's replay.
    """
    candidate_uc = load_usecase(usecase_ref)
    working = candidate_uc.folder
    if working is None:  # load_usecase sets it for every use case read from a file
        raise CiSetupError(f"use case {usecase_ref!r} has no folder: give its usecase.yaml")
    root = checkout_root(checkout or Path.cwd())
    relative = relative_folder(root, working)
    changes = changed_files(root, base, relative)
    held = held_span(registered, candidate_uc) if registered is not None else None
    window = ci_window(candidate_uc, start, end, intervals, held)
    work.mkdir(parents=True, exist_ok=True)
    base_folder = (
        base_usecase_folder(root, changes.merge_base, relative, work / "usecase-at-base")
        if relative is not None
        else working  # a use case outside the checkout: only the engine can have changed
    )
    base_uc = load_usecase(str(base_folder / "usecase.yaml")) if base_folder else None
    base_settings: Settings | None = None
    kept: BaseSide | None = None
    if registered is not None:
        # What the home in use runs is described by the base (else by the change itself).
        base_uc = base_uc or candidate_uc
        base_settings = registered
        kept = registered_side(registered, base_uc, window)
    elif base_folder is not None and base_uc is not None:
        kept = base_side(work, base_folder, base_uc, window)
        base_settings = home_settings(Path(kept.home), str(base_folder / "usecase.yaml"))
    candidate_home = candidate_folder(work)
    settings = home_settings(candidate_home, str(working / "usecase.yaml"))
    landed = registered.landing_root(candidate_uc.name) if registered is not None else None
    version, candidate_set = trained_side(settings, candidate_uc, window, "candidate", landed)
    champion = None
    if kept is not None and base_uc is not None and base_settings is not None:
        champion = load_scorer(
            base_settings, f"models:/{base_uc.training.model_name}/{kept.champion_version}"
        )
    candidate = load_scorer(settings, f"models:/{candidate_uc.training.model_name}/{version}")
    champion_set = kept.training_set if kept is not None else candidate_set
    theirs_rows, rows = held_out_rows(candidate_uc, champion_set, candidate_set)
    comparison = compare(
        candidate_uc,
        candidate,
        rows,
        champion,
        theirs_rows,
        kept.champion_version if kept is not None else None,
    )
    contract = check_contract(
        settings, base_uc, candidate_uc, champion, candidate, rows, contract_change
    )
    return CiResult(
        usecase=candidate_uc.name,
        changes=changes,
        window=window,
        base_home=kept.home if kept is not None else None,
        candidate_home=str(candidate_home),
        candidate_version=version,
        comparison=comparison,
        contract=contract,
        views=view_changes(
            (base_settings, base_uc) if base_settings and base_uc else None,
            (settings, candidate_uc),
        ),
    )
