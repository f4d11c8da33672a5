"""``CampaignStore``: the one HDF5 file (+ journal) that holds everything a campaign knows.

Durability model (details in docs/store.md):

* small events (labels, failures, request batches, iteration metrics, config updates) are
  appended to ``<store>.journal`` and fsynced before the method returns — that return is the
  acknowledgement;
* the HDF5 file is only replaced atomically by a fold (:meth:`CampaignStore.compact`), which
  runs on ``save_checkpoint`` (end of each iteration), on ``close`` and every
  ``AUTO_COMPACT_RECORDS`` records;
* opening replays the journal records newer than the file's ``journal_seq``; readers do this
  in memory only and never take the lock.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from alcore._util import flatten as _flatten

from . import hdf5io, journal
from . import layout as L
from .errors import (ConfigMismatchError, ReadOnlyStoreError, StoreClosedError,
                     StoreCorruptError, StoreExistsError, StoreNotFoundError)
from .layout import StoreStatus
from .lock import WriterLock
from .state import StoreState

log = logging.getLogger(__name__)

#: Config sections that may differ on resume unless the caller says otherwise.
DEFAULT_MUTABLE: tuple[str, ...] = ("budget", "dask", "campaign.deadline")
#: Fold the journal into the HDF5 file after this many records even without a checkpoint,
#: so that replay on open stays fast.
AUTO_COMPACT_RECORDS = 20_000


def _alflow_version() -> str:
    try:
        from importlib.metadata import version

        return version("alflow")
    except Exception:  # not installed as a distribution
        return "0+unknown"


def _plain(obj: Any) -> Any:
    """JSON round trip: tuples become lists, numpy scalars numbers (what the file will hold)."""
    return json.loads(journal.dumps(obj))


def _json_safe(obj: Any) -> Any:
    """NaN/inf -> None, so that ``json.dumps(summary)`` is strict JSON for other tools."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _is_mutable(key: str, mutable: Iterable[str]) -> bool:
    return any(key == m or key.startswith(m + ".") for m in mutable)


class CampaignStore:
    """An alflow campaign store. Build with :meth:`create` or :meth:`open`, never directly.

    A store opened with ``mode="a"`` (or created) is the single writer: it holds
    ``<store>.lock``. A store opened with ``mode="r"`` is a snapshot taken at open time
    (HDF5 file + journal replayed in memory); reopen to see newer data.
    """

    def __init__(self, path: Path, mode: str, state: StoreState,
                 lock: WriterLock | None = None, writer: journal.JournalWriter | None = None):
        self.path = path
        self.mode = mode
        self._st = state
        self._lock = lock
        self._journal = writer
        self._closed = False
        self._mutex = threading.RLock()
        self.recovered_torn_bytes = 0  # bytes of a torn journal tail discarded on open

    # ================================================================== construction
    @classmethod
    def create(cls, path: str | os.PathLike, *, config: dict, oracle_info: dict,
               pool_X: np.ndarray, test_X: np.ndarray | None = None,
               test_y: np.ndarray | None = None, seeds: dict | None = None,
               n_outputs: int | None = None) -> "CampaignStore":
        """Create a new store (opened for writing) and return it.

        The file is written to ``<store>.tmp`` and renamed, so a kill during creation leaves
        no half-written store. ``n_outputs`` (k) is taken from the argument, else ``test_y``,
        else ``oracle_info["output_dim"]`` / ``len(oracle_info["output_names"])``, else from
        the first label. Refuses to overwrite an existing file (:class:`StoreExistsError`).
        """
        path = Path(os.path.abspath(path))  # robust against a later chdir
        X = np.asarray(pool_X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"pool_X must be a non-empty (P, d) array, got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("pool_X contains NaN or inf")
        tX = None if test_X is None else np.asarray(test_X, dtype=np.float64)
        ty = None if test_y is None else np.asarray(test_y, dtype=np.float64)
        if ty is not None and ty.ndim == 1:
            ty = ty[:, None]
        if tX is not None and (tX.ndim != 2 or tX.shape[1] != X.shape[1]):
            raise ValueError(f"test_X must be (n, {X.shape[1]}), got {tX.shape}")
        if ty is not None and (tX is None or ty.shape[0] != tX.shape[0]):
            raise ValueError("test_y needs test_X with the same number of rows")
        info = _plain(dict(oracle_info))
        if n_outputs is None:
            if ty is not None:
                n_outputs = ty.shape[1]
            elif info.get("output_dim") is not None:
                n_outputs = int(info["output_dim"])
            elif info.get("output_names"):
                n_outputs = len(info["output_names"])
        if n_outputs is not None and ty is not None and ty.shape[1] != n_outputs:
            raise ValueError(f"test_y has {ty.shape[1]} outputs, n_outputs is {n_outputs}")
        if path.exists():
            raise StoreExistsError(f"{path} already exists; open it to resume, or choose "
                                   "another path")
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = WriterLock(L.sidecar(path, L.LOCK_SUFFIX), path)
        lock.acquire()
        try:
            if path.exists():  # lost a creation race
                raise StoreExistsError(f"{path} already exists")
            meta = {
                "alflow_version": _alflow_version(),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "oracle_name": str(info.get("name", "")),
                "oracle_version": str(info.get("version", "")),
            }
            st = StoreState.new(store_id=uuid.uuid4().bytes, meta=meta, config=_plain(config),
                                oracle_info=info, seeds=_plain(dict(seeds or {})), pool_X=X,
                                n_outputs=n_outputs, test_X=tX, test_y=ty)
            jpath = L.sidecar(path, L.JOURNAL_SUFFIX)
            journal.write_fresh(jpath, st.store_id, 0)
            hdf5io.write_store(path, st, fresh=True)
            st.meta.update(schema_version=L.SCHEMA_VERSION, store_id=st.store_id.hex())
            for stale in (L.sidecar(path, L.STOP_SUFFIX),):
                stale.unlink(missing_ok=True)
            writer = journal.JournalWriter(jpath, next_seq=1)
        except BaseException:
            lock.release()
            raise
        return cls(path, "a", st, lock, writer)

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r") -> "CampaignStore":
        """Open an existing store: ``"r"`` a read-only snapshot, ``"a"`` the single writer.

        Raises :class:`StoreNotFoundError`, :class:`NotHDF5Error`, :class:`ForeignHDF5Error`,
        :class:`SchemaVersionError` (file untouched in each case) or, for ``"a"``,
        :class:`StoreInUseError` when another live process writes it. A stale lock of a dead
        process on this host is taken over.
        """
        path = Path(os.path.abspath(path))  # robust against a later chdir
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        if not path.exists():
            raise StoreNotFoundError(f"no store at {path}")
        hdf5io.check_file(path)  # read-only validation before any side file is created
        if mode == "r":
            return cls(path, "r", cls._load_snapshot(path))
        lock = WriterLock(L.sidecar(path, L.LOCK_SUFFIX), path)
        lock.acquire()
        try:
            if lock.took_over:
                log.warning("took over stale lock of %s", lock.took_over)
            store = cls._open_writer(path, lock)
        except BaseException:
            lock.release()
            raise
        return store

    @staticmethod
    def _load_snapshot(path: Path) -> StoreState:
        """HDF5 file + journal replay, in memory, retrying if a compaction raced with us."""
        jpath = L.sidecar(path, L.JOURNAL_SUFFIX)
        for _ in range(50):
            st = hdf5io.read_state(path)
            scan = journal.scan(jpath)
            if scan is None or scan.store_id != st.store_id:
                if scan is not None:
                    log.warning("ignoring %s: it belongs to another store", jpath)
                return st
            if scan.base_seq > st.folded_seq:
                time.sleep(0.01)  # the file we read was replaced meanwhile: read again
                continue
            for rec in scan.records:
                if rec["seq"] > st.folded_seq:
                    st.apply(rec)
            return st
        raise StoreCorruptError(f"{jpath} starts after the data in {path} (journal newer than "
                                "the store file: was an old copy of the store restored?)")

    @classmethod
    def _open_writer(cls, path: Path, lock: WriterLock) -> "CampaignStore":
        tmp = L.sidecar(path, L.TMP_SUFFIX)
        tmp.unlink(missing_ok=True)  # a fold killed before its rename: garbage
        jpath = L.sidecar(path, L.JOURNAL_SUFFIX)
        jpath.with_name(jpath.name + ".tmp").unlink(missing_ok=True)
        st = hdf5io.read_state(path)
        scan = journal.scan(jpath)
        torn = 0
        if scan is not None and scan.store_id is not None and scan.store_id != st.store_id:
            aside = jpath.with_name(f"{jpath.name}.foreign-{int(time.time())}")
            os.replace(jpath, aside)
            log.warning("moved %s aside to %s: it belongs to another store", jpath, aside)
            scan = None
        if scan is None or scan.store_id is None:
            # Missing, or killed while its header was written (then it held no record).
            journal.write_fresh(jpath, st.store_id, st.folded_seq)
        else:
            if scan.base_seq > st.folded_seq:
                raise StoreCorruptError(
                    f"{jpath} starts after the data in {path} (journal newer than the store "
                    "file: was an old copy of the store restored?)")
            for rec in scan.records:
                if rec["seq"] > st.folded_seq:
                    st.apply(rec)
            if scan.torn_bytes:
                torn = scan.torn_bytes
                log.warning("discarding %d bytes of a torn (never acknowledged) journal tail",
                            torn)
                journal.truncate_torn_tail(jpath, scan.valid_end)
        next_seq = max(st.last_seq, scan.last_seq if scan else 0, st.folded_seq) + 1
        store = cls(path, "a", st, lock, journal.JournalWriter(jpath, next_seq))
        store.recovered_torn_bytes = torn
        return store

    # ================================================================== read access
    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"store {self.path} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.mode != "a":
            raise ReadOnlyStoreError(f"store {self.path} was opened read-only (mode='r')")

    @property
    def config(self) -> dict:
        """The campaign's validated config (a copy)."""
        return copy.deepcopy(self._st.config)

    @property
    def oracle_info(self) -> dict:
        """Provenance of the oracle (name, version, params...) as given at creation."""
        return copy.deepcopy(self._st.oracle_info)

    @property
    def seeds(self) -> dict:
        return copy.deepcopy(self._st.seeds)

    @property
    def meta(self) -> dict:
        """schema_version, alflow_version, created, store_id, oracle name/version, seeds."""
        m = {k: v for k, v in self._st.meta.items()
             if k in ("schema_version", "alflow_version", "created", "store_id",
                      "oracle_name", "oracle_version")}
        m["seeds"] = self.seeds
        return m

    def _ro(self, a: np.ndarray | None) -> np.ndarray | None:
        if a is None:
            return None
        v = a.view()
        v.flags.writeable = False
        return v

    @property
    def pool_X(self) -> np.ndarray:
        """(P, d) candidate inputs (read-only view)."""
        return self._ro(self._st.pool_X)

    @property
    def test_X(self) -> np.ndarray | None:
        return self._ro(self._st.test_X)

    @property
    def test_y(self) -> np.ndarray | None:
        return self._ro(self._st.test_y)

    @property
    def n_pool(self) -> int:
        return self._st.n_pool

    @property
    def n_outputs(self) -> int | None:
        """k, or None while it is unknown (no label yet and none given at creation)."""
        return self._st.n_outputs

    @property
    def status(self) -> np.ndarray:
        """(P,) int8 :class:`StoreStatus` codes (a copy)."""
        with self._mutex:
            return self._st.status.copy()

    @property
    def outputs(self) -> np.ndarray:
        """(P, k) float64 outputs, NaN where not labelled (a copy)."""
        with self._mutex:
            if self._st.y is None:
                return np.full((self.n_pool, 0), np.nan)
            return self._st.y.copy()

    @property
    def wall_times(self) -> np.ndarray:
        """(P,) evaluation wall time in seconds, NaN where none was recorded."""
        return self._st.wall_time.copy()

    @property
    def workers(self) -> np.ndarray:
        """(P,) worker names ('' where none)."""
        return self._st.worker.astype(str)

    @property
    def failure_reasons(self) -> np.ndarray:
        return self._st.failure_reason.astype(str)

    @property
    def attempts(self) -> np.ndarray:
        return self._st.attempts.copy()

    @property
    def iteration_requested(self) -> np.ndarray:
        """(P,) int32 iteration that requested each point, -1 where never requested."""
        return self._st.iteration_requested.copy()

    def _where(self, code: StoreStatus) -> np.ndarray:
        with self._mutex:
            return np.flatnonzero(self._st.status == code)

    def labelled_indices(self) -> np.ndarray:
        return self._where(StoreStatus.LABELLED)

    def requested_indices(self) -> np.ndarray:
        """Requested and neither labelled nor failed yet (to be sent again on resume)."""
        return self._where(StoreStatus.REQUESTED)

    pending_indices = requested_indices

    def failed_indices(self) -> np.ndarray:
        return self._where(StoreStatus.FAILED)

    def unlabelled_indices(self) -> np.ndarray:
        """Never requested: the candidates an acquisition strategy may pick from."""
        return self._where(StoreStatus.UNLABELLED)

    @property
    def n_labelled(self) -> int:
        return int(np.count_nonzero(self._st.status == StoreStatus.LABELLED))

    @property
    def duplicates_ignored(self) -> int:
        """Labels/failures for already labelled points that were ignored (since open)."""
        return self._st.duplicates_ignored

    @property
    def journal_records(self) -> int:
        """Acknowledged records not yet folded into the HDF5 file."""
        return self._st.last_seq - self._st.folded_seq

    @property
    def iterations(self) -> list[dict]:
        """One dict per known iteration, in order: ``iteration``, ``selected`` (pick order),
        ``scores``, ``metrics`` and ``timings`` (None until ``record_iteration``),
        ``finished`` (metrics recorded)."""
        with self._mutex:
            out = []
            for i in sorted(self._st.iterations):
                it = self._st.iterations[i]
                out.append({"iteration": i,
                            "selected": np.asarray(it.selected, dtype=np.int64),
                            "scores": np.asarray(it.scores, dtype=np.float64),
                            "metrics": copy.deepcopy(it.metrics),
                            "timings": copy.deepcopy(it.timings),
                            "finished": it.finished})
            return out

    def finished_iterations(self) -> list[int]:
        """Iterations whose metrics were recorded (resume does not redo them)."""
        return [i for i in sorted(self._st.iterations) if self._st.iterations[i].finished]

    # ================================================================== writes
    def _append(self, payload: dict) -> None:
        """Journal the record (durable on return), then apply it in memory."""
        self._journal.append(payload)
        payload["seq"] = self._journal.next_seq - 1
        self._st.apply(payload)

    def _maybe_autocompact(self) -> None:
        if self.journal_records >= AUTO_COMPACT_RECORDS:
            self.compact()

    def _check_index(self, index: Any) -> int:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {index!r}")
        i = int(index)
        if not 0 <= i < self.n_pool:
            raise IndexError(f"index {i} is outside the pool (0..{self.n_pool - 1})")
        return i

    def mark_requested(self, indices: Iterable[int], iteration: int,
                       scores: Iterable[float] | None = None) -> None:
        """Record that ``indices`` (pick order) were sent to the oracle in ``iteration``.

        Durable before it returns, so a resumed campaign sends them again rather than picking
        new points. Only unlabelled or failed points may be requested: asking for a labelled
        or already requested point raises ``ValueError`` (the campaign must never pay twice).
        """
        self._check_writable()
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise TypeError(f"indices must be a 1-D integer array, got {idx.dtype} {idx.shape}")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_pool):
            raise IndexError(f"indices outside the pool (0..{self.n_pool - 1})")
        if np.unique(idx).size != idx.size:
            raise ValueError("indices contain duplicates")
        sc = (np.full(idx.size, np.nan) if scores is None
              else np.asarray(list(scores) if not isinstance(scores, np.ndarray) else scores,
                              dtype=np.float64).reshape(-1))
        if sc.size != idx.size:
            raise ValueError(f"{sc.size} scores for {idx.size} indices")
        it = int(iteration)
        if it < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        with self._mutex:
            bad = idx[np.isin(self._st.status[idx],
                              (StoreStatus.LABELLED, StoreStatus.REQUESTED))]
            if bad.size:
                raise ValueError(
                    f"points already labelled or requested cannot be requested again: "
                    f"{bad[:10].tolist()}{' ...' if bad.size > 10 else ''}")
            self._append({"op": "request", "indices": idx.tolist(), "iteration": it,
                          "scores": sc.tolist()})
            self._maybe_autocompact()

    def record_label(self, index: int, y: Any, wall_time: float | None = None,
                     worker: str = "") -> bool:
        """Store the oracle output ``y`` (k,) of pool point ``index``.

        Durable (acknowledged) when it returns True. A label for a point that is already
        labelled is *ignored*: nothing is written, False is returned, a warning is logged and
        :attr:`duplicates_ignored` counts it (a late duplicate after a retry never overwrites
        the paid-for first result). A label for a failed point (a late success) or for a
        point never requested (e.g. an initial design labelled directly) is accepted.
        """
        self._check_writable()
        i = self._check_index(index)
        yv = np.asarray(y, dtype=np.float64).reshape(-1)
        k = self.n_outputs
        if k is not None and yv.size != k:
            raise ValueError(f"label for point {i} has {yv.size} outputs, the store has {k}")
        if yv.size == 0:
            raise ValueError(f"label for point {i} is empty")
        with self._mutex:
            if self._st.status[i] == StoreStatus.LABELLED:
                self._st.duplicates_ignored += 1
                log.warning("ignoring a second label for point %d (already labelled)", i)
                return False
            self._append({"op": "label", "index": i, "y": yv.tolist(),
                          "wall_time": None if wall_time is None else float(wall_time),
                          "worker": str(worker or "")})
            self._maybe_autocompact()
            return True

    def record_labels(self, indices: Iterable[int], ys: Any,
                      wall_times: Iterable[float | None] | None = None,
                      workers: Iterable[str] | None = None) -> np.ndarray:
        """Record several labels with one journal record and one fsync (group commit).

        Same rules as :meth:`record_label` per point (duplicates ignored); returns a bool
        array, True where the label was recorded. All of them are durable on return — or,
        after a kill during the call, none of them. Use it when several results are at hand
        (e.g. a Dask ``as_completed`` batch): the fsync, not the data, bounds throughput.
        """
        self._check_writable()
        idx = [self._check_index(i) for i in indices]
        if not idx:
            return np.zeros(0, dtype=bool)
        Y = np.asarray(ys, dtype=np.float64).reshape(len(idx), -1)
        k = self.n_outputs
        if k is not None and Y.shape[1] != k:
            raise ValueError(f"labels have {Y.shape[1]} outputs, the store has {k}")
        if len(set(idx)) != len(idx):
            raise ValueError("record_labels got the same index twice")
        walls = list(wall_times) if wall_times is not None else [None] * len(idx)
        wks = [str(w or "") for w in workers] if workers is not None else [""] * len(idx)
        if len(walls) != len(idx) or len(wks) != len(idx):
            raise ValueError("indices, ys, wall_times and workers differ in length")
        with self._mutex:
            done = self._st.status[idx] == StoreStatus.LABELLED
            if done.any():
                self._st.duplicates_ignored += int(done.sum())
                log.warning("ignoring second labels for points %s (already labelled)",
                            np.asarray(idx)[done][:10].tolist())
            keep = np.flatnonzero(~done)
            if keep.size:
                self._append({"op": "labels", "indices": [idx[j] for j in keep],
                              "y": Y[keep].tolist(),
                              "wall_time": [None if walls[j] is None else float(walls[j])
                                            for j in keep],
                              "worker": [wks[j] for j in keep]})
                self._maybe_autocompact()
            return ~done

    def record_failure(self, index: int, reason: str, wall_time: float | None = None,
                       worker: str = "", attempts: int = 1) -> bool:
        """Mark pool point ``index`` as failed (after ``attempts`` tries) with ``reason``.

        Durable on return. Ignored (returns False) for a point that is already labelled.
        Failed points are not sent again on resume; a campaign may request them again.
        """
        self._check_writable()
        i = self._check_index(index)
        with self._mutex:
            if self._st.status[i] == StoreStatus.LABELLED:
                self._st.duplicates_ignored += 1
                log.warning("ignoring a failure for point %d (already labelled)", i)
                return False
            self._append({"op": "failure", "index": i, "reason": str(reason),
                          "wall_time": None if wall_time is None else float(wall_time),
                          "worker": str(worker or ""), "attempts": int(attempts)})
            self._maybe_autocompact()
            return True

    def record_iteration(self, iteration: int, metrics: dict,
                         timings: dict | None = None) -> None:
        """Store the metrics and step timings of ``iteration``; this marks it finished.

        Values must be JSON-able (numbers, lists, nested dicts, numpy scalars/arrays).
        Recording the same iteration again replaces its metrics and timings.
        """
        self._check_writable()
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics must be a dict, got {type(metrics).__name__}")
        with self._mutex:
            self._append({"op": "iteration", "iteration": int(iteration),
                          "metrics": _plain(dict(metrics)), "timings": _plain(dict(timings or {}))})

    def save_checkpoint(self, iteration: int, state: Mapping[str, np.ndarray]) -> None:
        """Save model tensors for ``iteration`` and fold everything into the HDF5 file.

        Tensors become plain datasets ``/checkpoints/NNNN/<key>`` (numeric, bool as uint8,
        strings as UTF-8); durable when it returns (it runs :meth:`compact`).
        """
        self._check_writable()
        tensors: dict[str, np.ndarray] = {}
        for key, value in state.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"checkpoint keys must be non-empty strings, got {key!r}")
            arr = np.asarray(value)
            if arr.dtype.kind not in "iufbUS":
                raise TypeError(f"checkpoint tensor {key!r} has unsupported dtype {arr.dtype} "
                                "(numeric, bool or str arrays only; no pickles)")
            tensors[key] = arr.copy()
        with self._mutex:
            self._st.pending_checkpoints[int(iteration)] = tensors
            self.compact()
            if int(iteration) not in self._st.checkpoint_iterations:
                self._st.checkpoint_iterations.append(int(iteration))
                self._st.checkpoint_iterations.sort()

    def checkpoint_iterations(self) -> list[int]:
        """Iterations that have a saved checkpoint."""
        return list(self._st.checkpoint_iterations)

    def load_checkpoint(self, iteration: int) -> dict[str, np.ndarray]:
        """The tensors saved for ``iteration`` (KeyError if there is none)."""
        self._check_open()
        if int(iteration) not in self._st.checkpoint_iterations:
            raise KeyError(f"no checkpoint for iteration {iteration}")
        return hdf5io.read_checkpoint(self.path, int(iteration))

    def latest_checkpoint(self) -> tuple[int, dict[str, np.ndarray]] | None:
        """``(iteration, tensors)`` of the newest checkpoint, or None (warm start on resume)."""
        if not self._st.checkpoint_iterations:
            return None
        i = self._st.checkpoint_iterations[-1]
        return i, self.load_checkpoint(i)

    # ------------------------------------------------------------------ stop flag
    @property
    def _stop_path(self) -> Path:
        return L.sidecar(self.path, L.STOP_SUFFIX)

    def request_stop(self, reason: str = "") -> None:
        """Ask a running campaign to stop after its current step.

        Works on a read-only store too (that is how ``alflow stop`` reaches a campaign whose
        writer holds the lock): it atomically writes the sidecar file ``<store>.stop``.
        """
        self._check_open()
        tmp = self._stop_path.with_name(f"{self._stop_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                   "time": time.time(), "reason": reason}))
        os.replace(tmp, self._stop_path)

    def stop_requested(self) -> bool:
        """True while a stop request is pending (checked on disk on every call)."""
        return self._stop_path.exists()

    def clear_stop(self) -> None:
        """Withdraw a stop request (a resumed campaign does this when it starts)."""
        self._stop_path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ config
    def check_config(self, new_config: Mapping, mutable: Iterable[str] = DEFAULT_MUTABLE
                     ) -> None:
        """Raise :class:`ConfigMismatchError` if ``new_config`` differs from the stored config
        outside the ``mutable`` sections (dotted prefixes). Touches nothing."""
        stored = _flatten(self._st.config)
        given = _flatten(_plain(dict(new_config)))
        mutable = tuple(mutable)
        diffs = {k: (stored.get(k), given.get(k)) for k in sorted(set(stored) | set(given))
                 if not _is_mutable(k, mutable) and stored.get(k, _MISSING) != given.get(k, _MISSING)}
        if diffs:
            detail = "; ".join(f"{k}: stored {a!r}, given {b!r}" for k, (a, b) in diffs.items())
            raise ConfigMismatchError(
                f"config does not match the campaign stored in {self.path} "
                f"({len(diffs)} key(s): {detail}); only {', '.join(mutable) or 'nothing'} "
                "may change on resume", diffs)

    def update_config(self, new_config: Mapping, mutable: Iterable[str] = DEFAULT_MUTABLE
                      ) -> None:
        """Replace the stored config after :meth:`check_config` passed (durable on return)."""
        self._check_writable()
        self.check_config(new_config, mutable)
        with self._mutex:
            self._append({"op": "config", "config": _plain(dict(new_config))})

    # ------------------------------------------------------------------ summary, folding
    def summary(self) -> dict:
        """Small JSON-able dict for ``alflow status --json``.

        Keys: path, store_id, schema_version, alflow_version, created, oracle {name, version},
        campaign (config campaign.name or None), pool_size, n_outputs, labeled, failed,
        requested (pending), unlabelled, iteration (last finished iteration or None),
        n_iterations (finished), metrics (list: iteration, n_selected, finished, metrics,
        timings), latest_checkpoint, stop_requested, journal_records, duplicates_ignored.
        Non-finite metric values appear as None (strict JSON).
        """
        with self._mutex:
            counts = np.bincount(self._st.status.astype(np.int64), minlength=4)
            finished = self.finished_iterations()
            camp = self._st.config.get("campaign") if isinstance(self._st.config, dict) else None
            return _json_safe({
                "path": str(self.path),
                "store_id": self._st.store_id.hex(),
                "schema_version": L.SCHEMA_VERSION,
                "alflow_version": self._st.meta.get("alflow_version"),
                "created": self._st.meta.get("created"),
                "oracle": {"name": self._st.meta.get("oracle_name"),
                           "version": self._st.meta.get("oracle_version")},
                "campaign": camp.get("name") if isinstance(camp, dict) else None,
                "pool_size": self.n_pool,
                "n_outputs": self.n_outputs,
                "labeled": int(counts[StoreStatus.LABELLED]),
                "failed": int(counts[StoreStatus.FAILED]),
                "requested": int(counts[StoreStatus.REQUESTED]),
                "unlabelled": int(counts[StoreStatus.UNLABELLED]),
                "iteration": finished[-1] if finished else None,
                "n_iterations": len(finished),
                "metrics": [{"iteration": i, "n_selected": len(it.selected),
                             "finished": it.finished,
                             "metrics": copy.deepcopy(it.metrics),
                             "timings": copy.deepcopy(it.timings)}
                            for i, it in sorted(self._st.iterations.items())],
                "latest_checkpoint": (self._st.checkpoint_iterations[-1]
                                      if self._st.checkpoint_iterations else None),
                "stop_requested": self.stop_requested(),
                "journal_records": self.journal_records,
                "duplicates_ignored": self._st.duplicates_ignored,
            })

    def compact(self, full: bool = False) -> None:
        """Fold the journal into the HDF5 file by atomic replacement, then restart the journal.

        ``full=True`` rewrites the file from scratch (drops the garbage that in-place string
        updates leave behind) — the checkpoints are copied over. Crash-safe at every point:
        the file records the last folded sequence number, so a journal that survives a kill
        between the rename and its truncation is replayed idempotently.
        """
        self._check_writable()
        with self._mutex:
            st = self._st
            if not st.dirty and not full:
                return
            if full:
                for i in st.checkpoint_iterations:
                    if i not in st.pending_checkpoints:
                        st.pending_checkpoints[i] = hdf5io.read_checkpoint(self.path, i)
            hdf5io.write_store(self.path, st, fresh=full)
            st.clear_dirty()
            journal.write_fresh(self._journal.path, st.store_id, st.folded_seq)
            self._journal.reopen()

    def close(self) -> None:
        """Fold the journal (writer), release the lock. Idempotent."""
        if self._closed:
            return
        try:
            if self.mode == "a" and self._st.dirty:
                self.compact()
        finally:
            self._closed = True
            if self._journal is not None:
                self._journal.close()
            if self._lock is not None:
                self._lock.release()

    def __enter__(self) -> "CampaignStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"mode={self.mode!r}"
        return (f"CampaignStore({str(self.path)!r}, {state}, pool={self.n_pool}, "
                f"labelled={self.n_labelled})")


_MISSING = object()
