"""Read-only summaries of a campaign: its history (for artifacts) and ``alflow status``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from alcore.campaign.pool import TEST_FAILURES_KEY
from alcore.campaign.progress import campaign_progress, progress_rows, writer_running
from alcore.campaign.records import finished_iterations, iteration_records
from alcore.campaign.session import CampaignSession
from alcore.failures import group_failures
from alcore.surrogate.selection_record import model_selection, surrogate_info

__all__ = ["history", "status", "failure_report"]


def failure_report(store: Any) -> dict[str, Any]:
    """The failures of a store, for people: grouped by reason, per point, and the test set's.

    ``groups``: :func:`alcore.failures.group_failures` of the failed pool points;
    ``points``: per failed point its ``index``, ``inputs`` (by input name), ``reason`` (full
    text), ``kind``, ``attempts``, ``worker`` and the ``iteration`` that requested it;
    ``test_set``: ``{"sent", "failed", "points"}`` of the test set's labelling (failed test
    points were dropped from the test set), or None when it was not labelled by the oracle.
    """
    idx = np.asarray(store.failed_indices(), dtype=np.int64)
    reasons, kinds = store.failure_reasons[idx], store.failure_kinds[idx]
    attempts, workers = store.attempts[idx], store.workers[idx]
    requested = store.iteration_requested[idx]
    X = np.asarray(store.pool_X)[idx]
    info = store.oracle_info or {}
    names = list(info.get("input_names") or [])
    if len(names) != X.shape[1]:
        names = [f"x{j}" for j in range(X.shape[1])]
    points = [{"index": int(i), "inputs": dict(zip(names, map(float, X[n]))), "reason": str(reasons[n]),
               "kind": str(kinds[n]) or "error", "attempts": int(attempts[n]), "worker": str(workers[n]),
               "iteration": int(requested[n])} for n, i in enumerate(idx.tolist())]
    test = info.get(TEST_FAILURES_KEY)
    if test:
        test = dict(test) | {"groups": group_failures(range(len(test.get("points") or [])),
                                                      [p["reason"] for p in test.get("points") or []],
                                                      [p["kind"] for p in test.get("points") or []])}
    return {"groups": group_failures(idx, reasons, kinds), "points": points, "test_set": test or None}


def history(session: CampaignSession) -> dict[str, Any]:
    """Finished iterations (metrics, timings, info) and label counts of an open campaign (for the Prefect artifacts)."""
    store = session.store
    recs = iteration_records(store)
    its = [{"iteration": i, "metrics": recs[i].get("metrics") or {},
            "timings": recs[i].get("timings") or {}, "info": recs[i].get("info") or {}}
           for i in finished_iterations(recs)]
    fidx = store.failed_indices()
    counts = store.status_counts()
    labelled, failed = counts["labelled"], counts["failed"]
    return {"iterations": its, "labelled": labelled, "failed": failed, "spent": labelled + failed,
            "budget": session.config.label_budget, "name": session.config.campaign.name,
            "failure_groups": group_failures(fidx, store.failure_reasons[fidx], store.failure_kinds[fidx])}


def status(store_path: str | os.PathLike) -> dict[str, Any]:
    """A read-only snapshot of a store for ``alflow status`` (works while a campaign writes)."""
    from alcore.store import CampaignStore  # noqa: PLC0415

    with CampaignStore.open(Path(store_path), mode="r") as st:
        recs = iteration_records(st)
        cfg = st.config or {}
        done = finished_iterations(recs)
        counts = st.status_counts()
        per_it = [{
            "iteration": i,
            "selected": len(r.get("selected") or []),
            "finished": bool(r.get("metrics")),
            "metrics": r.get("metrics") or {},
            "timings": r.get("timings") or {},
            "model": (surrogate_info(r) or {"model_choice": {}})["model_choice"].get("name"),
        } for i, r in sorted(recs.items())]
        budget = cfg.get("budget", {})
        acq = cfg.get("acquisition", {})
        planned = int(budget.get("initial", 0)) + int(budget.get("iterations", 0)) * int(acq.get("batch_size", 0))
        if budget.get("max_labels"):
            planned = min(planned, int(budget["max_labels"]))
        rmses = [m["metrics"].get("rmse") for m in per_it if isinstance(m["metrics"].get("rmse"), (int, float))]
        pace = campaign_progress(st, budget=planned, running=writer_running(st))
        return {
            "store": str(Path(store_path).resolve()),
            "name": (cfg.get("campaign") or {}).get("name"),
            "oracle": (st.oracle_info or {}).get("name"),
            "strategy": acq.get("strategy"),
            "mode": (cfg.get("campaign") or {}).get("mode", "batch"),
            "pool": int(st.n_pool),
            **{key: counts[key] for key in ("labelled", "failed", "requested", "unlabelled")},
            "label_budget": planned,
            "iteration": done[-1] if done else None,
            "iterations_planned": int(budget.get("iterations", 0)),
            "stop_requested": bool(st.stop_requested()),
            "best_rmse": min(rmses) if rmses else None,
            "metrics": [m["metrics"] | {"iteration": m["iteration"]} for m in per_it if m["finished"]],
            "iterations": per_it,
            "progress": pace.to_dict(),  # rates, ETAs, deadline, failures by reason
            "progress_rows": progress_rows(pace),  # the same as people read it
            # the surrogate's choice, its CV scores and when it was last tuned (None: no fit recorded)
            "model": model_selection(recs.values()),
            "failures": failure_report(st),
        }
