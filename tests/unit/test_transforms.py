from __future__ import annotations

import pandas as pd

from airloop.features.transforms import clean_source, derive_columns, mask_out_of_range
from airloop.usecase import SourceSpec

SPEC = SourceSpec.model_validate(
    {
        "kind": "partitioned",
        "partition_by": "ts",
        "columns": [
            {"name": "ts", "type": "timestamp", "nullable": False},
            {"name": "code", "type": "string"},
            {"name": "num", "type": "integer"},
            {"name": "speed", "type": "number", "min": 0, "max": 150, "mostly": 0.9},
        ],
        "derive": [{"name": "key", "concat": ["code", "num", "ts"], "sep": "_"}],
    }
)


def _raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": ["2013-01-01T05:00:00Z", "2013-01-01T06:00:00Z"],
            "code": [" UA", "AA "],
            "num": [1545.0, 7.0],
            "speed": [10.0, 1048.4],
        }
    )


def test_clean_parses_timestamps_as_utc() -> None:
    out = clean_source(_raw(), SPEC)
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]"
    assert out["ts"].iloc[0] == pd.Timestamp("2013-01-01T05:00:00Z")


def test_clean_strips_text_and_derives_keys() -> None:
    out = clean_source(_raw(), SPEC)
    assert out["code"].tolist() == ["UA", "AA"]
    assert out["key"].tolist() == ["UA_1545_2013-01-01T05:00:00Z", "AA_7_2013-01-01T06:00:00Z"]


def test_out_of_range_values_become_missing() -> None:
    out = mask_out_of_range(_raw(), SPEC)
    assert out["speed"].iloc[0] == 10.0
    assert pd.isna(out["speed"].iloc[1])


def test_derived_key_is_missing_when_a_part_is() -> None:
    raw = _raw()
    raw.loc[1, "code"] = None
    out = derive_columns(raw, SPEC)
    assert out["key"].iloc[1] is None


def test_clean_drops_exact_duplicates() -> None:
    raw = pd.concat([_raw(), _raw()], ignore_index=True)
    assert len(clean_source(raw, SPEC)) == 2
