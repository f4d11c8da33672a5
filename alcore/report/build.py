"""``write_report``: read one or several stores, draw the figures, write HTML + PNGs + markdown.

Why one entry point: ``alflow report STORE...`` and the flow's end-of-campaign step both need
the same files in the same place; callers get back a ``{name: path}`` dict to print or to link.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from . import figures as F
from .data import CampaignData, load_campaign
from .render import FigureEntry, render_html, render_markdown

StorePaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def _as_paths(store_path: StorePaths) -> list[Path]:
    if isinstance(store_path, (str, os.PathLike)):
        paths = [Path(store_path)]
    else:
        paths = [Path(p) for p in store_path]
    if not paths:
        raise ValueError("write_report: no store path given")
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"write_report: store {p} does not exist")
    return paths


def default_out_dir(paths: Sequence[Path]) -> Path:
    """``<store>_report/`` next to a single store, ``comparison_report/`` next to the first."""
    if len(paths) == 1:
        return paths[0].with_name(paths[0].stem + "_report")
    return paths[0].parent / "comparison_report"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "campaign"


def build_figures(campaigns: Sequence[CampaignData]) -> list[tuple[str, str, str, Figure, str]]:
    """(key, title, caption, figure, file name) for every figure of the report."""
    multi = len(campaigns) > 1
    out: list[tuple[str, str, str, Figure, str]] = [
        ("learning_curve", "Learning curve",
         "Test RMSE of the model after each iteration against the number of labelled points it "
         "was trained on, one panel per output" + (", one line per strategy." if multi else "."),
         F.learning_curve(campaigns), "learning_curve.png"),
        ("labels_over_time", "Labels over time",
         "Cumulative labelled points after each iteration's labelling step against elapsed "
         "campaign time; a flat stretch is time spent training and selecting.",
         F.labels_over_time(campaigns), "labels_over_time.png"),
    ]
    for c in campaigns:
        suffix = f"_{_slug(c.label)}" if multi else ""
        out.append((f"input_space{suffix}", "Where the labels went" + (f" ({c.label})" if multi
                                                                         else ""),
                    "Pairwise projections of the candidate pool (grey) over the most important "
                    "inputs: the initial design (open squares) and the points each iteration "
                    "acquired (coloured by iteration); red crosses failed.",
                    F.input_space(c), f"input_space{suffix}.png"))
    out.append(("oracle_wall_time", "Oracle wall time",
                "Histogram of the wall time of each oracle call (labelled and failed points), "
                "with median and 95th percentile.",
                F.wall_time_histogram(campaigns), "oracle_wall_time.png"))
    for c in campaigns:
        chart = F.failures_chart(c)
        if chart is not None:
            suffix = f"_{_slug(c.label)}" if multi else ""
            out.append((f"failures{suffix}", "Failures" + (f" ({c.label})" if multi else ""),
                        "Oracle calls that failed after all retries, by reason.",
                        chart, f"failures{suffix}.png"))
    return out


def write_report(store_path: StorePaths, out_dir: str | os.PathLike[str] | None = None
                 ) -> dict[str, Path]:
    """Write the campaign report for one store (or a comparison of several) into ``out_dir``.

    Writes ``report.html`` (self-contained: images embedded as base64), ``report.md`` (links
    the PNGs) and one PNG per figure. Returns ``{"html": ..., "markdown": ..., <figure key>:
    png path, ...}``. Stores are opened read-only, so this works while a campaign runs.
    """
    paths = _as_paths(store_path)
    campaigns = [load_campaign(p) for p in paths]
    out = Path(out_dir) if out_dir is not None else default_out_dir(paths)
    out.mkdir(parents=True, exist_ok=True)

    written: dict[str, Path] = {}
    entries: list[FigureEntry] = []
    for key, title, caption, fig, filename in build_figures(campaigns):
        path = F.save_png(fig, out / filename)
        written[key] = path
        entries.append(FigureEntry(key=key, title=title, caption=caption,
                                   png=path.read_bytes(), filename=filename))

    html_path = out / "report.html"
    html_path.write_text(render_html(campaigns, entries), encoding="utf-8")
    md_path = out / "report.md"
    md_path.write_text(render_markdown(campaigns, entries), encoding="utf-8")
    written["html"] = html_path
    written["markdown"] = md_path
    return written
