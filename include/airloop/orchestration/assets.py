"""The Airflow Assets airloop's DAGs publish and wait for, one pair per use case."""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias


def retrain_request(usecase_name: str) -> Asset:
    """Monitoring emits an event here when a breach becomes a request; model_training waits on it."""
    return Asset(
        name=f"{usecase_name}_retrain_request", uri=f"airloop://{usecase_name}/retrain-request"
    )


def retrain_requests(usecase_name: str) -> AssetAlias:
    """What monitoring declares as its outlet: an alias through which it adds an event on
    :func:`retrain_request` only for an interval whose decision opened a request."""
    return AssetAlias(name=f"{usecase_name}_retrain_requests")


def batch_predictions(usecase_name: str) -> Asset:
    """Batch inference updates this after writing an interval's predictions."""
    return Asset(
        name=f"{usecase_name}_batch_predictions", uri=f"airloop://{usecase_name}/batch-predictions"
    )
