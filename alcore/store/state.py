"""The in-memory state of a store and the pure logic that applies events to it.

The same ``apply_*`` functions run for a live call (after its journal record is durable) and
for journal replay on open, so a replayed store is exactly the store that acknowledged the
events. Dirty sets record what changed since the last fold so that compaction rewrites only
what it must. Records written before a field existed simply lack its key; applying them
leaves that field at its "unknown" value (NaN, "", unchanged attempts).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .layout import StoreStatus


@dataclass
class IterationRecord:
    """What the store knows about one iteration."""

    selected: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    metrics: dict | None = None
    timings: dict | None = None
    info: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """An iteration is finished once ``record_iteration`` stored its metrics."""
        return self.metrics is not None


def _f(x: Any) -> float:
    return np.nan if x is None else float(x)


@dataclass
class StoreState:
    """Everything a store holds except checkpoint tensors (those are read on demand).

    Per-point arrays have P rows; the string columns are object arrays of ``str``.
    """

    store_id: bytes
    meta: dict
    config: dict
    oracle_info: dict
    seeds: dict
    pool_X: np.ndarray
    status: np.ndarray  # int8 StoreStatus codes
    y: np.ndarray | None  # (P, k), None while k is unknown
    iteration_requested: np.ndarray  # int32, -1 never requested
    request_score: np.ndarray
    wall_time: np.ndarray
    attempts: np.ndarray  # int32
    submitted: np.ndarray  # unix seconds, NaN unknown
    started: np.ndarray
    finished: np.ndarray
    worker: np.ndarray
    failure_reason: np.ndarray
    failure_kind: np.ndarray
    test_X: np.ndarray | None = None
    test_y: np.ndarray | None = None
    iterations: dict[int, IterationRecord] = field(default_factory=dict)
    checkpoint_iterations: list[int] = field(default_factory=list)
    folded_seq: int = 0
    last_seq: int = 0
    duplicates_ignored: int = 0
    # What changed since the HDF5 file was last written:
    dirty_rows: set[int] = field(default_factory=set)
    dirty_iterations: set[int] = field(default_factory=set)
    dirty_config: bool = False
    pending_checkpoints: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    @staticmethod
    def empty_columns(P: int) -> dict[str, np.ndarray]:
        """Fresh per-point columns (everything unknown) keyed by attribute name."""
        return {
            "status": np.full(P, StoreStatus.UNLABELLED, np.int8),
            "iteration_requested": np.full(P, -1, np.int32),
            "request_score": np.full(P, np.nan), "wall_time": np.full(P, np.nan),
            "attempts": np.zeros(P, np.int32), "submitted": np.full(P, np.nan),
            "started": np.full(P, np.nan), "finished": np.full(P, np.nan),
            "worker": np.array([""] * P, dtype=object),
            "failure_reason": np.array([""] * P, dtype=object),
            "failure_kind": np.array([""] * P, dtype=object),
        }

    @classmethod
    def new(cls, *, store_id: bytes, meta: dict, config: dict, oracle_info: dict, seeds: dict,
            pool_X: np.ndarray, n_outputs: int | None, test_X: np.ndarray | None,
            test_y: np.ndarray | None) -> "StoreState":
        P = pool_X.shape[0]
        return cls(store_id=store_id, meta=meta, config=config, oracle_info=oracle_info,
                   seeds=seeds, pool_X=pool_X,
                   y=None if n_outputs is None else np.full((P, n_outputs), np.nan),
                   test_X=test_X, test_y=test_y, **cls.empty_columns(P))

    @property
    def n_pool(self) -> int:
        return int(self.pool_X.shape[0])

    @property
    def n_outputs(self) -> int | None:
        return None if self.y is None else int(self.y.shape[1])

    @property
    def dirty(self) -> bool:
        return bool(self.dirty_rows or self.dirty_iterations or self.dirty_config
                    or self.pending_checkpoints or self.last_seq != self.folded_seq)

    def clear_dirty(self) -> None:
        self.dirty_rows.clear()
        self.dirty_iterations.clear()
        self.dirty_config = False
        self.pending_checkpoints.clear()
        self.folded_seq = self.last_seq

    def counts(self) -> dict[StoreStatus, int]:
        """Number of points per status."""
        n = np.bincount(self.status.astype(np.int64), minlength=len(StoreStatus))
        return {s: int(n[s]) for s in StoreStatus}

    # ----------------------------------------------------------------- event application
    def apply(self, rec: dict) -> bool:
        """Apply one journal record; False when it was a duplicate that changed nothing."""
        op = rec["op"]
        self.last_seq = max(self.last_seq, int(rec.get("seq", self.last_seq)))
        if op == "label":
            return self.apply_label(rec["index"], rec["y"], rec)
        if op == "labels":  # a batch from record_labels: one record, one fsync
            return any([self.apply_label(i, y, _row(rec, j))
                        for j, (i, y) in enumerate(zip(rec["indices"], rec["y"]))])
        if op == "failure":
            return self.apply_failure(rec["index"], rec)
        if op == "request":
            self.apply_request(rec["indices"], rec["iteration"], rec["scores"])
            return True
        if op == "iteration":
            self.apply_iteration(rec["iteration"], rec["metrics"], rec["timings"],
                                 rec.get("info") or {})
            return True
        if op == "config":
            self.config = rec["config"]
            self.dirty_config = True
            return True
        raise ValueError(f"unknown journal op {op!r} (written by a newer alflow?)")

    def _set_evaluation(self, i: int, fields: dict) -> None:
        """Where, when and how often point ``i`` was evaluated (labels and failures alike)."""
        self.wall_time[i] = _f(fields.get("wall_time"))
        self.worker[i] = fields.get("worker") or ""
        if "attempts" in fields:  # absent from records written before labels counted them
            self.attempts[i] = int(fields["attempts"])
        for name in ("submitted", "started", "finished"):
            getattr(self, name)[i] = _f(fields.get(name))
        self.dirty_rows.add(i)

    def apply_label(self, index: int, y: Sequence[float], fields: dict) -> bool:
        i = int(index)
        if self.status[i] == StoreStatus.LABELLED:
            self.duplicates_ignored += 1
            return False
        yv = np.asarray(y, dtype=np.float64).reshape(-1)
        if self.y is None:
            self.y = np.full((self.n_pool, yv.size), np.nan)
        self.y[i] = yv
        self.status[i] = StoreStatus.LABELLED
        self.failure_reason[i] = ""
        self.failure_kind[i] = ""
        self._set_evaluation(i, fields)
        return True

    def apply_failure(self, index: int, fields: dict) -> bool:
        i = int(index)
        if self.status[i] == StoreStatus.LABELLED:
            self.duplicates_ignored += 1
            return False
        self.status[i] = StoreStatus.FAILED
        self.failure_reason[i] = fields.get("reason") or ""
        self.failure_kind[i] = fields.get("kind") or ""  # "" = unknown (older records)
        self._set_evaluation(i, fields)
        return True

    def apply_request(self, indices: Sequence[int], iteration: int,
                      scores: Sequence[float]) -> None:
        idx = np.asarray(indices, dtype=np.int64)
        sc = np.asarray(scores, dtype=np.float64)
        self.status[idx] = StoreStatus.REQUESTED
        self.iteration_requested[idx] = iteration
        self.request_score[idx] = sc
        it = self.iterations.setdefault(int(iteration), IterationRecord())
        it.selected.extend(int(i) for i in idx)
        it.scores.extend(float(s) for s in sc)
        self.dirty_rows.update(int(i) for i in idx)
        self.dirty_iterations.add(int(iteration))

    def apply_iteration(self, iteration: int, metrics: dict, timings: dict,
                        info: dict) -> None:
        it = self.iterations.setdefault(int(iteration), IterationRecord())
        it.metrics = dict(metrics)
        it.timings = dict(timings)
        it.info = dict(info)
        self.dirty_iterations.add(int(iteration))


#: Per-point fields of a ``labels`` batch record, each a list with one entry per point.
_BATCH_FIELDS = ("wall_time", "worker", "attempts", "submitted", "started", "finished")


def _row(rec: dict, j: int) -> dict:
    """Row ``j`` of a ``labels`` batch record as the fields of a single label."""
    return {k: rec[k][j] for k in _BATCH_FIELDS if k in rec}
