"""airloop: an Airflow-based MLOps distribution (features, experiments, training, serving, monitoring)."""

__version__ = "0.1.0"
