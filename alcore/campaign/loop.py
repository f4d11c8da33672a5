"""The iteration loop: ``select → label → train → evaluate → checkpoint`` until a stop.

``drive`` takes the step callables as :class:`Steps`, so the flow can pass Prefect tasks
around the same plain functions that ``run`` calls directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alcore.campaign import steps as plain
from alcore.campaign.hooks import say
from alcore.campaign.records import plan
from alcore.campaign.session import CampaignSession, open_campaign
from alcore.campaign.stopping import should_stop
from alcore.config import CampaignConfig

__all__ = ["Steps", "drive", "run"]

Step = Callable[..., dict[str, Any]]


@dataclass
class Steps:
    """The step callables the loop uses: the plain functions, or Prefect tasks around them.

    Each is called as ``step(session, iteration)`` (``checkpoint`` also gets the metrics and
    the step timings) and returns the step's summary dict.
    """

    select: Step = plain.select
    label: Step = plain.label
    train: Step = plain.train
    evaluate: Step = plain.evaluate
    checkpoint: Step = plain.checkpoint


def drive(session: CampaignSession, steps: Steps | None = None,
          on_iteration: Callable[[dict[str, Any]], None] | None = None,
          max_iterations: int | None = None) -> dict[str, Any]:
    """Run iterations until a stop condition.

    ``max_iterations`` caps how many iterations this call runs (benchmarks). Returns a summary
    with ``stop_reason``, the iterations run, labels and failures.
    """
    steps = steps or Steps()
    start = plan(session.store)
    it = start.iteration
    ran: list[int] = []
    reason: str | None = None
    interrupted: str | None = None  # the step after which a stop request ended an iteration
    if start.finished or start.selected:
        say(f"resuming at iteration {it} (finished: {len(start.finished)})")
    while True:
        if max_iterations is not None and len(ran) >= max_iterations:
            reason = "max_iterations"
            break
        p = plan(session.store)
        reason = should_stop(session, it, hard_only=p.selected)
        if reason is not None:
            break
        timings: dict[str, float] = {}
        if not p.trained:
            s = steps.select(session, it)
            timings["select"] = s["seconds"]
            if s["selected"] == 0 and not p.selected:
                reason = "budget spent"
                break
            if session.halted():
                reason, interrupted = "stop requested", "select"
                break
            timings["label"] = steps.label(session, it)["seconds"]
            if session.halted():  # stop at the step boundary; the resume trains on these labels
                reason, interrupted = "stop requested", "label"
                break
        timings["train"] = steps.train(session, it)["seconds"]
        if session.halted():  # the checkpoint is saved; the resume evaluates and records it
            reason, interrupted = "stop requested", "train"
            break
        ev = steps.evaluate(session, it)
        timings["evaluate"] = ev["seconds"]
        rec = steps.checkpoint(session, it, ev["metrics"], timings)
        timings["checkpoint"] = rec["seconds"]
        ran.append(it)
        if on_iteration is not None:
            on_iteration(rec)
        it += 1
    if interrupted is not None:
        say(f"stopped in iteration {it} after its {interrupted} step: {reason} "
            "(the same command resumes it)")
    elif reason not in (None, "max_iterations"):
        say(f"stopped before iteration {it}: {reason}")
    return {
        "store": str(session.store_path),
        "stop_reason": reason,
        "first_iteration": start.iteration,
        "iterations_run": ran,
        "next_iteration": it,
        **{key: n for key, n in session.store.status_counts().items() if key in ("labelled", "failed")},
    }


def run(cfg: CampaignConfig, *, steps: Steps | None = None,
        max_iterations: int | None = None) -> dict[str, Any]:
    """Open (or resume) and drive a campaign to its end without Prefect.

    ``[campaign] mode = "async"`` runs :func:`alcore.campaign.async_loop.run_async` instead
    (``steps`` and ``max_iterations`` are batch-mode arguments)."""
    if cfg.campaign.mode == "async":
        from alcore.campaign.async_loop import run_async  # noqa: PLC0415

        return run_async(cfg)
    with open_campaign(cfg) as session:
        return drive(session, steps=steps, max_iterations=max_iterations)
