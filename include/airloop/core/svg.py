"""Charts as inline SVG text, for pages written once per interval.

A monitoring report is drawn every interval of every use case: with matplotlib its figures
took most of the report's time (about a second a day, more in a freshly forked task). These
charts are plain text, scale with the page, and need no plotting library. The one figure a
run draws once (the timeline, also written as a PNG for the README) stays with matplotlib.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
FONT = 'font-family="sans-serif" font-size="10"'


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round values spanning [lo, hi] (steps of 1, 2 or 5 times a power of 10)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, value = [], first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def value_range(values: Sequence[float], pad: float = 0.0) -> tuple[float, float]:
    """The finite values' [min, max], widened by ``pad`` of its length (a flat one by 0.5)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    margin = (hi - lo) * pad
    return lo - margin, hi + margin


@dataclass
class Chart:
    """One panel: data coordinates mapped into a box, parts drawn in order, a legend on top."""

    title: str
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    width: int = 420
    height: int = 260
    x_ticks: list[tuple[float, str]] | None = None  # (value, label); default: round numbers
    y_label: str = ""
    parts: list[str] = field(default_factory=list)
    legend: list[tuple[str, str, str]] = field(default_factory=list)  # (label, colour, kind)
    left, right, top, bottom = 46, 10, 30, 34

    def px(self, x: float) -> float:
        """Horizontal position of a data value."""
        lo, hi = self.x_range
        inner = self.width - self.left - self.right
        return self.left + (x - lo) / ((hi - lo) or 1.0) * inner

    def py(self, y: float) -> float:
        """Vertical position of a data value (up is more)."""
        lo, hi = self.y_range
        inner = self.height - self.top - self.bottom
        return self.height - self.bottom - (y - lo) / ((hi - lo) or 1.0) * inner

    def bars(
        self,
        lefts: Sequence[float],
        widths: Sequence[float],
        heights: Sequence[float],
        **style: str,
    ) -> None:
        """Bars from zero, one per (left, width, height) in data units."""
        colour, label = style.get("colour", PALETTE[0]), style.get("label", "")
        base = self.py(max(self.y_range[0], 0.0))
        for left, width, height in zip(lefts, widths, heights, strict=True):
            if height is None or not math.isfinite(height):
                continue
            x0, x1, top = self.px(left), self.px(left + width), self.py(height)
            self.parts.append(
                f'<rect x="{x0:.1f}" y="{min(top, base):.1f}" width="{max(x1 - x0, 0.5):.1f}"'
                f' height="{abs(base - top):.1f}" fill="{colour}" fill-opacity="0.5"/>'
            )
        if label:
            self.legend.append((label, colour, "bar"))

    def line(
        self,
        xs: Sequence[float],
        ys: Sequence[float | None],
        colour: str,
        label: str = "",
        **how: bool,
    ) -> None:
        """A polyline with a dot at each point; a missing value breaks the line."""
        dashed, dots = how.get("dashed", False), how.get("dots", True)
        runs: list[list[tuple[float, float]]] = [[]]
        for x, y in zip(xs, ys, strict=True):
            if y is None or not math.isfinite(y):
                runs.append([])
                continue
            runs[-1].append((self.px(x), self.py(y)))
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                self.parts.append(
                    f'<polyline points="{points}" fill="none" stroke="{colour}"'
                    f' stroke-width="1.5"{dash}/>'
                )
            if dots:
                self.parts += [
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{colour}"/>' for x, y in run
                ]
        if label:
            self.legend.append((label, colour, "dashed" if dashed else "line"))

    def vline(self, x: float, colour: str) -> None:
        """A vertical mark across the panel (an event at ``x``)."""
        px = self.px(x)
        self.parts.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{self.top}" y2="{self.height - self.bottom}"'
            f' stroke="{colour}" stroke-opacity="0.5"/>'
        )

    def band(self, x0: float, x1: float, colour: str, text: str = "") -> None:
        """A shaded stretch of the x axis, labelled at its foot."""
        a, b = self.px(x0), self.px(x1)
        self.parts.append(
            f'<rect x="{a:.1f}" y="{self.top}" width="{max(b - a, 0.5):.1f}"'
            f' height="{self.height - self.top - self.bottom}" fill="{colour}"/>'
        )
        if text:
            self.parts.append(
                f'<text x="{a + 2:.1f}" y="{self.height - self.bottom - 3}" {FONT}>'
                f"{html.escape(text)}</text>"
            )

    def _axes(self) -> list[str]:
        x0, x1 = self.left, self.width - self.right
        y0, y1 = self.top, self.height - self.bottom
        out = [
            f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="#999"/>'
        ]
        for value in nice_ticks(*self.y_range):
            y = self.py(value)
            out.append(f'<line x1="{x0 - 3}" x2="{x0}" y1="{y:.1f}" y2="{y:.1f}" stroke="#999"/>')
            out.append(
                f'<text x="{x0 - 5}" y="{y + 3:.1f}" text-anchor="end" {FONT}>{_label(value)}</text>'
            )
        ticks = self.x_ticks or [(v, _label(v)) for v in nice_ticks(*self.x_range)]
        for value, text in ticks:
            x = self.px(value)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y1}" y2="{y1 + 3}" stroke="#999"/>')
            out.append(
                f'<text x="{x:.1f}" y="{y1 + 14}" text-anchor="middle" {FONT}>{html.escape(text)}</text>'
            )
        if self.y_label:
            out.append(
                f'<text x="11" y="{(y0 + y1) / 2:.1f}" transform="rotate(-90 11 {(y0 + y1) / 2:.1f})"'
                f' text-anchor="middle" {FONT}>{html.escape(self.y_label)}</text>'
            )
        return out

    def _legend(self) -> list[str]:
        out, x = [], float(self.left)
        for label, colour, kind in self.legend:
            if kind == "bar":
                out.append(
                    f'<rect x="{x:.1f}" y="17" width="10" height="8" fill="{colour}" fill-opacity="0.5"/>'
                )
            else:
                dash = ' stroke-dasharray="4 3"' if kind == "dashed" else ""
                out.append(
                    f'<line x1="{x:.1f}" x2="{x + 10:.1f}" y1="21" y2="21" stroke="{colour}" stroke-width="2"{dash}/>'
                )
            out.append(f'<text x="{x + 13:.1f}" y="25" {FONT}>{html.escape(label)}</text>')
            x += 20 + 5.5 * len(label)
        return out

    def render(self) -> str:
        """The panel as an ``<svg>`` element, its title as a tooltip and a caption."""
        body = [
            f"<title>{html.escape(self.title)}</title>",
            f'<text x="{self.left}" y="11" font-family="sans-serif" font-size="11" font-weight="bold">'
            f"{html.escape(self.title)}</text>",
            *self.parts,
            *self._axes(),
            *self._legend(),
        ]
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{self.width}"'
            f' height="{self.height}" viewBox="0 0 {self.width} {self.height}">'
            + "".join(body)
            + "</svg>"
        )


def date_ticks(lo: float, hi: float, count: int = 6) -> list[tuple[float, str]]:
    """Ticks for an axis of POSIX seconds: about ``count`` of them, labelled as dates."""
    if hi <= lo:
        return [(lo, datetime.fromtimestamp(lo, UTC).strftime("%Y-%m-%d"))]
    day = 86400.0
    step = max(day, math.ceil((hi - lo) / count / day) * day)
    first = math.ceil(lo / day) * day
    values = [first + i * step for i in range(int((hi - first) // step) + 1)]
    return [(v, datetime.fromtimestamp(v, UTC).strftime("%m-%d")) for v in values]


__all__ = ["PALETTE", "Chart", "date_ticks", "nice_ticks", "value_range"]
