"""
### Monitoring and the feedback loop

Per data interval, against the model that served it:

1. **check_drift**: the served features (prediction log) against the champion's training
   reference, per feature (PSI, Jensen-Shannon or Wasserstein; thresholds from the use case),
   and the score distribution (prediction drift);
2. **check_performance**: predictions joined to the labels that have arrived by the interval
   end (never earlier than their arrival), the use case's metrics against the champion's test
   metrics;
3. **decide_retraining**: breaches through hysteresis, cooldown, de-duplication and the
   retraining budget; every decision is recorded, suppressed ones too;
4. **request_retraining**: on a request, an event on the Asset
   `airloop://<use case>/retrain-request` with the reason in its extra: `model_training` runs;
5. **publish_report**: an HTML report with plots, logged to MLflow (experiment
   `<use case>/monitoring`) against the serving model version, and Prometheus figures on the
   serving API's `/metrics`. The task's return value links the MLflow run.
"""

from airflow.sdk import DAG

from airloop.orchestration.monitoring import build_monitoring
from airloop.orchestration.tasks import dags_per_usecase

# One DAG per use case (AIRLOOP_USECASES): monitoring, then monitoring__<name> for each next one.
dags: dict[str, DAG] = dags_per_usecase(build_monitoring, __doc__)
globals().update(dags)
