"""Reading the store's iteration records: where a campaign stands (the resume rules).

An iteration is *finished* once its record holds metrics (the ``checkpoint`` step wrote it);
it has *selected* its batch once the record lists the batch; it is *trained* once the store
holds a model checkpoint for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from alcore.store import CampaignStore

__all__ = ["Plan", "plan", "iteration_records", "finished_iterations", "labels_spent"]


def iteration_records(store: CampaignStore) -> dict[int, dict[str, Any]]:
    """``store.iterations`` as {iteration: record}; ``selected`` becomes a plain list.

    Metrics written by alflow 0.1 spelled the label count ``labeled``; it reads as ``labelled``.
    """
    out: dict[int, dict[str, Any]] = {}
    for r in store.iterations:
        rec = dict(r)
        rec["selected"] = [int(i) for i in np.asarray(rec.get("selected", []), dtype=np.int64)]
        metrics = dict(rec.get("metrics") or {})
        if "labeled" in metrics:
            metrics["labelled"] = metrics.pop("labeled")
        rec["metrics"] = metrics
        out[int(rec["iteration"])] = rec
    return out


def finished_iterations(records: dict[int, dict[str, Any]]) -> list[int]:
    """The iterations whose metrics were recorded, in order."""
    return sorted(i for i, r in records.items() if r.get("metrics"))


def labels_spent(store: CampaignStore) -> int:
    """Labels spent so far: labelled plus failed points (a failure costs an evaluation too)."""
    return int(len(store.labelled_indices()) + len(store.failed_indices()))


@dataclass(frozen=True)
class Plan:
    """Where a campaign stands: the next iteration, and which of its steps are already done."""

    iteration: int
    selected: bool
    trained: bool
    finished: tuple[int, ...]


def plan(store: CampaignStore) -> Plan:
    """The next iteration to run and what a killed run already did of it."""
    recs = iteration_records(store)
    done = finished_iterations(recs)
    it = (done[-1] + 1) if done else 0
    ckpts = store.checkpoint_iterations()
    return Plan(iteration=it, selected=bool(recs.get(it, {}).get("selected")),
                trained=bool(ckpts) and ckpts[-1] == it, finished=tuple(done))
