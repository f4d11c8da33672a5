"""The iteration loop: run select -> label -> train -> evaluate -> checkpoint until a stop.

``drive`` takes the step callables as :class:`Steps`, so the flow can pass Prefect tasks
around the same plain functions that ``run`` calls directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from alcore.campaign.evaluation import evaluate
from alcore.campaign.hooks import _say
from alcore.campaign.labelling import label
from alcore.campaign.opening import open_campaign
from alcore.campaign.records import checkpoint, plan
from alcore.campaign.runtime import _halted, _key, _rt, close
from alcore.campaign.selection import select
from alcore.campaign.stopping import should_stop
from alcore.campaign.training import train
from alcore.config import CampaignConfig

__all__ = ["Steps", "drive", "run"]


@dataclass
class Steps:
    """The step callables the loop uses: the plain functions, or Prefect tasks around them."""

    select: Callable[..., dict[str, Any]] = select
    label: Callable[..., dict[str, Any]] = label
    train: Callable[..., dict[str, Any]] = train
    evaluate: Callable[..., dict[str, Any]] = evaluate
    checkpoint: Callable[..., dict[str, Any]] = checkpoint


def drive(store_path: str | os.PathLike, steps: Steps | None = None,
          on_iteration: Callable[[dict[str, Any]], None] | None = None,
          max_iterations: int | None = None) -> dict[str, Any]:
    """Run iterations until a stop condition; the campaign must be open (``open_campaign``).

    ``max_iterations`` caps how many iterations this call runs (benchmarks). Returns a summary
    with ``stop_reason``, the iterations run, labels and failures.
    """
    steps = steps or Steps()
    path = str(_key(store_path))
    p = plan(path)
    it = p["iteration"]
    first = it
    ran: list[int] = []
    reason: str | None = None
    if p["finished"] or p["selected"]:
        _say(f"resuming at iteration {it} (finished: {len(p['finished'])})")
    while True:
        if max_iterations is not None and len(ran) >= max_iterations:
            reason = "max_iterations"
            break
        p = plan(path)
        resuming = p["selected"]
        reason = should_stop(path, it, hard_only=resuming)
        if reason is not None:
            break
        timings: dict[str, float] = {}
        rt = _rt(path)
        if not p["trained"]:
            s = steps.select(path, it)
            timings["select"] = s["seconds"]
            if s["selected"] == 0 and not resuming:
                reason = "budget spent"
                break
            if _halted(rt):
                reason = "stop requested"
                break
            lab = steps.label(path, it)
            timings["label"] = lab["seconds"]
            if _halted(rt):  # stop at the step boundary; the resume trains on these labels
                reason = "stop requested"
                break
        tr = steps.train(path, it)
        timings["train"] = tr["seconds"]
        if _halted(rt):  # the checkpoint is saved; the resume evaluates and records it
            reason = "stop requested"
            break
        metrics = steps.evaluate(path, it)
        timings["evaluate"] = metrics.get("seconds", 0.0)
        rec = steps.checkpoint(path, it, metrics, timings)
        timings["checkpoint"] = rec["seconds"]
        ran.append(it)
        if on_iteration is not None:
            on_iteration(rec)
        it += 1
    rt = _rt(path)
    if reason not in (None, "max_iterations"):
        _say(f"stopped before iteration {it}: {reason}")
    return {
        "store": path,
        "stop_reason": reason,
        "first_iteration": first,
        "iterations_run": ran,
        "next_iteration": it,
        "labeled": int(len(rt.store.labelled_indices())),
        "failed": int(len(rt.store.failed_indices())),
    }


def run(cfg: CampaignConfig, *, steps: Steps | None = None, max_iterations: int | None = None,
        keep_open: bool = False) -> dict[str, Any]:
    """Open (or resume) and drive a campaign to its end without Prefect."""
    summary = open_campaign(cfg)
    try:
        out = drive(summary["store"], steps=steps, max_iterations=max_iterations)
    finally:
        if not keep_open:
            close(summary["store"])
    return out
