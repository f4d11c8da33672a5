"""Prefect artifacts that show a campaign's state in the UI, updated every iteration.

Keys are stable per campaign (``<name>-metrics``, ``-progress``, ``-summary``) so the UI's
Artifacts page shows one evolving entry per campaign, with history as versions. The summary is
markdown the UI renders as is: the learning curve as a table and a unicode sparkline (no image
links, which the UI could not load from a local file).
"""

from __future__ import annotations

import math
import re
import shlex
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
        for k in ("rmse", "mae", "r2", "nll"):
            v = m.get(k)
            row[k] = round(v, 6) if isinstance(v, (int, float)) and math.isfinite(v) else None
        row["failed"] = m.get("failed")
        for k in ("select", "label", "train", "evaluate"):
            v = t.get(k)
            row[f"{k}_s"] = round(v, 2) if isinstance(v, (int, float)) else None
        rows.append(row)
    return rows


def _bar(value: float | None, top: float, width: int = 20) -> str:
    """A plain-text bar (not a code span: the UI renders code spans as tiny dark chips)."""
    if value is None or not math.isfinite(value) or top <= 0:
        return ""
    n = max(1, round(width * value / top))
    return "█" * n + "░" * (width - n)


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


def summary_markdown(name: str, history: list[dict[str, Any]], *, spent: int, budget: int,
                     failed: int, state: str, store: str, report: str | None = None,
                     failure_groups: list[dict[str, Any]] | None = None) -> str:
    rows = metrics_rows(history)
    finite = [(r["rmse"], r["iteration"], r["labels"]) for r in rows if r["rmse"] is not None]
    best = min(finite) if finite else None
    last_m = (history[-1].get("metrics") or {}) if history else {}
    on = "test" if last_m.get("on", "test") == "test" else "training"
    k = len(last_m.get("rmse_per_output") or []) or 1
    what = f"{on} RMSE" + (f", mean of {k} outputs" if k > 1 else "")
    lines = [f"# Campaign `{name}`", "", f"**State:** {state}  ", f"**Store:** `{store}`  ",
             surrogate_line(history, store)]
    if report:
        lines.append(f"**Report:** `{report}` (`alflow report STORE` rewrites it)")
    lines += ["", "| Quantity | Value |", "|---|---|",
              f"| Best {what} | "
              f"{_f(best[0]) + f' (iteration {best[1]}, {best[2]} labels)' if best else '–'} |",
              f"| Labels spent | {spent} / {budget} |",
              f"| Failed evaluations | {failed}"
              + (f" of {spent} ({100 * failed / spent:.0f}%)" if failed and spent else "") + " |",
              f"| Iterations finished | {len(rows)} (iteration 0 is the initial design) |"]
    steps = ("select", "label", "train", "evaluate")
    means = {}
    for s in steps:
        vals = [r[f"{s}_s"] for r in rows if isinstance(r.get(f"{s}_s"), (int, float))]
        means[s] = sum(vals) / len(vals) if vals else None
    lines += ["", "## Time per step (mean seconds per iteration)", "",
              "| " + " | ".join(steps) + " |", "|" + "---|" * len(steps),
              "| " + " | ".join(_f(means[s], ".2f") for s in steps) + " |"]
    lines += ["", f"## Learning curve ({what}, lower is better)", ""]
    top = max((r["rmse"] for r in rows if r["rmse"] is not None), default=0.0)
    per_out = any((rec.get("metrics") or {}).get("rmse_per_output") for rec in history) and k > 1
    head = "| iteration | labels | RMSE | |" + (" RMSE per output |" if per_out else "") \
        + " MAE | R² | NLL |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for rec, r in zip(history, rows):
        cells = [str(r["iteration"]), str(r["labels"]), _f(r["rmse"]), _bar(r["rmse"], top)]
        if per_out:
            po = (rec.get("metrics") or {}).get("rmse_per_output") or []
            cells.append(" / ".join(_f(v) for v in po))
        cells += [_f(r["mae"]), _f(r["r2"], ".4f"), _f(r["nll"])]
        lines.append("| " + " | ".join(cells) + " |")
    if failure_groups:
        lines += ["", f"## Failures by reason ({failed} points; `alflow status` lists them)", "",
                  *failures_markdown(failure_groups)]
    return "\n".join(lines) + "\n"


class CampaignArtifacts:
    """Creates the three artifacts once per flow run and refreshes them every iteration."""

    def __init__(self, name: str, budget: int):
        self.name = name
        self.budget = max(int(budget), 1)
        self._progress_id: UUID | None = None

    def progress(self, spent: int) -> None:
        pct = max(0.0, min(100.0, 100.0 * spent / self.budget))
        desc = f"{self.name}: {spent} of {self.budget} labels spent"
        if self._progress_id is None:
            self._progress_id = create_progress_artifact(
                pct, key=artifact_key(self.name, "progress"), description=desc)
        else:
            update_progress_artifact(self._progress_id, pct, description=desc)

    def update(self, history: list[dict[str, Any]], *, spent: int, failed: int, state: str,
               store: str, report: str | None = None,
               failure_groups: list[dict[str, Any]] | None = None) -> None:
        self.progress(spent)
        rows = metrics_rows(history)
        # The run's Artifacts tab lists every version of a key as a card with the same title,
        # in no useful order, and cuts the description after ~45 characters: the first words
        # of the description must tell the versions apart.
        last = rows[-1]["iteration"] if rows else None
        after = f"After iteration {last}" if last is not None else "Before iteration 0"
        if rows:
            on = (history[-1].get("metrics") or {}).get("on", "test")
            create_table_artifact(rows, key=artifact_key(self.name, "metrics"),
                                  description=f"Iterations 0-{last}: {on} metrics "
                                              f"({spent}/{self.budget} labels)")
        create_markdown_artifact(
            summary_markdown(self.name, history, spent=spent, budget=self.budget, failed=failed,
                             state=state, store=store, report=report, failure_groups=failure_groups),
            key=artifact_key(self.name, "summary"),
            description=f"{after}: {state} ({spent}/{self.budget} labels)",
        )
