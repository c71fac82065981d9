"""The serving contract: what a caller of the service would see change, and the candidate's
service tried in-process on its own home (the example request, ``/invocations`` against the
batch path's scores on the same rows).

Callers of ``/v1/predict`` send the request fields; callers of ``/invocations`` send the
model's inputs (its signature). A request field removed, added or retyped breaks the first
(its body refuses unknown fields); an input added or retyped breaks the second (an input the
model no longer reads is ignored there, so its removal is reported, not held against it). A change that means to break either says so
(``airloop ci --contract-change "why"``) and the report carries the reason.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from airloop.ci.compare import Scorer
from airloop.core.records import Record
from airloop.serving.invocations import request_rules
from airloop.serving.schema import FieldRule
from airloop.settings import Settings
from airloop.training.models import model_inputs
from airloop.usecase import UseCase

PARITY_ROWS = 50  # held-out rows sent to /invocations and scored in-process
TOLERANCE = 1e-9


class ContractCheck(Record):
    """What changed for callers, and whether the candidate's service answered as it should."""

    request_removed: list[str] = []
    request_added: list[str] = []
    request_retyped: list[str] = []  # "field: old kind → new kind"
    inputs_removed: list[str] = []
    inputs_added: list[str] = []
    inputs_retyped: list[str] = []
    example_score: float | None = None
    problems: list[str] = []  # the service failed a check: always breaks
    parity_rows: int = 0
    parity_max_difference: float | None = None
    accepted: str | None = None  # the reason a change gave for breaking the contract

    @property
    def changes(self) -> list[str]:
        """Each change a caller must follow, in words."""
        said = []
        for what, names in (
            ("/v1/predict request field removed", self.request_removed),
            ("/v1/predict request field added", self.request_added),
            ("/v1/predict request field retyped", self.request_retyped),
            ("/invocations input added", self.inputs_added),
            ("/invocations input retyped", self.inputs_retyped),
        ):
            said += [f"{what}: {name}" for name in names]
        return said

    @property
    def broken(self) -> bool:
        """Whether the check fails: the service misbehaved, or callers must change unasked."""
        return bool(self.problems) or (bool(self.changes) and not self.accepted)


def _kind(rule: FieldRule) -> str:
    return rule.kind + (" or null" if rule.nullable else "")


def field_changes(base: UseCase | None, candidate: UseCase) -> dict[str, list[str]]:
    """Request fields removed, added and retyped between the base's use case and the candidate's."""
    if base is None:
        return {"request_removed": [], "request_added": [], "request_retyped": []}
    old, new = request_rules(base), request_rules(candidate)
    return {
        "request_removed": sorted(set(old) - set(new)),
        "request_added": sorted(set(new) - set(old)),
        "request_retyped": [
            f"{name}: {_kind(old[name])} → {_kind(new[name])}"
            for name in sorted(set(old) & set(new))
            if _kind(old[name]) != _kind(new[name])
        ],
    }


def input_changes(champion: Scorer | None, candidate: Scorer) -> dict[str, list[str]]:
    """The model's inputs (its MLflow signature) removed, added and retyped."""
    if champion is None:
        return {"inputs_removed": [], "inputs_added": [], "inputs_retyped": []}
    old, new = champion.signature, candidate.signature
    return {
        "inputs_removed": sorted(set(old) - set(new)),
        "inputs_added": sorted(set(new) - set(old)),
        "inputs_retyped": [
            f"{name}: {old[name]} → {new[name]}"
            for name in sorted(set(old) & set(new))
            if old[name] != new[name]
        ],
    }


def try_service(
    settings: Settings, usecase: UseCase, candidate: Scorer, rows: pd.DataFrame
) -> dict[str, Any]:
    """The candidate home's service, in-process: the use case's example through ``/v1/predict``
    (online features from the home's online store), and ``/invocations`` on held-out rows
    against the same rows scored in-process (the batch path)."""
    with warnings.catch_warnings():  # starlette would rather use httpx2; httpx serves here
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from airloop.serving.app import create_app
    from airloop.serving.client import serving_token

    token = serving_token(settings)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    problems: list[str] = []
    found: dict[str, Any] = {"problems": problems}
    app = create_app(settings, usecase, poll_seconds=3600.0)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        ready = client.get("/ready", headers=headers)
        if ready.status_code != 200:
            problems.append(f"/ready answered {ready.status_code}: {ready.text[:300]}")
            return found
        example = usecase.events.example
        if example is None:
            problems.append(
                "the use case declares no events.example: nothing to try /v1/predict with"
            )
        else:
            answer = client.post("/v1/predict", json={"instances": [example]}, headers=headers)
            if answer.status_code != 200:
                problems.append(
                    f"/v1/predict answered {answer.status_code} to the use case's example:"
                    f" {answer.text[:300]}"
                )
            else:
                found["example_score"] = float(answer.json()["predictions"][0]["score"])
        sample = model_inputs(rows.head(PARITY_ROWS), candidate.columns)
        expected = np.asarray(candidate.raw.predict(sample), dtype=float)
        payload = sample.astype(object).where(sample.notna(), None)
        body = {"dataframe_split": payload.to_dict(orient="split", index=False)}
        answer = client.post("/invocations", json=body, headers=headers)
        if answer.status_code != 200:
            problems.append(f"/invocations answered {answer.status_code}: {answer.text[:300]}")
            return found
        served = np.asarray(answer.json()["predictions"], dtype=float)
        found["parity_rows"] = len(sample)
        if served.shape != expected.shape:
            problems.append(
                f"/invocations answered {served.shape[0]} predictions for {len(sample)} rows"
            )
            return found
        worst = float(np.max(np.abs(served - expected))) if len(sample) else 0.0
        found["parity_max_difference"] = worst
        if worst > TOLERANCE:
            problems.append(
                f"/invocations and in-process scoring differ on the same {len(sample)} rows"
                f" (by up to {worst:.3g})"
            )
    return found


def check_contract(
    settings: Settings,
    base: UseCase | None,
    candidate_usecase: UseCase,
    champion: Scorer | None,
    candidate: Scorer,
    rows: pd.DataFrame,
    accepted: str | None,
) -> ContractCheck:
    """Every part of the contract check (see the module's docstring)."""
    return ContractCheck(
        **field_changes(base, candidate_usecase),
        **input_changes(champion, candidate),
        **try_service(settings, candidate_usecase, candidate, rows),
        accepted=accepted,
    )
