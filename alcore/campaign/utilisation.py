"""Worker utilisation and label rate of a campaign, from its per-evaluation times.

Why from the stored times: they are what ``alflow export`` writes (columns ``submitted``,
``started``, ``finished``, ``worker``), so anybody can recompute these figures from an export,
and a resumed campaign's figures include every earlier run's evaluations.

Definitions (one campaign, ``n`` workers):

* busy worker-seconds: the sum over evaluations of ``finished - started`` (the last attempt);
* span: from the first submission to the last finished evaluation;
* ``utilisation`` = busy / (n * span): the share of the paid-for worker time spent simulating;
* ``utilisation_while_submitting``: the same over [first submission, last start], i.e. while the
  campaign still had points to hand out. The whole-span figure also counts the unavoidable tail
  of a finite campaign (workers that finished while the last, slowest evaluations ran), which
  no scheduling can remove; this one measures only what the loop controls;
* ``labels_per_hour`` = evaluations / span.

A resumed campaign spans the time it was not running; pass ``since`` (a unix time) to measure
one run only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["utilisation", "utilisation_of_store"]


def utilisation(columns: Mapping[str, Any], n_workers: int | None = None, *,
                since: float | None = None) -> dict[str, float | int | None]:
    """Utilisation figures from per-evaluation columns ``submitted``, ``started``, ``finished``
    (unix times, NaN unknown) and ``worker`` (names).

    ``n_workers`` defaults to the number of distinct workers that ran something. Rows with an
    unknown start or end are left out (evaluations recorded before these columns existed).
    Returns ``{"evaluations", "workers", "busy_s", "span_s", "utilisation",
    "utilisation_while_submitting", "labels_per_hour"}`` (None where undefined).
    """
    sub = np.asarray(columns["submitted"], dtype=float)
    start = np.asarray(columns["started"], dtype=float)
    end = np.asarray(columns["finished"], dtype=float)
    workers = np.asarray(columns.get("worker", np.full(sub.shape, "")), dtype=str)
    ok = np.isfinite(start) & np.isfinite(end) & (end >= start)
    if since is not None:
        ok &= np.nan_to_num(start, nan=-math.inf) >= since
    sub, start, end, workers = sub[ok], start[ok], end[ok], workers[ok]
    n = int(n_workers) if n_workers else len({w for w in workers if w}) or 1
    out: dict[str, float | int | None] = {"evaluations": int(ok.sum()), "workers": n, "busy_s": None,
                                          "span_s": None, "utilisation": None,
                                          "utilisation_while_submitting": None, "labels_per_hour": None}
    if not start.size:
        return out
    t0 = float(np.nanmin(np.where(np.isfinite(sub), sub, start)))
    t_end, t_last = float(end.max()), float(start.max())
    busy = float((end - start).sum())
    span = t_end - t0
    out["busy_s"], out["span_s"] = busy, span
    if span > 0:
        out["utilisation"] = busy / (n * span)
        out["labels_per_hour"] = start.size * 3600.0 / span
    if t_last > t0:
        clipped = float((np.minimum(end, t_last) - np.minimum(start, t_last)).sum())
        out["utilisation_while_submitting"] = clipped / (n * (t_last - t0))
    return out


def utilisation_of_store(store: Any, n_workers: int | None = None, *,
                         since: float | None = None) -> dict[str, float | int | None]:
    """:func:`utilisation` of every labelled and failed evaluation of an open store."""
    idx = np.concatenate([store.labelled_indices(), store.failed_indices()])
    return utilisation({"submitted": store.submitted_times[idx], "started": store.started_times[idx],
                        "finished": store.finished_times[idx], "worker": store.workers[idx]},
                       n_workers, since=since)
