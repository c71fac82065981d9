"""``make parse``: load every DAG file like the dag-processor does; report errors and timings."""

from __future__ import annotations

import os
import sys


def main() -> int:
    """Parse every DAG file; 1 when any failed to import."""
    from airloop.settings import get_settings

    os.environ.update(get_settings().airflow_env())
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(get_settings().dags_folder))
    for stat in sorted(bag.dagbag_stats, key=lambda s: s.file):
        seconds = stat.duration.total_seconds()
        sys.stdout.write(f"{stat.file:<40} {seconds:6.3f}s  dags: {stat.dags}\n")
    for path, error in bag.import_errors.items():
        sys.stderr.write(f"IMPORT ERROR {path}:\n{error}\n")
    return 1 if bag.import_errors else 0


if __name__ == "__main__":
    sys.exit(main())
