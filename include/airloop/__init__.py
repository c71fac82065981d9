"""airloop: an Airflow-based MLOps distribution (features, experiments, training, serving, monitoring)."""

from airloop.core.feast_imports import without_feast_type_instrumentation

without_feast_type_instrumentation()


def __getattr__(name: str) -> str:
    # ``airloop.__version__`` from the package's metadata (pyproject.toml's version), read
    # when asked rather than at import time.
    if name == "__version__":
        from airloop.core.version import airloop_version

        return airloop_version()
    raise AttributeError(f"module 'airloop' has no attribute {name!r}")
