"""
### Batch inference (C8)

Per data interval: the interval's events from the Feast offline store, their point-in-time
features, the current `champion` from the MLflow registry, and the predictions written to
`$AIRLOOP_HOME/batch_predictions/<use case>/<day>.parquet` (overwritten on a rerun). Each
success updates the Asset `airloop://<use case>/batch-predictions`.
"""

from airflow.sdk import DAG

from airloop.orchestration.batch_inference import build_batch_inference

dag: DAG = build_batch_inference(doc_md=__doc__)
