"""The proposal must hold for the file it was built from: every partition of it through the gate.

``airloop init`` proposes the validation gate's rules from the file; replaying that file must
then quarantine nothing. :func:`own_file_failures` checks it as the replay would: the file
written as partitions are (CSV), read back with the declared schema, the source's suite run on
every row, and the rows of each interval of the replay counted against ``min_rows``. Where a
rule still fails (a range the cast changed, a row count), :func:`loosen` relaxes exactly that
rule, so the next table someone brings gets through, and says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from airloop.data.intervals import as_utc
from airloop.data.landing import read_raw, write_raw
from airloop.data.replay import partition_stamps
from airloop.quality.expectations import Failure, build_expectations, validate_frame
from airloop.usecase import UseCase


def own_file_failures(usecase: UseCase, frame: pd.DataFrame) -> list[Failure]:
    """What the gate would refuse if the file the use case was proposed from were replayed
    (nothing, when the proposal is right)."""
    assert usecase.replay is not None  # nosec B101 # for mypy: airloop init always writes one
    name = usecase.events.source
    spec = usecase.sources[name]
    with tempfile.TemporaryDirectory(prefix="airloop-init-check-") as tmp:
        path = write_raw(frame, Path(tmp) / f"{name}.{spec.format}", spec)
        typed, problems = read_raw(path, spec)
    failures = [Failure(name, "castable", p.column, p.reason, list(p.examples)) for p in problems]
    import great_expectations.expectations as gxe

    rows_rule = gxe.ExpectTableRowCountToBeBetween  # counted per interval below instead
    suite = [e for e in build_expectations(spec) if not isinstance(e, rows_rule)]
    found, _ = validate_frame(typed, spec, name, expectations=suite)
    failures += found
    stamps = partition_stamps(frame, spec)
    for lo, hi in usecase.cadence.intervals(usecase.replay.start, usecase.replay.end):
        rows = int(((stamps >= as_utc(lo)) & (stamps < as_utc(hi))).sum())
        least, most = spec.min_rows_at(lo), spec.max_rows
        if rows < least or (most is not None and rows > most):
            failures.append(
                Failure(
                    name,
                    "table_row_count_to_be_between",
                    None,
                    f"the interval from {lo:%Y-%m-%d %H:%M} holds {rows} rows, under min_rows "
                    f"{least}",
                )
            )
            break  # one interval says it; min_rows is loosened for all of them
    return failures


def loosen(raw: dict[str, Any], source: str, failures: list[Failure]) -> list[str]:
    """Relax, in the use case's mapping, each rule its own file broke; what was relaxed, in
    words. A failure no rule can be relaxed for is left (the caller refuses the proposal)."""
    spec = raw["sources"][source]
    columns = {c["name"]: c for c in spec["columns"]}
    done: list[str] = []
    for failure in failures:
        column = columns.get(failure.column or "")
        check = failure.check
        if check == "table_row_count_to_be_between":
            spec["min_rows"] = 0
            spec.pop("allow_empty_before", None)
            done.append("min_rows set to 0: " + failure.reason)
        elif check in ("column_values_to_be_unique", "compound_columns_to_be_unique"):
            spec.pop("unique", None)
            done.append("the unique rule left out: " + failure.reason)
        elif column is None:
            continue
        elif check == "column_values_to_be_between":
            column.pop("min", None)
            column.pop("max", None)
            done.append(f"{failure.column}: no range ({failure.reason})")
        elif check == "column_values_to_be_in_set":
            column.pop("values", None)
            done.append(f"{failure.column}: no value set ({failure.reason})")
        elif check == "column_values_to_not_be_null":
            column["nullable"] = True
            done.append(f"{failure.column}: may be missing ({failure.reason})")
        elif check == "castable" and column["type"] in ("number", "integer"):
            markers = [str(v) for v in failure.examples]
            column["na_values"] = list(dict.fromkeys([*column.get("na_values", []), *markers]))
            done.append(f"{failure.column}: {', '.join(markers)} read as missing")
    return done
