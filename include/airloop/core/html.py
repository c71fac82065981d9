"""Self-contained HTML pages: figures inlined as PNG, tables with every value escaped.

Reports are opened from a file, an MLflow artifact or a mail attachment, so nothing they show
may live beside them.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from airloop.core.files import atomic_write


def figure_png(fig: Any) -> str:
    """A matplotlib figure as base64 PNG text, for a ``data:`` URL."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    return base64.b64encode(buf.getvalue()).decode()


def write_png(path: Path, fig: Any) -> Path:
    """A matplotlib figure as a PNG file (written whole or not at all)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(base64.b64decode(figure_png(fig))))


def figure_img(fig: Any, alt: str) -> str:
    """A matplotlib figure as an ``<img>`` tag that carries its own pixels."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{figure_png(fig)}">'


def html_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as an HTML table of the given columns, every value escaped."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None, or NaN
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
