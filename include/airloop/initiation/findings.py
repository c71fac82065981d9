"""The profile's findings: what a person should know about the data, in plain words.

A finding does not stop ``airloop init``: it says what looks wrong or what was assumed, and
what the proposal did about it (a leaking column kept out of the inputs, empty intervals
allowed). What makes a use case impossible is an ``InitError`` instead, raised while profiling.
"""

from __future__ import annotations

from datetime import timedelta

from airloop.initiation.records import DataProfile, Finding


def plain_findings(profile: DataProfile) -> list[Finding]:
    """What a person should know before trusting the proposal, in plain words."""
    return [
        *_time_findings(profile),
        *_target_findings(profile),
        *_column_findings(profile),
        *_entity_findings(profile),
    ]


def _time_findings(profile: DataProfile) -> list[Finding]:
    time, counts = profile.time, profile.per_interval
    where = time.column or "+".join(time.parts.values())
    out: list[Finding] = []
    if time.unparseable:
        examples = "; ".join(time.unparseable_examples)
        out.append(
            Finding(
                kind="unparseable_timestamps",
                column=where,
                message=f"{time.unparseable} rows have no timestamp that parses from {where} "
                f"(e.g. {examples}): they fall in no interval and are left out.",
            )
        )
    if time.unordered:
        out.append(
            Finding(
                kind="unordered_timestamps",
                column=where,
                severity="info",
                message=f"The file is not in time order: {time.unordered} rows come after a "
                "later row of the same entity. airloop sorts by time, so this is harmless "
                "unless the file was put together from pieces that overlap.",
            )
        )
    cadence = time.cadence
    if time.typical_gap_hours is None:
        message = (
            "No entity has two rows, so the cadence cannot be read from the data: "
            f"assumed {cadence} ({time.schedule}); change 'schedule' if it is wrong."
        )
    else:
        gap = _human(timedelta(hours=time.typical_gap_hours))
        message = (
            f"An entity's rows come every {gap} (the typical gap between its consecutive "
            f"timestamps): {cadence} data, scheduled {time.schedule}; a median of "
            f"{counts.median:g} rows per interval."
        )
    out.append(Finding(kind="cadence", severity="info", column=where, message=message))
    if time.typical_gap_hours is not None and time.typical_gap_hours > 24 * 45:
        out.append(
            Finding(
                kind="coarse_cadence",
                column=where,
                message=f"Rows come less often than monthly: most {cadence} intervals are "
                "empty, and the gate allows empty intervals (min_rows: 0).",
            )
        )
    if counts.empty:
        out.append(
            Finding(
                kind="empty_intervals",
                column=where,
                severity="info",
                message=f"{counts.empty} of {counts.intervals} {cadence} intervals have no rows "
                "(gaps in the data, nights, weekends or holidays): the proposal lets an interval be "
                "empty.",
            )
        )
    if counts.thin_until:
        out.append(
            Finding(
                kind="thin_start",
                column=where,
                severity="info",
                message=f"Intervals before {counts.thin_until} hold under half the usual "
                f"{counts.median:g} rows: the gate accepts them (allow_empty_before).",
            )
        )
    return out


def _target_findings(profile: DataProfile) -> list[Finding]:
    target = profile.target
    out: list[Finding] = []
    if target.inferred_task:
        why = (
            f"a class of {target.column} > {target.threshold:g}"
            if target.task == "classification"
            else f"{target.column} is a number with many values"
        )
        out.append(
            Finding(
                kind="task",
                column=target.column,
                severity="info",
                message=f"Task: {target.task} ({why}); --task chooses it.",
            )
        )
    if target.missing_share > 0.5:
        out.append(
            Finding(
                kind="target_mostly_missing",
                column=target.column,
                message=f"The target {target.column!r} is missing in {target.missing_share:.0%} "
                f"of rows: only {target.labelled} rows have a label to learn from and to "
                "monitor with.",
            )
        )
    elif target.missing:
        out.append(
            Finding(
                kind="target_missing",
                column=target.column,
                severity="info",
                message=f"The target {target.column!r} is missing in {target.missing} rows "
                f"({target.missing_share:.1%}): they are scored but give no label, so "
                "training and monitoring leave them out.",
            )
        )
    if target.task == "classification" and target.positive_share is not None:
        share = target.positive_share
        if min(share, 1 - share) < 0.01:
            out.append(
                Finding(
                    kind="target_nearly_constant",
                    column=target.column,
                    message=f"One class is rare: {share:.2%} of labelled rows are positive. "
                    "Metrics will be noisy; check --threshold.",
                )
            )
    return out


def _column_findings(profile: DataProfile) -> list[Finding]:
    target = profile.target.column
    out: list[Finding] = []
    for col in profile.with_role("leak"):
        how = (
            f"accounts for {col.target_correlation:.0%} of it within each {'+'.join(profile.entity.columns)} "
            "on its own row (it is observed with the outcome)"
            if col.type in ("string", "bool") and col.target_correlation is not None
            else f"moves with it (correlation {col.target_correlation:.3f})"
            if col.target_correlation is not None and abs(col.target_correlation) < 1 - 1e-9
            else "copies it"
        )
        out.append(
            Finding(
                kind="target_leak",
                column=col.name,
                message=f"Column {col.name!r} {how}: the target {target!r} in another form, "
                "which a model would learn to copy. It is kept out of the model's inputs; add "
                "it by hand only if it is truly known before the outcome.",
            )
        )
    for col in profile.with_role("time_encoding"):
        how = f"it follows the {col.follows}" if col.follows else "it rises with the timestamp"
        out.append(
            Finding(
                kind="time_encoding",
                column=col.name,
                severity="info",
                message=f"Column {col.name!r} is the time in another form ({how}): not a "
                "measurement, not a feature and not a drift input; calendar features cover it.",
            )
        )
    for col in profile.with_role("constant"):
        out.append(
            Finding(
                kind="constant",
                column=col.name,
                severity="info",
                message=f"Column {col.name!r} holds one value on every row: nothing to learn "
                "from, not used as a feature.",
            )
        )
    for col in profile.columns:
        if not col.markers:
            continue
        rows = sum(n for _, n in col.markers)
        shown = ", ".join(f"{v!r} ({n})" for v, n in col.markers[:5])
        out.append(
            Finding(
                kind="text_markers",
                column=col.name,
                message=f"Column {col.name!r} holds numbers and, on {rows} rows "
                f"({rows / profile.rows:.1%}), text: {shown}. They are read as missing "
                "(na_values in usecase.yaml), so the column stays a number; if a marker "
                "stands for a value (a trace amount, a detection limit), map it with "
                "`replace: {marker: value}` instead.",
            )
        )
    for col in profile.with_role("text"):
        out.append(
            Finding(
                kind="high_cardinality",
                column=col.name,
                severity="info",
                message=f"Column {col.name!r} has {col.cardinality} distinct values: text, "
                "an identifier or a row counter, not used as a feature.",
            )
        )
    return out


def _entity_findings(profile: DataProfile) -> list[Finding]:
    ent = profile.entity
    name = "+".join(ent.columns)
    out: list[Finding] = []
    if ent.missing:
        out.append(
            Finding(
                kind="entity_missing",
                column=name,
                message=f"{ent.missing} rows have no {name}: features keyed by it cannot be "
                "looked up for them.",
            )
        )
    if ent.single_row:
        examples = ", ".join(ent.single_row_examples)
        out.append(
            Finding(
                kind="single_row_entity",
                column=name,
                message=f"{ent.single_row} of {ent.count} values of {name} have one row only "
                f"(e.g. {examples}): with no history, their lags and aggregates are missing.",
            )
        )
    if ent.duplicate_events:
        out.append(
            Finding(
                kind="duplicate_events",
                column=name,
                message=f"{ent.duplicate_events} rows repeat a {name} and timestamp of an "
                "earlier row, so the event id (entity and time) is not unique: remove the "
                "duplicates, or add the column that tells them apart to --entity.",
            )
        )
    return out


def _human(gap: timedelta) -> str:
    hours = gap.total_seconds() / 3600
    if hours < 1:
        return f"{gap.total_seconds() / 60:.0f} minutes"
    if hours < 48:
        return f"{hours:.0f} hours" if hours != 1 else "1 hour"
    return f"{hours / 24:.0f} days"
