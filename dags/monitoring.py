"""
### Monitoring and the feedback loop

Per data interval, against the model that served it:

1. **check_interval**: reads the interval's prediction log once for two checks, then decides.
   *Drift*: the served features against the champion's training reference, per feature (PSI,
   Jensen-Shannon or Wasserstein; thresholds from the use case), and the score distribution
   (prediction drift). *Live performance*: predictions joined to the labels that have arrived
   by the interval end (never earlier than their arrival), the use case's metrics against the
   champion's test metrics. *Decision*: breaches through hysteresis, cooldown, de-duplication
   and the retraining budget; every decision is recorded, suppressed ones too. When it opens a
   request, the task emits an event on the Asset `airloop://<use case>/retrain-request` (through
   the alias `<use case>_retrain_requests`) with the reason in its extra: `model_training` runs.
   An interval that opens none emits nothing;
2. **publish_report**: an HTML report with its charts, logged to MLflow (experiment
   `<use case>/monitoring`) against the serving model version, and Prometheus figures on the
   serving API's `/metrics`. The task's return value links the MLflow run.
"""

from airflow.sdk import DAG

from airloop.orchestration.monitoring import build_monitoring
from airloop.orchestration.tasks import dags_per_usecase

# One DAG per use case (AIRLOOP_USECASES): monitoring, then monitoring__<name> for each next one.
dags: dict[str, DAG] = dags_per_usecase(build_monitoring, __doc__)
globals().update(dags)
