"""``CampaignStore``: the one HDF5 file (+ journal) that holds everything a campaign knows.

Durability model (details in docs/store.md):

* small events (labels, failures, request batches, iteration metrics, config updates) are
  appended to ``<store>.journal`` and fdatasynced before the method returns — that return is
  the acknowledgement (records are built in :mod:`.events`, applied by :mod:`.state`);
* the HDF5 file is only replaced atomically by a fold (:meth:`CampaignStore.compact`), which
  runs on ``save_checkpoint`` (end of each iteration), on ``close`` and every
  ``AUTO_COMPACT_RECORDS`` records;
* opening (:mod:`.recovery`) replays the journal records newer than the file; readers do this
  in memory only and never take the lock; a damaged journal is refused, not truncated.

Every file is named through :class:`~alcore.store.files.StoreFiles`, from the store's real
path resolved once at open (a symlinked store keeps its link and shares one lock).
"""
from __future__ import annotations

import copy
import logging
import os
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from . import events, hdf5io, journal, recovery
from .errors import (JournalCorruptError, ReadOnlyStoreError, StoreClosedError,
                     StoreExistsError, StoreNotFoundError)
from .files import StoreFiles
from .layout import SCHEMA_VERSION, StoreStatus
from .lock import WriterLock
from .state import StoreState
from .stopflag import StopFlag

log = logging.getLogger(__name__)

#: Fold the journal into the HDF5 file after this many records even without a checkpoint,
#: so that replay on open stays fast.
AUTO_COMPACT_RECORDS = 20_000


def _alflow_version() -> str:
    try:
        from importlib.metadata import version

        return version("alflow")
    except Exception:  # not installed as a distribution
        return "0+unknown"


def _ro(a: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None
    v = a.view()
    v.flags.writeable = False
    return v


class CampaignStore:
    """An alflow campaign store. Build with :meth:`create` or :meth:`open`, never directly.

    A store opened with ``mode="a"`` (or created) is the single writer: it holds
    ``<store>.lock``. A store opened with ``mode="r"`` is a snapshot taken at open time
    (HDF5 file + journal replayed in memory); reopen to see newer data.
    """

    def __init__(self, files: StoreFiles, mode: str, state: StoreState,
                 lock: WriterLock | None = None, writer: journal.JournalWriter | None = None):
        self.files = files
        self.path = files.given  #: the path as given (absolute); I/O goes to ``files.real``
        self.mode = mode
        self._st = state
        self._lock = lock
        self._journal = writer
        self._stop = StopFlag(files.stop)
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
        the first label. Refuses to overwrite an existing file (:class:`StoreExistsError`),
        and a journal left by a deleted store that still holds records.
        """
        files = StoreFiles.of(path)
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
        info = events.plain(dict(oracle_info))
        if n_outputs is None:
            if ty is not None:
                n_outputs = ty.shape[1]
            elif info.get("output_dim") is not None:
                n_outputs = int(info["output_dim"])
            elif info.get("output_names"):
                n_outputs = len(info["output_names"])
        if n_outputs is not None and ty is not None and ty.shape[1] != n_outputs:
            raise ValueError(f"test_y has {ty.shape[1]} outputs, n_outputs is {n_outputs}")
        if files.real.exists():
            raise StoreExistsError(f"{files.given} already exists; open it to resume, or "
                                   "choose another path")
        files.real.parent.mkdir(parents=True, exist_ok=True)
        lock = WriterLock(files.lock, files.given)
        lock.acquire()
        try:
            if files.real.exists():  # lost a creation race
                raise StoreExistsError(f"{files.given} already exists")
            cls._refuse_orphaned_journal(files)
            meta = {
                "alflow_version": _alflow_version(),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "oracle_name": str(info.get("name", "")),
                "oracle_version": str(info.get("version", "")),
            }
            st = StoreState.new(store_id=uuid.uuid4().bytes, meta=meta,
                                config=events.plain(config), oracle_info=info,
                                seeds=events.plain(dict(seeds or {})), pool_X=X,
                                n_outputs=n_outputs, test_X=tX, test_y=ty)
            journal.write_fresh(files.journal, files.journal_tmp, st.store_id, 0)
            hdf5io.write_store(files.real, files.tmp, st, fresh=True)
            st.meta.update(schema_version=SCHEMA_VERSION, store_id=st.store_id.hex())
            files.stop.unlink(missing_ok=True)
            writer = journal.JournalWriter(files.journal, next_seq=1)
        except BaseException:
            lock.release()
            raise
        return cls(files, "a", st, lock, writer)

    @staticmethod
    def _refuse_orphaned_journal(files: StoreFiles) -> None:
        """A journal without its store file may hold the only copy of acknowledged labels."""
        try:
            scan = journal.scan(files.journal, store=files.given)
        except JournalCorruptError:
            scan = None
            held = "a damaged journal"
        else:
            if scan is None or not scan.records:
                return  # nothing, or an empty journal: no label can be lost
            held = f"a journal with {len(scan.records)} unfolded record(s)"
        raise StoreExistsError(
            f"{files.journal} is {held} of a store whose file is gone; move it away (or "
            f"restore the store file beside it) before creating {files.given}")

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r") -> "CampaignStore":
        """Open an existing store: ``"r"`` a read-only snapshot, ``"a"`` the single writer.

        Raises :class:`StoreNotFoundError`, :class:`NotHDF5Error`, :class:`ForeignHDF5Error`,
        :class:`SchemaVersionError`, :class:`StoreCorruptError` (among them
        :class:`JournalCorruptError`) with every file untouched, or, for ``"a"``,
        :class:`StoreInUseError` when another live process writes it. A stale lock of a dead
        process on this host is taken over.
        """
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        files = StoreFiles.of(path)
        if not files.real.exists():
            raise StoreNotFoundError(f"no store at {files.given}")
        hdf5io.check_file(files.real)  # read-only validation before any side file is created
        if mode == "r":
            return cls(files, "r", recovery.load(files).state)
        lock = WriterLock(files.lock, files.given)
        lock.acquire()
        try:
            if lock.took_over:
                log.warning("took over stale lock of %s", lock.took_over)
            loaded = recovery.load(files)
            torn = recovery.prepare_writer(files, loaded)
            writer = journal.JournalWriter(files.journal, recovery.next_seq(loaded))
        except BaseException:
            lock.release()
            raise
        store = cls(files, "a", loaded.state, lock, writer)
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

    @property
    def pool_X(self) -> np.ndarray:
        """(P, d) candidate inputs (read-only view)."""
        return _ro(self._st.pool_X)

    @property
    def test_X(self) -> np.ndarray | None:
        return _ro(self._st.test_X)

    @property
    def test_y(self) -> np.ndarray | None:
        return _ro(self._st.test_y)

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

    def _column(self, name: str) -> np.ndarray:
        with self._mutex:
            values = getattr(self._st, name)
            return values.astype(str) if values.dtype == object else values.copy()

    @property
    def wall_times(self) -> np.ndarray:
        """(P,) evaluation wall time in seconds, NaN where none was recorded."""
        return self._column("wall_time")

    @property
    def submitted_times(self) -> np.ndarray:
        """(P,) unix time the evaluation was first submitted, NaN where unknown."""
        return self._column("submitted")

    @property
    def started_times(self) -> np.ndarray:
        """(P,) unix time the last attempt started on its worker, NaN where unknown."""
        return self._column("started")

    @property
    def finished_times(self) -> np.ndarray:
        """(P,) unix time the last attempt ended, NaN where unknown."""
        return self._column("finished")

    @property
    def workers(self) -> np.ndarray:
        """(P,) worker names ('' where none)."""
        return self._column("worker")

    @property
    def failure_reasons(self) -> np.ndarray:
        """(P,) full reason of each failure ('' where not failed)."""
        return self._column("failure_reason")

    @property
    def failure_kinds(self) -> np.ndarray:
        """(P,) failure kind ("error", "timeout", "worker_died", ...; '' where not failed)."""
        return self._column("failure_kind")

    @property
    def attempts(self) -> np.ndarray:
        """(P,) int32 attempts of the evaluation that labelled or failed each point (0 where
        none, and for labels of stores written before labels counted them)."""
        return self._column("attempts")

    @property
    def iteration_requested(self) -> np.ndarray:
        """(P,) int32 iteration that requested each point, -1 where never requested."""
        return self._column("iteration_requested")

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

    def status_counts(self) -> dict[str, int]:
        """Points per status, keyed by the one spelling (``StoreStatus.text``: "unlabelled",
        "requested", "labelled", "failed"): what every summary of a store reports."""
        with self._mutex:
            counts = np.bincount(self._st.status.astype(np.intp), minlength=len(StoreStatus))
        return {s.text: int(counts[s]) for s in StoreStatus}

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
        ``scores``, ``metrics`` and ``timings`` (None until ``record_iteration``), ``info``
        ({} when none was given), ``finished`` (metrics recorded)."""
        with self._mutex:
            out = []
            for i in sorted(self._st.iterations):
                it = self._st.iterations[i]
                out.append({"iteration": i,
                            "selected": np.asarray(it.selected, dtype=np.int64),
                            "scores": np.asarray(it.scores, dtype=np.float64),
                            "metrics": copy.deepcopy(it.metrics),
                            "timings": copy.deepcopy(it.timings),
                            "info": copy.deepcopy(it.info),
                            "finished": it.finished})
            return out

    def finished_iterations(self) -> list[int]:
        """Iterations whose metrics were recorded (resume does not redo them)."""
        return [i for i in sorted(self._st.iterations) if self._st.iterations[i].finished]

    # ================================================================== writes
    def _append(self, payload: dict) -> None:
        """Journal the record (durable on return), then apply it in memory."""
        payload["seq"] = self._journal.append(payload)
        self._st.apply(payload)

    def _maybe_autocompact(self) -> None:
        if self.journal_records >= AUTO_COMPACT_RECORDS:
            self.compact()

    def _ignore_duplicate(self, i: int, what: str) -> bool:
        """True (and counted, logged) when point ``i`` is already labelled."""
        if self._st.status[i] != StoreStatus.LABELLED:
            return False
        self._st.duplicates_ignored += 1
        log.warning("ignoring %s for point %d (already labelled)", what, i)
        return True

    def mark_requested(self, indices: Iterable[int], iteration: int,
                       scores: Iterable[float] | None = None) -> None:
        """Record that ``indices`` (pick order) were sent to the oracle in ``iteration``.

        Durable before it returns, so a resumed campaign sends them again rather than picking
        new points. Only unlabelled or failed points may be requested: asking for a labelled
        or already requested point raises ``ValueError`` (the campaign must never pay twice).
        """
        self._check_writable()
        idx = events.check_indices(indices, self.n_pool)
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
            self._append(events.request_event(idx, it, sc))
            self._maybe_autocompact()

    def record_label(self, index: int, y: Any, wall_time: float | None = None,
                     worker: str = "", *, attempts: int = 1, submitted: float | None = None,
                     started: float | None = None, finished: float | None = None) -> bool:
        """Store the oracle output ``y`` (k,) of pool point ``index``.

        Durable (acknowledged) when it returns True. A label for a point that is already
        labelled is *ignored*: nothing is written, False is returned, a warning is logged and
        :attr:`duplicates_ignored` counts it (a late duplicate after a retry never overwrites
        the paid-for first result). A label for a failed point (a late success) or for a
        point never requested (e.g. an initial design labelled directly) is accepted.
        ``submitted``/``started``/``finished`` are unix times (None: unknown).
        """
        self._check_writable()
        i = events.check_index(index, self.n_pool)
        yv = events.label_values(y, self.n_outputs, i)
        fields = events.evaluation_fields(wall_time, worker, attempts, submitted, started,
                                          finished)
        with self._mutex:
            if self._ignore_duplicate(i, "a second label"):
                return False
            self._append(events.label_event(i, yv, fields))
            self._maybe_autocompact()
            return True

    def record_labels(self, indices: Iterable[int], ys: Any,
                      wall_times: Iterable[float | None] | None = None,
                      workers: Iterable[str] | None = None, *,
                      attempts: Iterable[int] | None = None,
                      submitted: Iterable[float | None] | None = None,
                      started: Iterable[float | None] | None = None,
                      finished: Iterable[float | None] | None = None) -> np.ndarray:
        """Record several labels with one journal record and one fsync (group commit).

        Same rules as :meth:`record_label` per point (duplicates ignored); returns a bool
        array, True where the label was recorded. All of them are durable on return — or,
        after a kill during the call, none of them. Use it when several results are at hand
        (e.g. a Dask ``as_completed`` batch): the fsync, not the data, bounds throughput.
        """
        self._check_writable()
        idx = [events.check_index(i, self.n_pool) for i in indices]
        if not idx:
            return np.zeros(0, dtype=bool)
        n = len(idx)
        Y = np.asarray(ys, dtype=np.float64).reshape(n, -1)
        k = self.n_outputs
        if k is not None and Y.shape[1] != k:
            raise ValueError(f"labels have {Y.shape[1]} outputs, the store has {k}")
        if len(set(idx)) != n:
            raise ValueError("record_labels got the same index twice")
        columns = zip(events.per_point(wall_times, n, "wall_times", None),
                      events.per_point(workers, n, "workers", ""),
                      events.per_point(attempts, n, "attempts", 1),
                      events.per_point(submitted, n, "submitted", None),
                      events.per_point(started, n, "started", None),
                      events.per_point(finished, n, "finished", None))
        rows = [events.evaluation_fields(*c) for c in columns]
        with self._mutex:
            done = self._st.status[idx] == StoreStatus.LABELLED
            if done.any():
                self._st.duplicates_ignored += int(done.sum())
                log.warning("ignoring second labels for points %s (already labelled)",
                            np.asarray(idx)[done][:10].tolist())
            keep = np.flatnonzero(~done)
            if keep.size:
                self._append(events.labels_event([idx[j] for j in keep], Y[keep],
                                                 [rows[j] for j in keep]))
                self._maybe_autocompact()
            return ~done

    def record_failure(self, index: int, reason: str, wall_time: float | None = None,
                       worker: str = "", attempts: int = 1, *, kind: str = "error",
                       submitted: float | None = None, started: float | None = None,
                       finished: float | None = None) -> bool:
        """Mark pool point ``index`` as failed (after ``attempts`` tries) with ``reason``.

        ``kind`` is one of :data:`alcore.store.layout.FAILURE_KINDS` ("error", "setup",
        "timeout", "worker_died", "cancelled"). Durable on return. Ignored (returns False)
        for a point that is already labelled. Failed points are not sent again on resume; a
        campaign may request them again.
        """
        self._check_writable()
        i = events.check_index(index, self.n_pool)
        fields = events.evaluation_fields(wall_time, worker, attempts, submitted, started,
                                          finished)
        event = events.failure_event(i, reason, events.failure_kind(kind), fields)
        with self._mutex:
            if self._ignore_duplicate(i, "a failure"):
                return False
            self._append(event)
            self._maybe_autocompact()
            return True

    def record_iteration(self, iteration: int, metrics: dict, timings: dict | None = None,
                         info: dict | None = None) -> None:
        """Store the metrics, step timings and ``info`` of ``iteration``; this marks it finished.

        Values must be JSON-able (numbers, lists, nested dicts, numpy scalars/arrays).
        ``info`` is free JSON about the iteration (model choice, CV scores, calibration,
        failure-model statistics). Recording the same iteration again replaces all three.
        """
        self._check_writable()
        event = events.iteration_event(iteration, metrics, timings, info)
        with self._mutex:
            self._append(event)

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
        return hdf5io.read_checkpoint(self.files.real, int(iteration))

    def latest_checkpoint(self) -> tuple[int, dict[str, np.ndarray]] | None:
        """``(iteration, tensors)`` of the newest checkpoint, or None (warm start on resume)."""
        if not self._st.checkpoint_iterations:
            return None
        i = self._st.checkpoint_iterations[-1]
        return i, self.load_checkpoint(i)

    # ------------------------------------------------------------------ stop flag
    def request_stop(self, reason: str = "") -> None:
        """Ask a running campaign to stop after its current step.

        Works on a read-only store too (that is how ``alflow stop`` reaches a campaign whose
        writer holds the lock): it atomically writes the sidecar file ``<store>.stop``.
        """
        self._check_open()
        self._stop.request(reason)

    def stop_requested(self) -> bool:
        """True while a stop request is pending (checked on disk on every call)."""
        return self._stop.requested()

    def clear_stop(self) -> None:
        """Withdraw a stop request (a resumed campaign does this when it starts)."""
        self._stop.clear()

    # ------------------------------------------------------------------ config
    def update_config(self, new_config: Mapping) -> None:
        """Record ``new_config`` as the campaign's config (durable on return).

        The store does not judge the change: which keys a resume may change is the config's
        rule (``alcore.config.check_resume``), applied by the caller before this.
        """
        self._check_writable()
        with self._mutex:
            self._append(events.config_event(new_config))

    # ------------------------------------------------------------------ folding
    def compact(self, full: bool = False) -> None:
        """Fold the journal into the HDF5 file by atomic replacement, then restart the journal.

        ``full=True`` rewrites the file from scratch (drops the garbage that in-place string
        updates leave behind) — the checkpoints are copied over. Crash-safe at every point:
        the file records the last folded sequence number, so a journal that survives a kill
        between the rename and its truncation is replayed idempotently. A failure (a full
        disk) leaves the old file, the journal and no temp file: nothing acknowledged is lost.
        """
        self._check_writable()
        with self._mutex:
            st = self._st
            if not st.dirty and not full:
                return
            if full:
                for i in st.checkpoint_iterations:
                    if i not in st.pending_checkpoints:
                        st.pending_checkpoints[i] = hdf5io.read_checkpoint(self.files.real, i)
            hdf5io.write_store(self.files.real, self.files.tmp, st, fresh=full)
            st.clear_dirty()
            journal.write_fresh(self.files.journal, self.files.journal_tmp, st.store_id,
                                st.folded_seq)
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
