"""Names of model families and metrics per task type, and default search spaces.

Kept free of scikit-learn so DAG files can offer them in forms without importing it.
"""

from __future__ import annotations

from typing import Any

FAMILY_NAMES: dict[str, list[str]] = {
    "classification": ["hist_gradient_boosting", "logistic", "random_forest"],
    "regression": ["hist_gradient_boosting", "linear", "random_forest"],
}

METRIC_NAMES: dict[str, list[str]] = {
    "classification": ["roc_auc", "average_precision", "log_loss", "brier_score", "accuracy"],
    "regression": ["rmse", "mae", "r2"],
}

DEFAULT_SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "hist_gradient_boosting": {
        "learning_rate": [0.05, 0.1],
        "max_leaf_nodes": [15, 31],
        "max_iter": [100],
    },
    "logistic": {"C": [0.1, 1.0, 10.0]},
    "linear": {"alpha": [0.1, 1.0, 10.0]},
    "random_forest": {"n_estimators": [100], "max_depth": [6, 12], "min_samples_leaf": [5, 20]},
}
