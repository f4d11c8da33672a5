"""The ``label`` step: send the requested points to the oracle and store each result on arrival."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from alcore.campaign.hooks import get_hooks
from alcore.campaign.runtime import _get_dispatcher, _get_oracle, _halted, _rt

__all__ = ["label"]

log = logging.getLogger("alcore.campaign")


def label(store_path: str | os.PathLike, iteration: int) -> dict[str, Any]:
    """Send every requested-but-unlabelled point to the oracle; store each result on arrival.

    Points requested by a killed run are sent again; labelled points never are (the store's
    status is the truth). A stop request (``alflow stop``, a cancelled flow run) ends the
    batch early: every result that arrived is stored, the rest stay requested for the resume.
    A passed deadline does not: a batch is only started when it is expected to finish.
    """
    rt = _rt(store_path)
    st = rt.store
    t0 = time.perf_counter()
    pending = np.asarray(st.requested_indices(), dtype=np.int64)
    get_hooks().phase("label", iteration, int(pending.size))
    ok = failed = 0
    stopped = False
    if pending.size:
        oracle = _get_oracle(rt)
        disp = _get_dispatcher(rt)
        X = np.asarray(st.pool_X)[pending]
        for r in disp.evaluate(oracle, X, pending):
            with rt.lock:
                if r.ok:
                    st.record_label(int(r.index), np.asarray(r.y, float), r.wall_time, r.worker)
                    ok += 1
                else:
                    st.record_failure(int(r.index), r.reason or "failed", r.wall_time, r.worker,
                                      int(r.attempts))
                    failed += 1
                    log.warning("point %d failed after %d attempt(s): %s", r.index, r.attempts, r.reason)
            get_hooks().label_result(bool(r.ok))
            if _halted(rt):
                stopped = True  # leaving the loop cancels the evaluations still in flight
                break
    seconds = time.perf_counter() - t0
    if pending.size and not stopped:
        rt.label_seconds.append(seconds)
    out = {"iteration": iteration, "sent": int(pending.size), "labeled": ok, "failed": failed,
           "stopped": stopped, "seconds": seconds}
    get_hooks().phase_done("label", iteration, out)
    return out
