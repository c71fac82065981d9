"""
### Batch inference (C8)

Per data interval: the interval's events from the Feast offline store, their point-in-time
features, the current `champion` from the MLflow registry, and the predictions written to
`$AIRLOOP_HOME/batch_predictions/<use case>/<day>.parquet` (overwritten on a rerun). Each
success updates the Asset `airloop://<use case>/batch-predictions`.
"""

from airflow.sdk import DAG

from airloop.orchestration.batch_inference import build_batch_inference
from airloop.orchestration.tasks import dags_per_usecase

# One DAG per use case (AIRLOOP_USECASES): batch_inference, then batch_inference__<name> for each next one.
dags: dict[str, DAG] = dags_per_usecase(build_batch_inference, __doc__)
globals().update(dags)
