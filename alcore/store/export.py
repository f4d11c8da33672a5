"""Export of the labelled data of a store to CSV or NPZ (used by ``alflow export``).

Reads the store read-only (journal replayed in memory), so it works while a campaign runs.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from .campaign_store import CampaignStore

FORMATS = ("csv", "npz")


def _names(info: dict, key: str, n: int, prefix: str) -> list[str]:
    names = info.get(key)
    if names and len(names) == n:
        return [str(x) for x in names]
    return [f"{prefix}{j}" for j in range(n)]


def export_labelled(store_path: str | os.PathLike, out_path: str | os.PathLike,
                    format: str = "csv") -> dict:
    """Write every labelled point of the store to ``out_path``; return ``{"path", "rows",
    "format"}``.

    CSV columns: ``index, iteration, <input names>, <output names>, wall_time, worker`` (input
    and output names from the oracle info, else ``x0..``/``y0..``). NPZ arrays: ``index``,
    ``iteration``, ``X`` (n, d), ``y`` (n, k), ``wall_time``, ``worker`` (str),
    ``input_names``, ``output_names``. Rows are in pool order.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out_path)
    with CampaignStore.open(store_path, "r") as store:
        idx = store.labelled_indices()
        X = np.asarray(store.pool_X)[idx]
        Y = store.outputs[idx]
        it = store.iteration_requested[idx]
        wall = store.wall_times[idx]
        workers = store.workers[idx]
        info = store.oracle_info
        k = Y.shape[1] if Y.ndim == 2 else 0
        in_names = _names(info, "input_names", X.shape[1], "x")
        out_names = _names(info, "output_names", k, "y")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    if format == "csv":
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["index", "iteration", *in_names, *out_names, "wall_time", "worker"])
            for r in range(idx.size):
                w.writerow([int(idx[r]), int(it[r]), *map(repr, X[r].tolist()),
                            *map(repr, Y[r].tolist()), repr(float(wall[r])), workers[r]])
    else:
        with open(tmp, "wb") as fh:
            np.savez(fh, index=idx, iteration=it, X=X, y=Y, wall_time=wall,
                     worker=workers.astype(str), input_names=np.array(in_names, dtype=str),
                     output_names=np.array(out_names, dtype=str))
    os.replace(tmp, out)
    return {"path": str(out), "rows": int(idx.size), "format": format}
