"""The in-memory state of a store and the pure logic that applies events to it.

The same ``apply_*`` functions run for a live call (after its journal record is durable) and
for journal replay on open, so a replayed store is exactly the store that acknowledged the
events. Dirty sets record what changed since the last fold so that compaction rewrites only
what it must.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .layout import StoreStatus


@dataclass
class IterationRecord:
    """What the store knows about one iteration."""

    selected: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    metrics: dict | None = None
    timings: dict | None = None

    @property
    def finished(self) -> bool:
        """An iteration is finished once ``record_iteration`` stored its metrics."""
        return self.metrics is not None


@dataclass
class StoreState:
    """Everything a store holds except checkpoint tensors (those are read on demand)."""

    store_id: bytes
    meta: dict
    config: dict
    oracle_info: dict
    seeds: dict
    pool_X: np.ndarray
    status: np.ndarray
    y: np.ndarray | None
    iteration_requested: np.ndarray
    request_score: np.ndarray
    wall_time: np.ndarray
    worker: np.ndarray  # object array of str
    failure_reason: np.ndarray  # object array of str
    attempts: np.ndarray
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

    @classmethod
    def new(cls, *, store_id: bytes, meta: dict, config: dict, oracle_info: dict, seeds: dict,
            pool_X: np.ndarray, n_outputs: int | None, test_X: np.ndarray | None,
            test_y: np.ndarray | None) -> "StoreState":
        P = pool_X.shape[0]
        return cls(
            store_id=store_id, meta=meta, config=config, oracle_info=oracle_info, seeds=seeds,
            pool_X=pool_X, status=np.zeros(P, np.int8),
            y=None if n_outputs is None else np.full((P, n_outputs), np.nan),
            iteration_requested=np.full(P, -1, np.int32), request_score=np.full(P, np.nan),
            wall_time=np.full(P, np.nan), worker=np.array([""] * P, dtype=object),
            failure_reason=np.array([""] * P, dtype=object), attempts=np.zeros(P, np.int32),
            test_X=test_X, test_y=test_y,
        )

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

    # ----------------------------------------------------------------- event application
    def apply(self, rec: dict) -> bool:
        """Apply one journal record; False when it was a duplicate that changed nothing."""
        op = rec["op"]
        self.last_seq = max(self.last_seq, int(rec.get("seq", self.last_seq)))
        if op == "label":
            return self.apply_label(rec["index"], rec["y"], rec["wall_time"], rec["worker"])
        if op == "labels":  # a batch from record_labels: one record, one fsync
            return any([self.apply_label(i, y, w, wk) for i, y, w, wk in
                        zip(rec["indices"], rec["y"], rec["wall_time"], rec["worker"])])
        if op == "failure":
            return self.apply_failure(rec["index"], rec["reason"], rec["wall_time"],
                                      rec["worker"], rec["attempts"])
        if op == "request":
            self.apply_request(rec["indices"], rec["iteration"], rec["scores"])
            return True
        if op == "iteration":
            self.apply_iteration(rec["iteration"], rec["metrics"], rec["timings"])
            return True
        if op == "config":
            self.config = rec["config"]
            self.dirty_config = True
            return True
        raise ValueError(f"unknown journal op {op!r} (written by a newer alflow?)")

    def apply_label(self, index: int, y, wall_time, worker) -> bool:
        if self.status[index] == StoreStatus.LABELLED:
            self.duplicates_ignored += 1
            return False
        yv = np.asarray(y, dtype=np.float64).reshape(-1)
        if self.y is None:
            self.y = np.full((self.n_pool, yv.size), np.nan)
        self.y[index] = yv
        self.status[index] = StoreStatus.LABELLED
        self.wall_time[index] = np.nan if wall_time is None else float(wall_time)
        self.worker[index] = worker or ""
        self.failure_reason[index] = ""
        self.dirty_rows.add(int(index))
        return True

    def apply_failure(self, index: int, reason, wall_time, worker, attempts) -> bool:
        if self.status[index] == StoreStatus.LABELLED:
            self.duplicates_ignored += 1
            return False
        self.status[index] = StoreStatus.FAILED
        self.wall_time[index] = np.nan if wall_time is None else float(wall_time)
        self.worker[index] = worker or ""
        self.failure_reason[index] = reason or ""
        self.attempts[index] = int(attempts)
        self.dirty_rows.add(int(index))
        return True

    def apply_request(self, indices, iteration: int, scores) -> None:
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

    def apply_iteration(self, iteration: int, metrics: dict, timings: dict) -> None:
        it = self.iterations.setdefault(int(iteration), IterationRecord())
        it.metrics = dict(metrics)
        it.timings = dict(timings)
        self.dirty_iterations.add(int(iteration))
