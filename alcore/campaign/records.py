"""The iteration records in the store: where the campaign stands, and finishing an iteration.

``plan`` reads which steps of the next iteration are already done (the resume rules of
:mod:`alcore.campaign`); ``checkpoint`` writes the record that makes an iteration finished.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

import numpy as np

from alcore.campaign.hooks import get_hooks
from alcore.campaign.runtime import _rt

__all__ = ["plan", "checkpoint"]


def _iteration_records(store: Any) -> dict[int, dict[str, Any]]:
    """``store.iterations`` as {iteration: record}; ``selected`` becomes a plain list."""
    out: dict[int, dict[str, Any]] = {}
    for r in store.iterations:
        rec = dict(r)
        rec["selected"] = [int(i) for i in np.asarray(rec.get("selected", []), dtype=np.int64)]
        out[int(rec["iteration"])] = rec
    return out


def _finished(records: dict[int, dict[str, Any]]) -> list[int]:
    return sorted(i for i, r in records.items() if r.get("metrics"))


def _spent(st: Any) -> int:
    """Labels spent so far: labelled plus failed points (a failure costs an evaluation too)."""
    return int(len(st.labelled_indices()) + len(st.failed_indices()))


def plan(store_path: str | os.PathLike) -> dict[str, Any]:
    """Where the campaign stands: the next iteration and which of its steps are already done."""
    rt = _rt(store_path)
    st = rt.store
    recs = _iteration_records(st)
    done = _finished(recs)
    it = (done[-1] + 1) if done else 0
    rec = recs.get(it, {})
    ckpts = st.checkpoint_iterations()
    ckpt = ckpts[-1] if ckpts else None
    return {
        "iteration": it,
        "selected": bool(rec.get("selected")),
        "trained": ckpt == it,
        "finished": done,
    }


def checkpoint(store_path: str | os.PathLike, iteration: int, metrics: dict[str, Any],
               timings: dict[str, float]) -> dict[str, Any]:
    """Record the iteration (metrics + step timings) and fold the journal into the HDF5 file.

    From here on the iteration is finished: a resumed run starts with the next one.
    """
    rt = _rt(store_path)
    st = rt.store
    t0 = time.perf_counter()
    clean = {k: v for k, v in metrics.items() if k != "seconds"}
    clean["at"] = datetime.now().isoformat(timespec="seconds")
    with rt.lock:
        st.record_iteration(iteration, clean, dict(timings))
        st.compact()
    out = {"iteration": iteration, "metrics": clean, "timings": dict(timings),
           "labeled": int(len(st.labelled_indices())), "failed": int(len(st.failed_indices())),
           "budget": rt.config.label_budget, "seconds": time.perf_counter() - t0}
    get_hooks().iteration_done(out)
    return out
