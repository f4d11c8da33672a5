"""Read-only summaries of a campaign: its history (for artifacts) and ``alflow status``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from alcore.campaign.records import _finished, _iteration_records
from alcore.campaign.runtime import _rt

__all__ = ["history", "status"]


def history(store_path: str | os.PathLike) -> dict[str, Any]:
    """Finished iterations and label counts of a campaign open in this process (for artifacts)."""
    rt = _rt(store_path)
    st = rt.store
    recs = _iteration_records(st)
    its = [{"iteration": i, "metrics": recs[i].get("metrics") or {},
            "timings": recs[i].get("timings") or {}} for i in _finished(recs)]
    labeled, failed = int(len(st.labelled_indices())), int(len(st.failed_indices()))
    return {"iterations": its, "labeled": labeled, "failed": failed, "spent": labeled + failed,
            "budget": rt.config.label_budget, "name": rt.config.campaign.name}


def status(store_path: str | os.PathLike) -> dict[str, Any]:
    """A read-only snapshot of a store for ``alflow status`` (works while a campaign writes)."""
    from alcore.store import CampaignStore  # noqa: PLC0415

    with CampaignStore.open(Path(store_path), mode="r") as st:
        recs = _iteration_records(st)
        cfg = st.config or {}
        done = _finished(recs)
        stat = np.asarray(st.status)
        per_it = []
        for i in sorted(recs):
            r = recs[i]
            per_it.append({
                "iteration": i,
                "selected": len(r.get("selected") or []),
                "finished": bool(r.get("metrics")),
                "metrics": r.get("metrics") or {},
                "timings": r.get("timings") or {},
            })
        budget = cfg.get("budget", {})
        acq = cfg.get("acquisition", {})
        planned = int(budget.get("initial", 0)) + int(budget.get("iterations", 0)) * int(acq.get("batch_size", 0))
        if budget.get("max_labels"):
            planned = min(planned, int(budget["max_labels"]))
        rmses = [m["metrics"].get("rmse") for m in per_it if isinstance(m["metrics"].get("rmse"), (int, float))]
        return {
            "store": str(Path(store_path).resolve()),
            "name": (cfg.get("campaign") or {}).get("name"),
            "oracle": (st.oracle_info or {}).get("name"),
            "strategy": acq.get("strategy"),
            "pool": int(stat.size),
            "labeled": int(np.sum(stat == 2)),
            "failed": int(np.sum(stat == 3)),
            "requested": int(np.sum(stat == 1)),
            "unlabeled": int(np.sum(stat == 0)),
            "label_budget": planned,
            "iteration": done[-1] if done else None,
            "iterations_planned": int(budget.get("iterations", 0)),
            "stop_requested": bool(st.stop_requested()),
            "best_rmse": min(rmses) if rmses else None,
            "metrics": [m["metrics"] | {"iteration": m["iteration"]} for m in per_it if m["finished"]],
            "iterations": per_it,
        }
