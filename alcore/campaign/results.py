"""Storing one evaluation result: the single rule both campaign loops (batch and async) follow.

An evaluation ends as one of (``oracles.evaluation``'s kinds):

* ``ok``: the label is stored at once (acknowledged, durable);
* ``setup`` (the same error for every point: wrong output shape, import error): the campaign
  ends with one line telling the user what to fix; the point stays requested;
* ``cancelled`` (never evaluated, not because of x: the cluster lost its task): nothing is
  stored, the point stays requested and is sent again;
* any other kind (``error``, ``timeout``, ``worker_died``): a failure of x, stored with its
  reason, kind, attempts and times (it cost a simulator run).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import numpy as np

from alcore.campaign.errors import CampaignSetupError, setup_error_message
from alcore.campaign.hooks import get_hooks
from alcore.campaign.session import CampaignSession

__all__ = ["Outcome", "store_result", "evaluation_times"]

log = logging.getLogger("alcore.campaign")

Outcome = Literal["labelled", "failed", "cancelled"]


def evaluation_times(r: Any) -> dict[str, float | None]:
    """When an evaluation was submitted, started and finished (unix seconds, None where
    unknown); the store keeps them for utilisation, rates and ETAs."""
    out: dict[str, float | None] = {}
    for key in ("submitted", "started", "finished"):
        v = getattr(r, key, None)
        out[key] = float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None
    return out


def store_result(session: CampaignSession, r: Any) -> Outcome:
    """Store result ``r`` of one evaluation the moment it arrives (see the module docstring)."""
    if r.kind == "setup":
        raise CampaignSetupError(setup_error_message(session, r.reason))
    store = session.store
    outcome: Outcome
    with session.lock:
        if r.ok:
            store.record_label(int(r.index), np.asarray(r.y, float), r.wall_time, r.worker,
                               attempts=int(r.attempts), **evaluation_times(r))
            outcome = "labelled"
        elif r.kind == "cancelled":
            log.warning("point %d was lost by the cluster; it stays requested", r.index)
            outcome = "cancelled"
        else:
            store.record_failure(int(r.index), r.reason or "failed", r.wall_time, r.worker,
                                 int(r.attempts), kind=r.kind, **evaluation_times(r))
            log.warning("point %d failed after %d attempt(s): %s", r.index, r.attempts, r.reason)
            outcome = "failed"
    get_hooks().label_result(bool(r.ok))
    return outcome
