"""
### Feature pipeline (B)

Per data interval of the active use case (`AIRLOOP_USECASE`, default: NYC flights 2013):

1. **validate_partition**: snapshot the interval's landed raw files into staging, with their
   digests, then the Great Expectations gate on that snapshot; a failure quarantines the
   partition with a JSON report and Data Docs, and nothing downstream is written;
2. **build_offline_features**: clean, transform, compute point-in-time correct features and
   publish them as this interval's partitions of the Feast offline store (overwrite);
3. **materialize_online**: load the interval's window into the Feast online store, the feature
   views dealt to as many mapped tasks as the stores allow writers (the pool
   `airloop_online_store`: one with SQLite, `AIRLOOP_ONLINE_STORE_WRITERS`, default two, with
   Redis and the SQL registry).

Reruns and backfills are idempotent: `airloop backfill --start 2013-01-01 --end 2013-01-15`.
"""

from airflow.sdk import DAG

from airloop.orchestration.feature_pipeline import build_feature_pipeline
from airloop.orchestration.tasks import dags_per_usecase

# One DAG per use case (AIRLOOP_USECASES): feature_pipeline, then feature_pipeline__<name> for each next one.
dags: dict[str, DAG] = dags_per_usecase(build_feature_pipeline, __doc__)
globals().update(dags)
