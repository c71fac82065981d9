"""
### Experimentation (C)

Triggered by hand from the Airflow UI (**Trigger** shows a form): a training window, a model
family, a search space, the number of trials and the metric to optimise.

1. **plan_trials**: the points of the search space to try (a bad form fails here, at once);
2. **prepare_experiment**: a point-in-time correct training set from the Feast feature
   service, and one parent MLflow run;
3. **run_trial** (mapped, in parallel): one nested MLflow run per point of the search space,
   with params, validation metrics and the training set as a dataset input;
4. **select_best**: a comparison table and plot on the parent run, and the best trial's
   configuration proposed to `model_training`.
"""

from airflow.sdk import DAG

from airloop.orchestration.experimentation import build_experimentation
from airloop.orchestration.tasks import dags_per_usecase

# One DAG per use case (AIRLOOP_USECASES): experimentation, then experimentation__<name> for each next one.
dags: dict[str, DAG] = dags_per_usecase(build_experimentation, __doc__)
globals().update(dags)
