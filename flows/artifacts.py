"""Prefect artifacts that show a campaign's state in the UI, updated every iteration.

Keys are stable per campaign (``<name>-summary``, ``-metrics``, ``-progress``) so the UI's
Artifacts page shows one evolving entry per campaign, with one version per flow run. Each run
creates its three artifacts once, at its start, and then *updates them in place* every
iteration: the run's Artifacts tab shows three cards instead of a new, indistinguishable card
per iteration. That tab lists a run's artifacts by id, descending, and the server draws ids at
random (uuid4), so three cards would come in a random order; :func:`_create_in_band` draws an
artifact again (create, delete) until its id falls in its band, which puts them in the fixed
order summary, metrics, progress (a few extra requests, once per run; checked in the browser).

The summary is markdown the UI renders as is: "how is it going" (labels per hour, simulator
time per label, last label, ETAs, deadline, failures by reason: :mod:`alcore.campaign.progress`),
the learning curve as an SVG image in a ``data:`` URI (a browser cannot load a local file) and
as a table with a text bar on a log scale.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Callable
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from alcore.failures import failures_markdown

_SPARKS = "▁▂▃▄▅▆▇█"


def artifact_key(name: str, what: str) -> str:
    """Prefect artifact keys allow only lowercase letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "campaign"
    return f"{slug[:60]}-{what}"


def sparkline(values: list[float | None]) -> str:
    """A unicode sparkline (higher bar = larger value); gaps for missing values."""
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    out = []
    for v in values:
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            out.append(" ")
        elif hi == lo:
            out.append(_SPARKS[len(_SPARKS) // 2])
        else:
            out.append(_SPARKS[round((v - lo) / (hi - lo) * (len(_SPARKS) - 1))])
    return "".join(out)


def _f(x: Any, fmt: str = ".4g") -> str:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return format(x, fmt)
    return "–"


def metrics_rows(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table row per finished iteration (JSON-safe, rounded for reading)."""
    rows = []
    for rec in history:
        m, t = rec.get("metrics") or {}, rec.get("timings") or {}
        row: dict[str, Any] = {"iteration": rec["iteration"], "labels": m.get("labelled")}
        for k in ("rmse", "mae", "r2", "nll", "coverage90"):
            v = m.get(k)
            row[k] = round(v, 6) if isinstance(v, (int, float)) and math.isfinite(v) else None
        row["failed"] = m.get("failed")
        # Two step times, not four: eleven columns did not fit the UI's table on a laptop
        # screen; the summary has every step's mean time.
        for k in ("label", "train"):
            v = t.get(k)
            row[f"{k}_s"] = round(v, 2) if isinstance(v, (int, float)) else None
        rows.append(row)
    return rows


def _bar(value: float | None, lo: float, hi: float, width: int = 20) -> str:
    """A plain-text bar on a log scale from ``lo`` (one block) to ``hi`` (``width`` blocks).

    Log, not linear: after a tenfold drop of the RMSE a linear bar is one block for every
    later iteration. Not a code span: the UI renders code spans as tiny dark chips.
    """
    if value is None or not math.isfinite(value) or value <= 0 or hi <= 0 or lo <= 0:
        return ""
    if hi <= lo:
        n = width
    else:
        frac = (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo))
        n = 1 + round((width - 1) * min(1.0, max(0.0, frac)))
    return "█" * n + "░" * (width - n)


def curve_markdown(rows: list[dict[str, Any]], what: str) -> str:
    """The learning curve as a markdown image (SVG data URI, log RMSE axis); "" without data."""
    from flows.curve_image import data_uri, learning_curve_svg

    pts = [(r["labels"], r["rmse"]) for r in rows
           if isinstance(r.get("labels"), (int, float)) and isinstance(r.get("rmse"), (int, float))
           and r["rmse"] > 0]
    if len(pts) < 2:
        return ""
    svg = learning_curve_svg([p[0] for p in pts], [p[1] for p in pts], title=f"{what} vs labels")
    return f"![learning curve: {what} against labels, log scale]({data_uri(svg)})"


def progress_markdown(rows: list[tuple[str, str]], dashboard: str | None = None) -> list[str]:
    """"How is it going?": the rows of :func:`alcore.campaign.progress.progress_rows` and the
    Dask dashboard link, as markdown lines (failures have their own section, by reason)."""
    lines = ["## How is it going?", "", "| Quantity | Value |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in rows]
    if dashboard:
        lines.append(f"| Dask dashboard | [{dashboard}]({dashboard}) |")
    return lines


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def surrogate_line(history: list[dict[str, Any]], store: str) -> str:
    """Which model ``alflow predict`` would use now and the command to call it (markdown).

    Every finished iteration saved its checkpoint in its train step, so the finished
    iterations are the checkpoints; the rule is ``alcore.load_surrogate``'s own.
    """
    from alcore.surrogate.choice import SurrogateError, choose_model

    try:
        choice = choose_model("best", [r["iteration"] for r in history],
                              {r["iteration"]: r.get("metrics") or {} for r in history})
    except SurrogateError:
        return "**Surrogate:** none yet (no finished iteration)  "
    quoted = shlex.quote(store)
    return (f"**Surrogate:** {choice.describe()}; use it with `alflow predict {quoted} "
            f"POINTS.csv -o predictions.csv` or `alcore.load_surrogate({store!r})`  ")


def model_lines(history: list[dict[str, Any]]) -> list[str]:
    """The surrogate's model choice (CV scores, when last tuned) and calibration (markdown)."""
    from alcore.surrogate.selection_record import model_selection, selection_text

    sel = model_selection(history)
    if sel is None:
        return []
    model, calibration = selection_text(sel)
    return [f"**Model:** {model}  ", f"**Std calibration:** {calibration}  "]


def summary_markdown(name: str, history: list[dict[str, Any]], *, spent: int, budget: int,
                     failed: int, state: str, store: str, report: str | None = None,
                     progress: list[tuple[str, str]] | None = None,
                     dashboard: str | None = None,
                     failure_groups: list[dict[str, Any]] | None = None) -> str:
    """The summary artifact. ``progress``: (quantity, value) rows of
    :func:`alcore.campaign.progress.progress_rows`; ``failure_groups``:
    :func:`alcore.failures.group_failures` of the failed pool points."""
    rows = metrics_rows(history)
    finite = [(r["rmse"], r["iteration"], r["labels"]) for r in rows if r["rmse"] is not None]
    best = min(finite) if finite else None
    last_m = (history[-1].get("metrics") or {}) if history else {}
    on = "test" if last_m.get("on", "test") == "test" else "training"
    k = len(last_m.get("rmse_per_output") or []) or 1
    what = f"{on} RMSE" + (f", mean of {k} outputs" if k > 1 else "")
    lines = [f"# Campaign `{name}`", "", f"**State:** {state}  ", f"**Store:** `{store}`  ",
             surrogate_line(history, store), *model_lines(history)]
    if report:
        lines.append(f"**Report:** `{report}` (`alflow report STORE` rewrites it)")
    if progress is not None:
        lines += [""] + progress_markdown(progress, dashboard)
    elif dashboard:
        lines.append(f"**Dask dashboard:** [{dashboard}]({dashboard})  ")
    lines += ["", "## Model", "", "| Quantity | Value |", "|---|---|",
              f"| Best {what} | "
              f"{_f(best[0]) + f' (iteration {best[1]}, {best[2]} labels)' if best else '–'} |",
              f"| Labels spent | {spent} / {budget} |",
              f"| Failed evaluations | {failed}"
              + (f" of {spent} ({100 * failed / spent:.0f}%)" if failed and spent else "") + " |",
              f"| Iterations finished | {len(rows)} (iteration 0 is the initial design) |"]
    steps = ("select", "label", "train", "evaluate")
    means = {}
    for s in steps:
        vals = [t[s] for t in ((rec.get("timings") or {}) for rec in history)
                if isinstance(t.get(s), (int, float))]
        means[s] = sum(vals) / len(vals) if vals else None
    lines += ["", "## Time per step (mean seconds per iteration)", "",
              "| " + " | ".join(steps) + " |", "|" + "---|" * len(steps),
              "| " + " | ".join(_f(means[s], ".2f") for s in steps) + " |"]
    lines += ["", f"## Learning curve ({what}, lower is better)", ""]
    image = curve_markdown(rows, what)
    if image:
        lines += [image, ""]
    positive = [r["rmse"] for r in rows if r["rmse"] is not None and r["rmse"] > 0]
    lo, top = (min(positive), max(positive)) if positive else (0.0, 0.0)
    lines += [f"Bars: log scale, one block = {_f(lo)}, full = {_f(top)}.", ""] if positive else []
    per_out = any((rec.get("metrics") or {}).get("rmse_per_output") for rec in history) and k > 1
    head = "| iteration | labels | RMSE | |" + (" RMSE per output |" if per_out else "") \
        + " MAE | R² | NLL | 90% coverage |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for rec, r in zip(history, rows):
        cells = [str(r["iteration"]), str(r["labels"]), _f(r["rmse"]), _bar(r["rmse"], lo, top)]
        if per_out:
            po = (rec.get("metrics") or {}).get("rmse_per_output") or []
            cells.append(" / ".join(_f(v) for v in po))
        cells += [_f(r["mae"]), _f(r["r2"], ".4f"), _f(r["nll"]), _f(r["coverage90"], ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
    if failure_groups:
        lines += ["", f"## Failures by reason ({failed} points; `alflow status` lists them)", "",
                  *failures_markdown(failure_groups)]
    return "\n".join(lines) + "\n"


class CampaignArtifacts:
    """Creates the three artifacts once per flow run, in a fixed order, and updates them in
    place every iteration (``update_artifact``: the key's latest version changes with it)."""

    def __init__(self, name: str, budget: int):
        self.name = name
        self.budget = max(int(budget), 1)
        self._progress_id: UUID | None = None
        self._metrics_id: UUID | None = None
        self._summary_id: UUID | None = None

    def progress(self, spent: int) -> None:
        pct = max(0.0, min(100.0, 100.0 * spent / self.budget))
        desc = f"{self.name}: {spent} of {self.budget} labels spent"
        if self._progress_id is None:
            self._progress_id = _create_in_band(lambda: create_progress_artifact(
                pct, key=artifact_key(self.name, "progress"), description=desc), *_BANDS["progress"])
        else:
            update_progress_artifact(self._progress_id, pct, description=desc)

    def update(self, history: list[dict[str, Any]], *, spent: int, failed: int, state: str,
               store: str, report: str | None = None, progress: list[tuple[str, str]] | None = None,
               dashboard: str | None = None,
               failure_groups: list[dict[str, Any]] | None = None) -> None:
        """Refresh all three (create them on the first call: progress, metrics, summary)."""
        self.progress(spent)
        rows = metrics_rows(history)
        last = rows[-1]["iteration"] if rows else None
        on = (history[-1].get("metrics") or {}).get("on", "test") if history else "test"
        table_desc = (f"Iterations 0-{last}: {on} metrics ({spent}/{self.budget} labels)" if rows
                      else f"{on} metrics per iteration (none finished yet)")
        after = f"After iteration {last}" if last is not None else "Before iteration 0"
        md = summary_markdown(self.name, history, spent=spent, budget=self.budget, failed=failed,
                              state=state, store=store, report=report, progress=progress,
                              dashboard=dashboard, failure_groups=failure_groups)
        md_desc = f"{after}: {state} ({spent}/{self.budget} labels)"
        if self._metrics_id is None:
            self._metrics_id = _create_in_band(lambda: create_table_artifact(
                rows, key=artifact_key(self.name, "metrics"), description=table_desc), *_BANDS["metrics"])
        else:
            _update(self._metrics_id, json.dumps(rows), table_desc)
        if self._summary_id is None:
            self._summary_id = _create_in_band(lambda: create_markdown_artifact(
                md, key=artifact_key(self.name, "summary"), description=md_desc), *_BANDS["summary"])
        else:
            _update(self._summary_id, md, md_desc)


def _update(artifact_id: UUID, data: str, description: str) -> None:
    """Replace an artifact's data and description (and its key's latest version with it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactUpdate

    with get_client(sync_client=True) as client:
        client.update_artifact(artifact_id=artifact_id,
                               artifact=ArtifactUpdate(data=data, description=description))


#: First hex digit of each artifact's id: the run's Artifacts tab sorts by id, descending.
_BANDS: dict[str, tuple[str, str]] = {"summary": ("b", "g"), "metrics": ("5", "b"), "progress": ("0", "5")}


def _create_in_band(create: Callable[[], UUID], lo: str, hi: str, tries: int = 40) -> UUID:
    """Create an artifact, drawing it again until ``lo <= str(id) < hi`` (about 3 tries).

    Why: the UI lists a run's artifacts by id and the server draws ids at random; this fixes
    their order on screen. After ``tries`` the last one is kept (the order is cosmetic).
    """
    from prefect.client.orchestration import get_client

    artifact_id = create()
    with get_client(sync_client=True) as client:
        for _ in range(tries):
            if lo <= str(artifact_id)[0] < hi:
                break
            client.delete_artifact(artifact_id)
            artifact_id = create()
    return artifact_id
