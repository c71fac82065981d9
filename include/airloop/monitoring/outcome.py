"""The end of a retraining: how the training run a request opened ended, recorded on the request."""

from __future__ import annotations

from airloop.core.errors import PermanentError
from airloop.metadata.ledger import FeedbackLedger
from airloop.monitoring.records import TrainingOutcome
from airloop.registry.models import Promotion, Registration
from airloop.serving.deploy import Deployment
from airloop.settings import Settings
from airloop.usecase import UseCase, resolve


class TrainingRunFailed(PermanentError, RuntimeError):
    """A stage of the training run failed; the champion is what it was."""


def training_outcome(
    registered: Registration | None,
    promotion: Promotion | None,
    deployment: Deployment | None,
    dag_run_id: str | None = None,
) -> TrainingOutcome:
    """How a training run ended, from what its register, promote and deploy stages returned.

    A stage that failed returned nothing: no promotion decision, or a promotion without a
    deploy, means the run failed and the champion is what it was.
    """
    version = registered.version if registered else None
    if promotion is None or (promotion.promoted and deployment is None):
        return TrainingOutcome(result="failed", version=version, dag_run_id=dag_run_id)
    if not promotion.promoted:
        return TrainingOutcome(
            result="refused by the gate",
            version=version,
            reasons=promotion.reasons,
            dag_run_id=dag_run_id,
        )
    return TrainingOutcome(
        result="promoted",
        version=version,
        deploy=deployment.to_dict() if deployment else None,
        dag_run_id=dag_run_id,
    )


def close_retrain_request(
    request_id: str | None,
    registered: Registration | None,
    promotion: Promotion | None,
    deployment: Deployment | None,
    dag_run_id: str | None = None,
    usecase: UseCase | str | None = None,
    settings: Settings | None = None,
) -> TrainingOutcome:
    """Record on the request (if the run had one) how its training ended; a failed run raises.

    A run without a request (by hand, on the timetable) only reports its outcome.
    """
    outcome = training_outcome(registered, promotion, deployment, dag_run_id)
    if request_id:
        uc, st = resolve(usecase, settings)
        FeedbackLedger(st.monitoring_root(uc.name)).close_request(request_id, outcome.to_dict())
    if outcome.result == "failed":
        raise TrainingRunFailed("training did not finish; see the failed task above")
    return outcome
