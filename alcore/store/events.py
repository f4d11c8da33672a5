"""The journal records (events) a store writes, built from the public arguments and checked.

One builder per kind of event; each returns the payload without ``seq`` (the journal adds it)
or raises the error that names the culprit before anything is written. The reading side of
every record is :meth:`alcore.store.state.StoreState.apply`.
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .journal import dumps
from .layout import FAILURE_KINDS


def plain(obj: Any) -> Any:
    """JSON round trip: tuples become lists, numpy scalars numbers (what the file will hold)."""
    return json.loads(dumps(obj))


# ------------------------------------------------------------------------------ arguments
def check_index(index: Any, n_pool: int) -> int:
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"index must be an integer, got {index!r}")
    i = int(index)
    if not 0 <= i < n_pool:
        raise IndexError(f"index {i} is outside the pool (0..{n_pool - 1})")
    return i


def check_indices(indices: Iterable[int], n_pool: int) -> np.ndarray:
    """A 1-D int64 array of distinct pool indices (pick order kept)."""
    idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise TypeError(f"indices must be a 1-D integer array, got {idx.dtype} {idx.shape}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_pool):
        raise IndexError(f"indices outside the pool (0..{n_pool - 1})")
    if np.unique(idx).size != idx.size:
        raise ValueError("indices contain duplicates")
    return idx


def label_values(y: Any, n_outputs: int | None, index: int) -> np.ndarray:
    yv = np.asarray(y, dtype=np.float64).reshape(-1)
    if n_outputs is not None and yv.size != n_outputs:
        raise ValueError(f"label for point {index} has {yv.size} outputs, the store has "
                         f"{n_outputs}")
    if yv.size == 0:
        raise ValueError(f"label for point {index} is empty")
    return yv


def seconds(x: Any, name: str) -> float | None:
    """A time or duration in seconds; None (stored as NaN) when unknown."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number of seconds or None, got {x!r}") from None
    return None if math.isnan(v) else v


def attempts_count(a: Any) -> int:
    n = int(a)
    if n < 0:
        raise ValueError(f"attempts must be >= 0, got {a!r}")
    return n


def failure_kind(kind: str) -> str:
    if kind not in FAILURE_KINDS:
        raise ValueError(f"unknown failure kind {kind!r}; one of {', '.join(FAILURE_KINDS)}")
    return kind


def per_point(values: Iterable[Any] | None, n: int, name: str, default: Any) -> list[Any]:
    out = [default] * n if values is None else list(values)
    if len(out) != n:
        raise ValueError(f"{name} has {len(out)} entries for {n} indices")
    return out


def json_dict(value: Mapping | None, name: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
    return plain(dict(value))


# ------------------------------------------------------------------------------ records
def evaluation_fields(wall_time: Any, worker: Any, attempts: Any, submitted: Any,
                      started: Any, finished: Any) -> dict:
    """Where, when and how often a point was evaluated (shared by labels and failures)."""
    return {"wall_time": seconds(wall_time, "wall_time"), "worker": str(worker or ""),
            "attempts": attempts_count(attempts), "submitted": seconds(submitted, "submitted"),
            "started": seconds(started, "started"), "finished": seconds(finished, "finished")}


def label_event(index: int, y: np.ndarray, fields: dict) -> dict:
    return {"op": "label", "index": index, "y": y.tolist(), **fields}


def labels_event(indices: Sequence[int], Y: np.ndarray, rows: Sequence[dict]) -> dict:
    """Several labels in one record (group commit): per-point fields become lists."""
    rec: dict = {"op": "labels", "indices": list(indices), "y": Y.tolist()}
    for key in ("wall_time", "worker", "attempts", "submitted", "started", "finished"):
        rec[key] = [r[key] for r in rows]
    return rec


def failure_event(index: int, reason: str, kind: str, fields: dict) -> dict:
    return {"op": "failure", "index": index, "reason": str(reason), "kind": kind, **fields}


def request_event(indices: np.ndarray, iteration: int, scores: np.ndarray) -> dict:
    return {"op": "request", "indices": indices.tolist(), "iteration": iteration,
            "scores": scores.tolist()}


def iteration_event(iteration: int, metrics: Mapping, timings: Mapping | None,
                    info: Mapping | None) -> dict:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a dict, got {type(metrics).__name__}")
    return {"op": "iteration", "iteration": int(iteration), "metrics": plain(dict(metrics)),
            "timings": json_dict(timings, "timings"), "info": json_dict(info, "info")}


def config_event(config: Mapping) -> dict:
    return {"op": "config", "config": plain(dict(config))}
