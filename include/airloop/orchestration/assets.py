"""The Airflow Assets airloop's DAGs publish and wait for."""

from __future__ import annotations

from airflow.sdk import Asset


def retrain_request(usecase_name: str) -> Asset:
    """Monitoring emits an event here when a breach becomes a request; model_training waits on it."""
    return Asset(
        name=f"{usecase_name}_retrain_request", uri=f"airloop://{usecase_name}/retrain-request"
    )
