"""Stop conditions: whether the next iteration may start, and asking a running campaign to stop."""

from __future__ import annotations

import os
from datetime import datetime

import numpy as np

from alcore.campaign.records import _iteration_records, _spent
from alcore.campaign.runtime import _key, _rt, _Runtime, _runtimes

__all__ = ["should_stop", "request_stop"]


def request_stop(store_path: str | os.PathLike) -> None:
    """Ask a campaign running in this process to stop at the next step boundary."""
    key = _key(store_path)
    rt = _runtimes.get(key)
    if rt is not None:
        rt.stop_event.set()


def _label_estimate(rt: _Runtime) -> float | None:
    """Mean duration of earlier label steps of acquisition batches (this run and stored)."""
    secs = [s for s in rt.label_seconds]
    for i, r in _iteration_records(rt.store).items():
        t = (r.get("timings") or {}).get("label")
        if i >= 1 and isinstance(t, (int, float)) and t > 0:
            secs.append(float(t))
    if not secs:
        return None
    return float(np.mean(secs))


def should_stop(store_path: str | os.PathLike, iteration: int, *,
                now: datetime | None = None, hard_only: bool = False) -> str | None:
    """Why iteration ``iteration`` must not start (``None``: go on).

    Reasons: ``stop requested`` (``alflow stop``, a cancelled flow run), ``deadline`` (reached,
    or the mean label step so far would not finish before it), ``iterations``,
    ``max_labels``, ``target_rmse``. In-flight labels are never abandoned: this is only asked
    before a new batch is selected. ``hard_only`` asks only about a stop request or a passed
    deadline (used before finishing an iteration a killed run had started).
    """
    rt = _rt(store_path)
    cfg, st = rt.config, rt.store
    if rt.stop_event.is_set() or st.stop_requested():
        return "stop requested"
    now = now or datetime.now()
    if hard_only and rt.deadline is None:
        return None
    if rt.deadline is not None:
        if now >= rt.deadline:
            return "deadline"
        if hard_only:
            return None
        est = _label_estimate(rt)
        if iteration >= 1 and est is not None and (rt.deadline - now).total_seconds() < est:
            return "deadline"
    if iteration > cfg.budget.iterations:
        return "iterations"
    if cfg.budget.max_labels is not None and _spent(st) >= cfg.budget.max_labels:
        return "max_labels"
    if cfg.budget.target_rmse is not None and iteration >= 1:
        recs = _iteration_records(st)
        prev = recs.get(iteration - 1, {}).get("metrics") or {}
        rmse = prev.get("rmse")
        if isinstance(rmse, (int, float)) and rmse <= cfg.budget.target_rmse:
            return "target_rmse"
    if int(np.sum(np.asarray(st.status) == 0)) == 0 and not len(st.requested_indices()):
        return "pool exhausted"
    return None
