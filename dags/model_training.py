"""
### Model training (D)

On its schedule, by hand (params: `window_start`, `window_end`, `config`), or later on drift:

1. **build_training_set**: point-in-time correct, labels only as known at the window's end;
2. **validate_training_set**: Great Expectations: label balance, missing features, ranges;
3. **train_model**: the latest experiment's proposal (or the given config), fixed seeds;
4. **evaluate_model**: a later, held-out time slice: metrics, per-slice metrics, calibration,
   and the champion on the same rows;
5. **register_model**: the gate, then one MLflow model version per run with full lineage,
   alias `challenger`;
6. **promote_model**: `champion` moves to it when the gate passed (the old one becomes
   `previous`); otherwise the version records "not promoted, because …";
7. **deploy_model**: the running service (`airloop serve`) loads the new champion and is
   smoke-tested on held-out rows against the registered model; on failure `champion` goes
   back to `previous` and the run fails with the reason.
"""

from airflow.sdk import DAG

from airloop.orchestration.model_training import build_model_training
from airloop.orchestration.tasks import dags_per_usecase

# One DAG per use case (AIRLOOP_USECASES): model_training, then model_training__<name> for each next one.
dags: dict[str, DAG] = dags_per_usecase(build_model_training, __doc__)
globals().update(dags)
