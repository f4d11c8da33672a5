"""Read-only summaries of a campaign: its history (for artifacts) and ``alflow status``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alcore.campaign.records import finished_iterations, iteration_records
from alcore.campaign.session import CampaignSession

__all__ = ["history", "status"]


def history(session: CampaignSession) -> dict[str, Any]:
    """Finished iterations and label counts of an open campaign (for the Prefect artifacts)."""
    store = session.store
    recs = iteration_records(store)
    its = [{"iteration": i, "metrics": recs[i].get("metrics") or {},
            "timings": recs[i].get("timings") or {}} for i in finished_iterations(recs)]
    labelled, failed = int(len(store.labelled_indices())), int(len(store.failed_indices()))
    return {"iterations": its, "labelled": labelled, "failed": failed, "spent": labelled + failed,
            "budget": session.config.label_budget, "name": session.config.campaign.name}


def status(store_path: str | os.PathLike) -> dict[str, Any]:
    """A read-only snapshot of a store for ``alflow status`` (works while a campaign writes)."""
    from alcore.store import CampaignStore  # noqa: PLC0415

    with CampaignStore.open(Path(store_path), mode="r") as st:
        recs = iteration_records(st)
        cfg = st.config or {}
        done = finished_iterations(recs)
        per_it = [{
            "iteration": i,
            "selected": len(r.get("selected") or []),
            "finished": bool(r.get("metrics")),
            "metrics": r.get("metrics") or {},
            "timings": r.get("timings") or {},
        } for i, r in sorted(recs.items())]
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
            "mode": (cfg.get("campaign") or {}).get("mode", "batch"),
            "pool": int(st.n_pool),
            "labelled": int(len(st.labelled_indices())),
            "failed": int(len(st.failed_indices())),
            "requested": int(len(st.requested_indices())),
            "unlabelled": int(len(st.unlabelled_indices())),
            "label_budget": planned,
            "iteration": done[-1] if done else None,
            "iterations_planned": int(budget.get("iterations", 0)),
            "stop_requested": bool(st.stop_requested()),
            "best_rmse": min(rmses) if rmses else None,
            "metrics": [m["metrics"] | {"iteration": m["iteration"]} for m in per_it if m["finished"]],
            "iterations": per_it,
        }
