"""The check's report: Markdown for a pull request (a CI job's summary), the same as an HTML
page, and the JSON record behind both."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from airloop.core.files import write_json, write_text

if TYPE_CHECKING:
    from airloop.ci.run import CiResult

MAX_FILES = 8  # changed files listed per kind; the rest are counted


def _num(value: object) -> str:
    return "—" if value is None else f"{float(value):.4f}"  # type: ignore[arg-type]


def _delta(mine: object, theirs: object) -> str:
    if mine is None or theirs is None:
        return "—"
    return f"{float(mine) - float(theirs):+.4f}"  # type: ignore[arg-type]


def verdict(result: CiResult) -> str:
    """One line: passed, or what refused it."""
    refused = []
    if not result.comparison.decision.promote:
        refused.append("the gate refused the candidate")
    if result.contract.broken:
        refused.append("the serving contract breaks")
    return "passed" if not refused else "failed: " + " and ".join(refused)


def markdown(result: CiResult) -> str:
    """The report as GitHub-flavoured Markdown."""
    c, k = result.comparison, result.contract
    theirs = f"champion v{c.champion_version}" if c.champion_version else "no champion"
    lines = [
        f"## airloop ci: `{result.usecase}` — {verdict(result)}",
        "",
        f"The candidate (this tree) against the {theirs} (the base, `{result.changes.base}` at "
        f"`{result.changes.merge_base[:10]}`), both trained on the window {result.window.start[:10]}"
        f" to {result.window.end[:10]} ({result.window.intervals} intervals) and scored on the same"
        f" {c.rows} held-out rows ({c.window[0][:16]} to {c.window[1][:16]}).",
        "",
        "| metric | champion | candidate | delta |",
        "|---|---:|---:|---:|",
    ]
    for name, value in c.candidate.items():
        champion = (c.champion or {}).get(name)
        lines.append(f"| {name} | {_num(champion)} | {_num(value)} | {_delta(value, champion)} |")
    lines += ["", "### The gate"]
    if c.decision.promote:
        lines.append(
            "**Passed**: the candidate is no worse than the champion by the use case's rules."
        )
    else:
        lines.append("**Refused**:")
        lines += [f"- {reason}" for reason in c.decision.reasons]
    lines += [f"- note: {note}" for note in c.decision.notes]
    if c.label_differs:
        lines.append(
            f"- note: the candidate defines the label differently on {c.label_differs} of"
            f" the {c.rows} rows; both models are scored on the candidate's labels"
        )
    if c.slices:
        lines += [
            "",
            f"### Slices that moved most ({c.primary_metric})",
            "",
            "| slice | value | rows | champion | candidate | delta |",
            "|---|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {m.slice} | {m.value} | {m.rows} | {_num(m.champion)} | {_num(m.candidate)}"
            f" | {_delta(m.candidate, m.champion)} |"
            for m in c.slices
        ]
    lines += ["", "### The serving contract"]
    if k.changes:
        lines.append(
            f"**Changed**, accepted by the change: {k.accepted}"
            if k.accepted
            else "**Changed**: callers must follow (say why with `--contract-change`, or keep it):"
        )
        lines += [f"- {change}" for change in k.changes]
    else:
        lines.append("Unchanged for callers of `/v1/predict` and `/invocations`.")
    if k.inputs_removed:
        lines.append(f"- the model no longer reads: {', '.join(k.inputs_removed)}")
    lines += [f"- **problem**: {problem}" for problem in k.problems]
    if k.example_score is not None:
        lines.append(
            f"- the use case's example request scored {k.example_score:.4f} on `/v1/predict`"
        )
    if k.parity_max_difference is not None:
        lines.append(
            f"- `/invocations` and in-process scoring agree on {k.parity_rows} held-out rows"
            f" (largest difference {k.parity_max_difference:.2g})"
        )
    if result.views:
        lines += ["", "### Feature views", "", "| view | base | candidate | |", "|---|---|---|---|"]
        lines += [
            f"| {v.name} | `{v.base or '—'}` | `{v.candidate or '—'}` | {v.status} |"
            for v in result.views
        ]
    lines += ["", f"### What changed against `{result.changes.base}`", ""]
    for kind in ("usecase", "transforms", "engine", "environment", "other"):
        files: list[str] = getattr(result.changes, kind)
        if files:
            shown = ", ".join(f"`{f}`" for f in files[:MAX_FILES])
            more = f" and {len(files) - MAX_FILES} more" if len(files) > MAX_FILES else ""
            lines.append(f"- {kind}: {shown}{more}")
    if not result.changes.affects_model:
        lines.append("- nothing that can change the model (the check ran all the same)")
    return "\n".join(lines) + "\n"


def page(result: CiResult, text: str) -> str:
    """The report as a self-contained HTML page: the Markdown's tables and lists, escaped."""
    body: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            head, *rows = table
            cells = "".join(f"<th>{c}</th>" for c in head)
            rest = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
            body.append(f"<table><tr>{cells}</tr>{rest}</table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip().strip("`")) for c in line.strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                table.append(cells)
            continue
        flush()
        if line.startswith("## "):
            body.append(f"<h1>{html.escape(line[3:])}</h1>")
        elif line.startswith("### "):
            body.append(f"<h2>{html.escape(line[4:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<li>{html.escape(line[2:].replace('**', '').replace('`', ''))}</li>")
        elif line:
            body.append(f"<p>{html.escape(line.replace('**', '').replace('`', ''))}</p>")
    flush()
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>airloop ci: "
        f"{html.escape(result.usecase)}</title><style>{style}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def write_reports(result: CiResult, folder: Path) -> dict[str, str]:
    """report.md, report.html and report.json in ``folder``; their paths by kind."""
    text = markdown(result)
    paths = {
        "markdown": write_text(folder / "report.md", text),
        "html": write_text(folder / "report.html", page(result, text)),
        "json": write_json(folder / "report.json", result.to_dict()),
    }
    return {kind: str(path) for kind, path in paths.items()}
