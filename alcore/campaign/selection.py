"""The ``select`` step: choose an iteration's batch and mark it requested in the store.

Iteration 0 draws the random initial design; later iterations ask the configured
acquisition strategy (:mod:`alcore.strategies`) with the previous iteration's model.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from alcore.campaign.hooks import get_hooks
from alcore.campaign.records import _iteration_records, _spent
from alcore.campaign.runtime import _rt
from alcore.campaign.training import _current_model

__all__ = ["select"]


def select(store_path: str | os.PathLike, iteration: int) -> dict[str, Any]:
    """Choose iteration ``iteration``'s batch and mark it requested (durably) in the store.

    Iteration 0 draws the random initial design. A batch already selected for this iteration
    (a resumed run) is kept as it is. The batch is cut to the label budget that is left.
    """
    rt = _rt(store_path)
    t0 = time.perf_counter()
    get_hooks().phase("select", iteration)
    cfg, st = rt.config, rt.store
    with rt.lock:
        recs = _iteration_records(st)
        if recs.get(iteration, {}).get("selected"):
            n = len(recs[iteration]["selected"])
            out = {"iteration": iteration, "selected": n, "resumed": True,
                   "seconds": time.perf_counter() - t0}
            get_hooks().phase_done("select", iteration, out)
            return out
        status = np.asarray(st.status)
        unl = np.flatnonzero(status == 0)
        want = cfg.budget.initial if iteration == 0 else cfg.acquisition.batch_size
        if cfg.budget.max_labels is not None:
            want = min(want, cfg.budget.max_labels - _spent(st))
        want = min(want, unl.size)
        if want <= 0:
            out = {"iteration": iteration, "selected": 0, "resumed": False,
                   "seconds": time.perf_counter() - t0}
            get_hooks().phase_done("select", iteration, out)
            return out
        strategy = "initial" if iteration == 0 else cfg.acquisition.strategy
        if iteration == 0:
            rng = np.random.default_rng(cfg.campaign.seed + 1)
            picks = rng.choice(unl, size=want, replace=False)
            scores = np.full(want, np.nan)
        else:
            from alcore import strategies  # noqa: PLC0415

            model = _current_model(rt, iteration - 1)
            lab = st.labelled_indices()
            pool_X = np.asarray(st.pool_X)
            ctx = strategies.AcquisitionContext(
                model=model,
                X_train=pool_X[lab],
                X_pool=pool_X[unl],
                batch_size=want,
                n_samples=cfg.acquisition.samples,
                reg=cfg.acquisition.reg,
                seed=cfg.campaign.seed * 100_003 + iteration,
                # No X_target: the held-out test inputs must not steer what gets labelled;
                # nngp_ivr then integrates the variance over the pool.
                X_target=None,
            )
            sel = strategies.select(cfg.acquisition.strategy, ctx, **cfg.acquisition.params)
            local = np.asarray(sel.indices, dtype=int)
            picks = unl[local]
            scores = np.asarray(sel.scores, dtype=float)
        st.mark_requested(np.asarray(picks, dtype=np.int64), iteration, scores)
    out = {"iteration": iteration, "selected": int(len(picks)), "strategy": strategy,
           "resumed": False, "seconds": time.perf_counter() - t0}
    get_hooks().phase_done("select", iteration, out)
    return out
