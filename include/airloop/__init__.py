"""airloop: an Airflow-based MLOps distribution (features, experiments, training, serving, monitoring)."""

from airloop.core.feast_imports import without_feast_type_instrumentation

without_feast_type_instrumentation()

__version__ = "0.1.0"
