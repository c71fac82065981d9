"""LocalExecutor that imports the ML stack once, before it forks its workers.

Each LocalExecutor task runs in a process forked from a long-lived worker. Without this,
every task that touches Feast, MLflow, Great Expectations, scikit-learn and pandas pays
about six seconds of imports; with the modules loaded before the fork it pays none. Only the
scheduler (which hosts the executor) pays the import, once, at start-up.
"""

from __future__ import annotations

import importlib
import logging
import os

from airflow.executors.local_executor import LocalExecutor

PRELOAD = (
    "pandas",
    "pyarrow.parquet",
    "sklearn",
    "feast",
    "mlflow",
    # MLflow's database stores are imported when a client first opens one (1.7 s, in every
    # task that reads or writes MLflow on the embedded profile); matplotlib draws the reports.
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    # ... and what a client's first use of them imports (tracing's span processors, the
    # workspace-aware stores, alembic for the schema check): 0.05 s in each such task.
    "mlflow.tracing.processor.base_mlflow",
    "mlflow.tracing.processor.otel",
    "mlflow.store.tracking.sqlalchemy_workspace_store",
    "mlflow.store.model_registry.sqlalchemy_workspace_store",
    "alembic.command",
    "matplotlib.pyplot",
    # Feast's offline reads go through ibis and DuckDB, imported at the first one (1.3 s).
    "feast.infra.offline_stores.duckdb",
    "feast.infra.compute_engines.local.compute",
    "feast.repo_operations",
    "feast.infra.passthrough_provider",
    "feast.infra.online_stores.sqlite",
    "feast.infra.registry.file",
    "ibis.backends.duckdb",
    "great_expectations",
    # skops scans every scikit-learn estimator when it is imported (2 to 3 s): the tasks that
    # log, evaluate or smoke-test a model paid it each.
    "skops.io",
    "mlflow.pyfunc",
    "airloop.features.pipeline",
    "airloop.training.pipeline",
    "airloop.training.experiment",
    "airloop.serving.deploy",
    "airloop.serving.batch",
    "airloop.monitoring.pipeline",
    "airloop.monitoring.outcome",
)

log = logging.getLogger(__name__)


def preload_modules() -> list[str]:
    """Import what tasks will need; a module that fails to import is skipped, not fatal."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    os.environ.setdefault("MPLBACKEND", "Agg")  # no screen: tasks draw to files
    loaded = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception as exc:  # a missing optional module must not stop the scheduler
            log.warning("airloop: could not preload %s: %s", name, exc)
    warm_up()
    return loaded


def warm_up() -> None:
    """Answers each task would otherwise work out again, worked out once before the fork."""
    try:
        from airloop.training.train import pip_requirements

        pip_requirements()
    except Exception as exc:  # a task works them out itself, as before
        log.warning("airloop: could not warm up: %s", exc)
    try:
        from airloop.registry.tracking import open_stores
        from airloop.settings import get_settings

        open_stores(get_settings())
    except Exception as exc:  # each task builds its own stores, as before
        log.warning("airloop: could not open MLflow's stores: %s", exc)


class PreloadingLocalExecutor(LocalExecutor):
    """The LocalExecutor, with the task stack imported before workers are forked."""

    def start(self) -> None:
        """Preload, then start the workers (forked with the modules already imported)."""
        loaded = preload_modules()
        log.info("airloop: preloaded %s before forking workers", ", ".join(loaded))
        super().start()
