"""Deploy in (D): the running service takes the new champion, then a smoke test on held-out rows.

The service's answers on the test slice must equal the registered model's answers computed
in-process. Anything else rolls the champion back to ``previous`` and fails the run with why.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from airloop.core.errors import PermanentError
from airloop.core.polling import WaitTimeout, wait_until
from airloop.core.records import Record
from airloop.registry.models import Promotion, rollback
from airloop.registry.tracking import configure
from airloop.serving.client import call_service, reload_champion, service_alive
from airloop.settings import Settings
from airloop.training.dataset import TrainingSet, load_training_set, split_by_time
from airloop.training.models import model_inputs
from airloop.usecase import UseCase, resolve

SMOKE_TEST_ROWS = 50


class DeployError(PermanentError, RuntimeError):
    """The service did not take or did not reproduce the new champion; it was rolled back."""


class Deployment(Record):
    """What the deploy step did: the version the service now serves, or why it did nothing."""

    deployed: bool
    version: str | None = None
    url: str | None = None
    smoke_test_rows: int = 0
    reason: str | None = None


def deploy_model(
    promotion: Promotion,
    training_set: TrainingSet,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> Deployment:
    """Make the service serve the promoted version and prove it answers like the registry's copy."""
    uc, st = resolve(usecase, settings)
    client = configure(st)
    name = uc.training.model_name
    if not promotion.promoted or promotion.champion is None:
        return Deployment(deployed=False, reason="not promoted: the serving champion is unchanged")
    version = promotion.champion
    if not service_alive(st):
        note = f"skipped: no service at {st.serving_url}; it loads v{version} when it starts"
        client.set_model_version_tag(name, version, "airloop.deploy", note)
        return Deployment(deployed=False, version=version, reason=note)
    try:
        wait_for_version(st, version)
        rows = smoke_test(st, uc, version, training_set)
    except Exception as exc:
        reason = f"deploy of v{version} failed: {exc}"
        try:
            rolled = rollback(
                st,
                uc,
                reason,
                who="model_training deploy",
                effective_at=datetime.fromisoformat(training_set.end),
            )
            reload_champion(st)
            reason += f"; champion rolled back to v{rolled.to_version}"
        except Exception as rb_exc:  # the record says what happened either way
            reason += f"; rollback impossible: {rb_exc}"
        client.set_model_version_tag(name, version, "airloop.deploy", reason)
        raise DeployError(reason) from exc
    client.set_model_version_tag(
        name,
        version,
        "airloop.deploy",
        f"ok: {st.serving_url} serves v{version}, smoke test {rows} rows",
    )
    return Deployment(deployed=True, version=version, url=st.serving_url, smoke_test_rows=rows)


def wait_for_version(settings: Settings, version: str, timeout: float = 120.0) -> None:
    """Ask the service to reload until it serves ``version``; its load error ends the wait."""

    def serving() -> bool:
        state = reload_champion(settings)
        if state.get("model") and str(state["model"]["version"]) == version:
            return True
        if state.get("last_model_error"):
            raise DeployError(state["last_model_error"])
        return False

    try:
        wait_until(serving, timeout=timeout, what=f"the service loading v{version}")
    except WaitTimeout as exc:
        raise DeployError(str(exc)) from None


def smoke_test(
    settings: Settings, usecase: UseCase, version: str, training_set: TrainingSet
) -> int:
    """The service's ``/invocations`` on held-out rows against the version scored in-process."""
    import mlflow

    frame = load_training_set(training_set.uri, usecase.training.max_rows)
    _, _, test = split_by_time(
        frame, usecase.training.validation_fraction, usecase.training.test_fraction
    )
    model = mlflow.pyfunc.load_model(f"models:/{usecase.training.model_name}/{version}")
    columns = model.metadata.get_input_schema().input_names()
    sample = model_inputs(test.head(SMOKE_TEST_ROWS), columns)
    expected = np.asarray(model.predict(sample), dtype=float)
    # Exact floats (json writes repr): pandas' to_json rounds to at most 15 digits, and a
    # tree model can turn a difference in the 16th into a different answer.
    payload = sample.astype(object).where(sample.notna(), None).to_dict(orient="split", index=False)
    answer = call_service(settings, "POST", "/invocations", {"dataframe_split": payload})
    served = np.asarray(answer["predictions"], dtype=float)
    if served.shape != expected.shape or not np.allclose(served, expected, rtol=0, atol=1e-9):
        raise DeployError(
            f"the service's answers on {len(sample)} held-out rows differ from v{version}'s"
        )
    return len(sample)
