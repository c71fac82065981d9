"""Where state lives on disk: the folders under the shared root and the home.

Each is a property of the settings, so a process finds a folder from the settings it was
given, never from a path written into the code.
"""

from __future__ import annotations

from pathlib import Path

from airloop.settings.base import SettingsBase


class Folders(SettingsBase):
    """The state folders: landing, staging, quarantine, reports, data sets, predictions, logs."""

    @property
    def airflow_home(self) -> Path:
        """Airflow's home: its metadata DB (embedded), config, logs and the shared keys."""
        return self.home / "airflow"

    @property
    def landing_dir(self) -> Path:
        """Where raw partitions arrive, one folder per use case and source."""
        return self.shared / "landing"

    @property
    def staging_dir(self) -> Path:
        """Intermediate files of each interval's stages, one folder per use case and interval."""
        return self.shared / "staging"

    @property
    def quarantine_dir(self) -> Path:
        """Partitions that failed the gate, with their reports and Data Docs."""
        return self.shared / "quarantine"

    @property
    def reports_dir(self) -> Path:
        """Validation reports and the demo's timeline, one folder per use case."""
        return self.shared / "reports"

    def landing_root(self, usecase: str) -> Path:
        """Where a use case's raw partitions land, one folder per source."""
        return self.landing_dir / usecase

    def reports_root(self, usecase: str) -> Path:
        """A use case's validation reports and timeline."""
        return self.reports_dir / usecase

    @property
    def datasets_dir(self) -> Path:
        """Training sets, one Parquet file per window and digest."""
        return self.shared / "datasets"

    @property
    def predictions_dir(self) -> Path:
        """The serving API's prediction logs, one folder per use case."""
        return self.shared / "predictions"

    @property
    def batch_predictions_dir(self) -> Path:
        """Batch inference output, one folder per use case, one file per interval."""
        return self.shared / "batch_predictions"

    @property
    def monitoring_dir(self) -> Path:
        """Monitoring results and the feedback ledger, one folder per use case."""
        return self.shared / "monitoring"

    @property
    def logs_dir(self) -> Path:
        """Logs of the processes ``airloop up`` and the demo start."""
        return self.home / "logs"

    def prediction_log_dir(self, usecase: str) -> Path:
        """Where the service appends a use case's predictions and monitoring reads them."""
        return self.predictions_dir / usecase

    def monitoring_root(self, usecase: str) -> Path:
        """A use case's monitoring results, ledger and reports."""
        return self.monitoring_dir / usecase

    def monitoring_metrics_file(self, usecase: str) -> Path:
        """The latest monitored interval's figures (Prometheus text); the service appends them."""
        return self.monitoring_root(usecase) / "metrics.prom"
