"""Clean and transform validated raw partitions into typed frames the feature code can trust."""

from __future__ import annotations

import numpy as np
import pandas as pd

from airloop.usecase import SourceSpec


def parse_timestamps(df: pd.DataFrame, spec: SourceSpec) -> pd.DataFrame:
    """Declared timestamp columns as UTC datetimes (text as it lands: ISO 8601, or the
    column's declared ``format``)."""
    out = df.copy()
    for col in spec.columns:
        if col.type == "timestamp" and col.name in out:
            out[col.name] = col.timestamps(out[col.name])
    return out


def mask_out_of_range(df: pd.DataFrame, spec: SourceSpec) -> pd.DataFrame:
    """Values outside a column's declared range become missing.

    The gate lets a column through when ``mostly`` of it is in range; the few outliers it
    tolerated (a 1,048 mph wind reading, say) must not reach a model as if they were real.
    """
    out = df.copy()
    for col in spec.columns:
        if col.name not in out or col.type not in ("number", "integer"):
            continue
        values = pd.to_numeric(out[col.name], errors="coerce")
        bad = pd.Series(False, index=out.index)
        if col.min is not None:
            bad |= values < col.min
        if col.max is not None:
            bad |= values > col.max
        if bad.any():
            out[col.name] = values.astype("float64").where(~bad, np.nan)
    return out


def derive_columns(df: pd.DataFrame, spec: SourceSpec) -> pd.DataFrame:
    """Add the source's derived columns (keys, dates from parts, arithmetic): see
    :meth:`SourceSpec.add_derived`, which landing uses too, so both derive alike."""
    return spec.add_derived(df)


def clean_source(df: pd.DataFrame, spec: SourceSpec) -> pd.DataFrame:
    """Typed timestamps, outliers masked, derived columns added, exact duplicates dropped."""
    out = parse_timestamps(df, spec)
    out = mask_out_of_range(out, spec)
    for col in spec.columns:
        if col.type == "string" and col.name in out:
            text = out[col.name].astype("string").str.strip()
            out[col.name] = text.astype(object).where(text.notna(), None)
    out = derive_columns(out, spec)
    return out.drop_duplicates().reset_index(drop=True)
