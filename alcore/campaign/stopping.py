"""Stop conditions: whether the next iteration may start."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from alcore.campaign.records import iteration_records, labels_spent
from alcore.campaign.session import CampaignSession

__all__ = ["should_stop", "label_step_estimate"]


def label_step_estimate(session: CampaignSession) -> float | None:
    """Mean duration (s) of the acquisition label steps so far: this run's and the stored ones."""
    secs = list(session.label_seconds)
    for i, r in iteration_records(session.store).items():
        t = (r.get("timings") or {}).get("label")
        if i >= 1 and isinstance(t, (int, float)) and t > 0:
            secs.append(float(t))
    return float(np.mean(secs)) if secs else None


def should_stop(session: CampaignSession, iteration: int, *, now: datetime | None = None,
                hard_only: bool = False) -> str | None:
    """Why iteration ``iteration`` must not start (``None``: go on).

    Reasons: ``stop requested`` (``alflow stop``, a signal, a cancelled flow run), ``deadline``
    (reached, or the mean label step so far would not finish before it), ``iterations``,
    ``max_labels``, ``target_rmse``, ``pool exhausted``. In-flight labels are never abandoned:
    this is only asked before a new batch is selected. ``hard_only`` asks only about a stop
    request or a passed deadline (before finishing an iteration a killed run had started).
    ``now`` is timezone-aware, like the session's deadline (``alcore.config.resolve_deadline``).
    """
    cfg, store = session.config, session.store
    if session.halted():
        return "stop requested"
    now = now or datetime.now(timezone.utc)
    deadline = session.deadline
    if deadline is not None:
        if now >= deadline:
            return "deadline"
        est = label_step_estimate(session)
        if not hard_only and iteration >= 1 and est is not None and (deadline - now).total_seconds() < est:
            return "deadline"
    if hard_only:
        return None
    if iteration > cfg.budget.iterations:
        return "iterations"
    if cfg.budget.max_labels is not None and labels_spent(store) >= cfg.budget.max_labels:
        return "max_labels"
    if cfg.budget.target_rmse is not None and iteration >= 1:
        rmse = (iteration_records(store).get(iteration - 1, {}).get("metrics") or {}).get("rmse")
        if isinstance(rmse, (int, float)) and rmse <= cfg.budget.target_rmse:
            return "target_rmse"
    if store.unlabelled_indices().size == 0 and store.requested_indices().size == 0:
        return "pool exhausted"
    return None
