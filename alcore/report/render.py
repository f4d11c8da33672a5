"""Turn campaign data and figure PNGs into the report's HTML page and markdown summary.

Why separate from the figures: the text (summary numbers, per-iteration table, failures table)
is shared by both formats and testable without drawing anything. The HTML embeds every image
as a base64 data URI so the single file can be mailed or archived and still shows everything;
the markdown links the PNG files written next to it.
"""
from __future__ import annotations

import base64
import html
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from alcore.surrogate.selection_record import selection_text
from alcore.failures import stderr_tail

from .data import INITIAL, LABELLED, CampaignData
from .figures import failure_table
from .figures import format_duration as _duration


@dataclass
class FigureEntry:
    """One figure of the report: its key, caption, PNG bytes and the file name it was saved as."""

    key: str
    title: str
    caption: str
    png: bytes
    filename: str


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}"


#: The order in which alcore.campaign runs an iteration's steps (the store sorts JSON keys).
STEP_ORDER = ("select", "label", "train", "evaluate", "checkpoint")


def step_order(c: CampaignData) -> list[str]:
    """Step names found in the timings, in execution order, unknown steps last."""
    seen = {k for r in c.iterations for k in r.timings}
    return [s for s in STEP_ORDER if s in seen] + sorted(seen - set(STEP_ORDER))


def summary_rows(c: CampaignData) -> list[tuple[str, str]]:
    """Key numbers of one campaign as (label, value) rows."""
    P, d = c.pool_X.shape
    n_init = int(np.count_nonzero((c.status == LABELLED) & (c.acquired_in == INITIAL)))
    rows = [
        ("store", str(c.path)),
        ("campaign", c.name),
        ("oracle", f"{c.oracle} ({d} inputs: {', '.join(c.input_names)}; "
                   f"{len(c.output_names)} outputs: {', '.join(c.output_names)})"),
        ("strategy", c.strategy or "-"),
        ("candidate pool", f"{P} points"),
        ("labelled", f"{c.n_labelled} ({n_init} initial design, {c.n_labelled - n_init} acquired)"),
        ("failed", str(c.n_failed)),
        ("requested, not finished", str(c.n_requested)),
        ("iterations finished", str(len(c.iterations))),
    ]
    with_test = [r for r in c.iterations if r.test_rmse is not None]
    if with_test:
        for j, name in enumerate(c.output_names):
            best = min(with_test, key=lambda r: float(r.test_rmse[j]))  # type: ignore[index]
            last = with_test[-1]
            rows.append((f"test RMSE {name}",
                         f"best {_fmt(float(best.test_rmse[j]))} at {best.n_labels} labels "  # type: ignore[index]
                         f"(iteration {best.iteration}); last {_fmt(float(last.test_rmse[j]))}"))  # type: ignore[index]
    rows += surrogate_rows(c)
    wt = c.wall_time[np.isfinite(c.wall_time) & (c.status >= LABELLED)]
    if wt.size:
        rows.append(("oracle wall time", f"total {_duration(float(wt.sum()))}, median "
                                         f"{_fmt(float(np.median(wt)), 3)} s, max "
                                         f"{_fmt(float(wt.max()), 3)} s per call"))
    steps: dict[str, list[float]] = {k: [] for k in step_order(c)}
    for r in c.iterations:
        for k, v in r.timings.items():
            steps[k].append(v)
    if steps:
        rows.append(("mean time per step", ", ".join(f"{k} {_duration(float(np.mean(v)))}"
                                                     for k, v in steps.items())))
    return rows


def surrogate_rows(c: CampaignData) -> list[tuple[str, str]]:
    """Which model ``alflow predict`` would use, and the commands that use it."""
    if c.model_choice is None:
        return [("surrogate", c.model_note)]
    store = shlex.quote(str(c.path))
    return [("surrogate", c.model_choice.describe() + " (what alflow predict and "
                          "alcore.load_surrogate use by default)"),
            ("use it", f"alflow predict {store} POINTS.csv -o predictions.csv; "
                       f"alflow export-model {store} -o surrogate.onnx; in Python: "
                       f"alcore.load_surrogate({str(c.path)!r}).predict(X)")] + model_selection_rows(c)


def model_selection_rows(c: CampaignData) -> list[tuple[str, str]]:
    """The network the campaign chose (CV scores, when it was last tuned) and its std calibration."""
    if c.model_selection is None:
        return []
    model, calibration = selection_text(c.model_selection)
    return [("model", model), ("std calibration", calibration)]


def iteration_table(c: CampaignData) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-iteration table (labels, test RMSE per output, timings)."""
    steps = step_order(c)
    unc = any(r.coverage90 is not None for r in c.iterations)  # stores before issue 15 have none
    header = (["iteration", "labels", "selected"]
              + [f"test RMSE {n}" for n in c.output_names]
              + (["NLL", "90% coverage"] if unc else [])
              + [f"{s} [s]" for s in steps])
    rows = []
    for r in c.iterations:
        rm = [(_fmt(float(r.test_rmse[j])) if r.test_rmse is not None else "-")
              for j in range(len(c.output_names))]
        rows.append([str(r.iteration), str(r.n_labels), str(r.n_selected)] + rm
                    + ([_fmt(r.nll), _fmt(r.coverage90, 2)] if unc else [])
                    + [_fmt(r.timings.get(s), 3) for s in steps])
    return header, rows


# ----------------------------------------------------------------------------- markdown

def stderr_examples(c: CampaignData, table: Sequence[tuple[str, int, list[int]]]) -> list[tuple[int, str]]:
    """(point, stderr tail) of the first point of each failure group whose reason carries a
    program's stderr (``command`` oracles): the text the first line of the reason leaves out."""
    out = []
    for _, _, ix in table:
        tail = stderr_tail(c.failure_reason[ix[0]]) if ix else ""
        if tail:
            out.append((ix[0], tail))
    return out


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(s: str) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(campaigns: Sequence[CampaignData], figures: Sequence[FigureEntry]) -> str:
    """The markdown summary; images are linked by file name (they sit next to it)."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = ("alflow campaign report: " + campaigns[0].name if len(campaigns) == 1
             else f"alflow comparison report: {len(campaigns)} campaigns")
    out = [f"# {title}", "", f"Generated {now}.", ""]
    for c in campaigns:
        if len(campaigns) > 1:
            out += [f"## {c.label}: {c.name}", ""]
        out += [_md_table(["quantity", "value"], summary_rows(c)), ""]
    for f in figures:
        if not f.key.startswith("failures"):
            out += [f"## {f.title}", "", f.caption, "", f"![{f.title}]({f.filename})", ""]
    for c in campaigns:
        head = f" ({c.label})" if len(campaigns) > 1 else ""
        header, rows = iteration_table(c)
        out += [f"## Iterations{head}", ""]
        out += [_md_table(header, rows) if rows else "No finished iteration yet.", ""]
        out += [f"## Failures{head}", ""]
        table = failure_table(c)
        if table:
            out += [_md_table(["reason", "points", "pool indices (first 8)"],
                              [[r, str(n), ", ".join(map(str, ix))] for r, n, ix in table]), ""]
            for point, tail in stderr_examples(c, table):
                out += [f"stderr of point {point} (tail):", "", "```", tail, "```", ""]
            out += [f"![{f.title}]({f.filename})" for f in figures
                    if f.key == "failures" or (f.key.startswith("failures")
                                               and f.key.endswith(_slug_label(c.label)))]
            out += [""]
        else:
            out += ["No oracle call failed.", ""]
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#1d1d1f;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
.meta{color:#666;font-size:.9rem}
table{border-collapse:collapse;font-size:.88rem;margin:.6rem 0}
th,td{border:1px solid #ddd;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f4f4f6} td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1rem 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#444;font-size:.9rem;margin-top:.3rem}
nav a{margin-right:1rem}
"""


def _html_table(header: Sequence[str] | None, rows: Sequence[Sequence[str]],
                numeric: bool = True) -> str:
    h = html.escape
    parts = ["<table>"]
    if header:
        parts.append("<tr>" + "".join(f"<th>{h(str(x))}</th>" for x in header) + "</tr>")
    for row in rows:
        cells = []
        for x in row:
            s = str(x)
            cls = ' class="num"' if numeric and s.replace(".", "", 1).replace("-", "", 1).replace(
                "e", "", 1).isdigit() else ""
            cells.append(f"<td{cls}>{h(s)}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)


def _html_figure(f: FigureEntry) -> str:
    data = base64.b64encode(f.png).decode("ascii")
    return (f'<figure><img alt="{html.escape(f.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(f.caption)}</figcaption></figure>")


def _slug_label(label: str) -> str:
    from .build import _slug  # the file-name slug used for per-campaign figures
    return _slug(label)


def render_html(campaigns: Sequence[CampaignData], figures: Sequence[FigureEntry]) -> str:
    """A single self-contained HTML page: every image inline as a base64 data URI."""
    h = html.escape
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = ("alflow campaign report: " + campaigns[0].name if len(campaigns) == 1
             else f"alflow comparison report: {len(campaigns)} campaigns")
    body = [f"<h1>{h(title)}</h1>", f'<p class="meta">Generated {h(now)} from '
            + ", ".join(f"<code>{h(str(c.path))}</code>" for c in campaigns) + ".</p>"]
    main_figs = [f for f in figures if not f.key.startswith("failures")]
    fail_figs = {f.key: f for f in figures if f.key.startswith("failures")}
    body.append("<nav>" + "".join(f'<a href="#{h(f.key)}">{h(f.title)}</a>' for f in main_figs)
                + '<a href="#iterations">Iterations</a><a href="#failures">Failures</a></nav>')
    body.append('<h2 id="summary">Summary</h2>')
    for c in campaigns:
        if len(campaigns) > 1:
            body.append(f"<h3>{h(c.label)}: {h(c.name)}</h3>")
        body.append(_html_table(None, summary_rows(c), numeric=False))
    for f in main_figs:
        body.append(f'<h2 id="{h(f.key)}">{h(f.title)}</h2>' + _html_figure(f))
    body.append('<h2 id="iterations">Iterations</h2>')
    for c in campaigns:
        if len(campaigns) > 1:
            body.append(f"<h3>{h(c.label)}</h3>")
        header, rows = iteration_table(c)
        body.append(_html_table(header, rows) if rows else "<p>No finished iteration yet.</p>")
    body.append('<h2 id="failures">Failures</h2>')
    for c in campaigns:
        if len(campaigns) > 1:
            body.append(f"<h3>{h(c.label)}</h3>")
        table = failure_table(c)
        if table:
            body.append(f"<p>{c.n_failed} points failed after all retries.</p>")
            body.append(_html_table(["reason", "points", "pool indices (first 8)"],
                                    [[r, str(n), ", ".join(map(str, ix))]
                                     for r, n, ix in table]))
            for point, tail in stderr_examples(c, table):
                body.append(f"<details><summary>stderr of point {point} (tail)</summary>"
                            f"<pre>{h(tail)}</pre></details>")
            for key, f in fail_figs.items():
                if key == "failures" or key.endswith(_slug_label(c.label)):
                    body.append(_html_figure(f))
        else:
            body.append("<p>No oracle call failed.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{h(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
