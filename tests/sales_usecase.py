"""The sales use case: every field of the use-case language once, as a YAML mapping, with its
transforms, written to a folder as a user's use case (feature-language and training tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TRANSFORMS = '''
import pandas as pd


def price_trend(history: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The last median minus the first, and how many months that spans."""
    rows = history.sort_values("date").groupby("city")["median"]
    out = (rows.last() - rows.first()).rename("median_trend").to_frame()
    out["n_months"] = rows.size()
    return out.reset_index()


def peek(history: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Cheats if it can: reports the latest row it was handed, and its median (the label)."""
    latest = history.sort_values("date").groupby("city").last()
    return pd.DataFrame(
        {
            "city": latest.index,
            "latest_seen": [t.timestamp() for t in latest["date"]],
            "latest_median": latest["median"].to_numpy(),
        }
    )


def extra_column(history, as_of):
    return price_trend(history, as_of).assign(event_timestamp=as_of)


def missing_feature(history, as_of):
    return price_trend(history, as_of).drop(columns=["n_months"])


def wrong_type(history, as_of):
    return price_trend(history, as_of).assign(median_trend="steep")


def twice(history, as_of):
    out = price_trend(history, as_of)
    return pd.concat([out, out])


def not_a_frame(history, as_of):
    return {"city": ["paris"]}
'''


def sales_raw() -> dict[str, Any]:
    """The use case as the YAML mapping: every new field of the language, once."""
    return {
        "name": "sales",
        "task": "regression",
        "schedule": "@monthly",
        "sources": {
            "sales": {
                "kind": "partitioned",
                "partition_by": "date",
                "available_after": "1mo",
                "allow_empty_before": "1999-03-01",
                "columns": [
                    {"name": "city", "type": "string", "nullable": False},
                    {"name": "year", "type": "integer", "min": 1990, "max": 2100},
                    {"name": "month", "type": "integer", "min": 1, "max": 12},
                    {"name": "sales", "type": "number", "min": 0},
                    {"name": "volume", "type": "number", "min": 0},
                    {"name": "median", "type": "number", "min": 0, "max": 100000},
                ],
                "derive": [
                    {"name": "city_month", "concat": ["city", "date"], "sep": "_"},
                    {"name": "date", "date_from": {"year": "year", "month": "month"}},
                    {"name": "price_per_sale", "expr": "volume / sales"},
                ],
            }
        },
        "events": {
            "source": "sales",
            "id": "city_month",
            "timestamp": "date",
            "request_fields": ["city", "month"],
            "calendar": [
                "month",
                "quarter",
                "day_of_week",
                "day_of_year",
                "week_of_year",
                "hour",
                "is_weekend",
            ],
        },
        "label": {"source": "sales", "column": "median", "name": "median_price", "delay": "1mo"},
        "entities": [{"name": "city", "join_key": "city"}],
        "feature_views": [
            {
                "name": "city_sales",
                "kind": "aggregate",
                "entity": "city",
                "source": "sales",
                "windows": ["3mo", "12mo"],
                "ttl": "2mo",
                "aggregates": [
                    {
                        "column": "sales",
                        "functions": ["mean", "sum", "min", "max", "std", "count", "last"],
                    },
                    {"column": "median", "functions": ["mean", "last"]},
                ],
            },
            {
                "name": "city_lags",
                "kind": "lag",
                "entity": "city",
                "source": "sales",
                "columns": ["median", "sales"],
                "lags": ["1mo", "12mo"],
                "ttl": "2mo",
            },
            {
                "name": "city_trend",
                "kind": "transform",
                "entity": "city",
                "source": "sales",
                "function": "price_trend",
                "lookback": "24mo",
                "ttl": "2mo",
                "features": [{"name": "median_trend"}, {"name": "n_months", "dtype": "int"}],
            },
            {
                "name": "city_peek",
                "kind": "transform",
                "entity": "city",
                "source": "sales",
                "function": "peek",
                "lookback": "24mo",
                "ttl": "2mo",
                "features": [{"name": "latest_seen"}, {"name": "latest_median"}],
            },
            {
                "name": "city_labels",
                "kind": "label_rate",
                "entity": "city",
                "windows": ["3mo", "12mo"],
                "ttl": "2mo",
            },
        ],
        "feature_service": {"name": "sales_v1"},
        "metrics": ["mae"],
        "training": {
            "model_name": "sales_price",
            "categorical": ["city"],
            "numeric": ["month", "event_quarter", "event_is_weekend"],
            "slices": ["event_quarter"],
        },
    }


def write_usecase(folder: Path, raw: dict[str, Any], transforms: str | None = TRANSFORMS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "usecase.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    if transforms is not None:
        (folder / "transforms.py").write_text(transforms)
    return path
