"""The learning curve as a small SVG image the Prefect UI shows inside the summary artifact.

Why SVG in a ``data:`` URI: the UI renders markdown images, but a browser looking at the UI
cannot read a file on the machine that runs the campaign, and a campaign must not depend on
a web server. A data URI travels inside the artifact; SVG keeps it a few kilobytes (no
matplotlib in the flow's process). The RMSE axis is logarithmic: after a tenfold drop a linear
axis shows every later iteration as one flat line. Checked in Chromium by scripts/ui_check.py.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from html import escape

__all__ = ["learning_curve_svg", "data_uri", "log_ticks"]

_W, _H = 560, 240
_L, _R, _T, _B = 64, 16, 20, 40  # margins: left (tick labels), right, top, bottom


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values for a log axis from ``lo`` to ``hi``: powers of ten, with 2 and 5 between
    them when the range spans less than two decades."""
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1.0,) if b - a > 2 else (1.0, 2.0, 5.0)
    ticks = [m * 10.0 ** e for e in range(a, b + 1) for m in mults]
    inside = [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
    return inside or [lo, hi]


def learning_curve_svg(labels: Sequence[float], rmse: Sequence[float], *, title: str = "") -> str:
    """A line plot of ``rmse`` (log axis) against ``labels``; points with no finite positive
    RMSE are left out. Returns the SVG document as text."""
    pts = [(float(x), float(y)) for x, y in zip(labels, rmse)
           if isinstance(y, (int, float)) and math.isfinite(y) and y > 0 and math.isfinite(x)]
    if not pts:
        raise ValueError("no finite positive RMSE to plot")
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    ly0, ly1 = math.log10(min(ys)), math.log10(max(ys))
    if ly1 - ly0 < 0.3:  # at least a factor of 2 on the axis, centred
        mid = (ly0 + ly1) / 2
        ly0, ly1 = mid - 0.15, mid + 0.15
    pad = 0.05 * (ly1 - ly0)
    ly0, ly1 = ly0 - pad, ly1 + pad
    pw, ph = _W - _L - _R, _H - _T - _B

    def px(x: float) -> float:
        return _L + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return _T + (ly1 - math.log10(y)) / (ly1 - ly0) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
           f'viewBox="0 0 {_W} {_H}" font-family="sans-serif" font-size="11">',
           f'<rect width="{_W}" height="{_H}" fill="white"/>']
    for t in log_ticks(10 ** ly0, 10 ** ly1):
        y = py(t)
        out.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{_L - 6}" y="{y + 4:.1f}" text-anchor="end">{t:.3g}</text>')
    for x in _x_ticks(x0, x1):
        out.append(f'<text x="{px(x):.1f}" y="{_H - _B + 16}" text-anchor="middle">{x:g}</text>')
    out.append(f'<rect x="{_L}" y="{_T}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(pts))
    out.append(f'<path d="{path}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for x, y in pts:
        out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="#1f77b4"/>')
    out.append(f'<text x="{_L + pw / 2}" y="{_H - 6}" text-anchor="middle">labels</text>')
    out.append(f'<text x="14" y="{_T + ph / 2}" text-anchor="middle" '
               f'transform="rotate(-90 14 {_T + ph / 2})">RMSE (log)</text>')
    if title:
        out.append(f'<text x="{_L}" y="14">{escape(title)}</text>')
    out.append("</svg>")
    return "".join(out)


def _x_ticks(x0: float, x1: float, n: int = 6) -> list[float]:
    raw = (x1 - x0) / n
    step = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 5, 10):
        if raw <= m * step:
            step *= m
            break
    start = math.ceil(x0 / step) * step
    return [start + k * step for k in range(int((x1 - start) / step) + 1)]


def data_uri(svg: str) -> str:
    """``data:image/svg+xml;base64,...`` (base64: markdown renderers mangle raw ``<`` ``#``)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
