"""Fan a batch of oracle evaluations out over a Dask cluster; yield results as they complete.

Why it is shaped this way:

* **Results as they complete** (``distributed.as_completed``), each with its pool index, so the
  caller can make every label durable the moment it exists; a crash of the caller then loses at
  most the evaluations still in flight. That is also why in-flight work is bounded
  (``max_in_flight``, default one task per worker thread). The rest waits on the client, not in
  a worker's queue: a task queued on a worker would wait behind a slow simulation there while
  another worker idles (tasks that depend on scattered data are assigned to workers eagerly).
* **Failures are data.** An exception, a timeout, a NaN/inf output, a wrong output shape, or a
  dead worker never aborts the batch: the point is retried (``retries`` more times, with a fresh
  task key) and then reported as an :class:`EvalResult` with ``ok=False`` and the reason.
  Worker deaths are first handled by the scheduler itself (it reschedules the task elsewhere,
  up to ``distributed.scheduler.allowed-failures``); only a ``KilledWorker`` reaches our retry.
* **Timeouts at process level.** A Python thread cannot be interrupted, so with a timeout the
  oracle runs in a watchdog thread inside the worker; when it overruns, the point is reported
  as ``timeout`` and the dispatcher restarts that worker process (through its nanny), so a hung
  simulator does not keep occupying a core. If C code holds the GIL, the worker cannot even
  report; a client-side watchdog then cancels the task after ``2 * timeout + 10`` s and
  restarts the worker. External programs should use the ``command`` oracle's own timeout,
  which also kills their process group.
* **One cluster for the whole campaign**: the dispatcher is a context manager that keeps its
  client and cluster across ``evaluate`` calls; the oracle is scattered to the workers once per
  batch instead of being pickled into every task.
* Tasks use ``pure=False`` and unique keys: identical inputs must still be evaluated (stochastic
  simulators) and a retry must never be answered from a cached failure.

``Dispatcher(workers=0)`` evaluates in-process with the same semantics (no Dask): handy for
debugging an oracle and for tests of the callers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import Oracle
from .shipping import shippable

log = logging.getLogger(__name__)

_UNSET: Any = object()


@dataclass
class EvalResult:
    """The outcome of one point: a label (``ok``) or a failure with its ``reason``."""

    index: int                   # the caller's index (pool position) of the point
    ok: bool
    y: np.ndarray | None         # (k,) float64 when ok, else None
    wall_time: float             # seconds the last attempt ran on its worker
    worker: str                  # address of the worker of the last attempt
    reason: str | None           # why it failed (None when ok)
    attempts: int                # evaluations tried for this point (1 = first try succeeded)


def _target(oracle: Oracle, x: np.ndarray, box: dict[str, Any]) -> None:
    try:
        box["y"] = oracle(x)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes data
        box["error"] = f"{type(exc).__name__}: {exc}"


def run_point(oracle: Oracle, x: np.ndarray, timeout: float | None) -> dict[str, Any]:
    """Evaluate one point where it runs (a Dask worker or in-process); never raises."""
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = "local"
    box: dict[str, Any] = {}
    t0 = time.perf_counter()
    if timeout is None:
        _target(oracle, x, box)
    else:
        th = threading.Thread(target=_target, args=(oracle, x, box), daemon=True, name="alflow-oracle")
        th.start()
        th.join(timeout)
        if th.is_alive():
            return {"ok": False, "y": None, "wall": time.perf_counter() - t0, "worker": worker,
                    "reason": f"timeout: evaluation exceeded {timeout} s", "restart": True}
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"ok": False, "y": None, "wall": wall, "worker": worker, "reason": None, "restart": False}
    if "error" in box:
        out["reason"] = f"exception: {box['error']}"
        return out
    try:
        y = np.asarray(box.get("y"), dtype=float).reshape(-1) if np.ndim(box.get("y")) <= 1 else None
    except (TypeError, ValueError):
        y = None
    if y is None or y.shape != (oracle.output_dim,):
        out["reason"] = (f"bad output: expected shape ({oracle.output_dim},), got "
                         f"{np.shape(box.get('y'))} {type(box.get('y')).__name__}")
        return out
    if not np.all(np.isfinite(y)):
        out["reason"] = f"non-finite output: {y.tolist()}"
        return out
    out.update(ok=True, y=y)
    return out


class _HandledLoss(logging.Filter):
    """Drop the scheduler's ERROR about lost scattered data: the dispatcher re-scatters the
    oracle and resubmits, so in an overnight log it would only be a false alarm."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "lose scattered data" not in record.getMessage()


class _Watchdog(threading.Thread):
    """Client-side last resort for evaluations whose worker stops answering.

    The in-worker watchdog thread cannot fire while C code holds the GIL (a hung solver, a
    runaway regex): then the worker's own event loop is frozen too and no result ever comes.
    This thread, in the caller's process, cancels any task with no result ``2 * timeout +
    grace`` seconds after submission (queue time included; one task per thread is in flight by
    default, so it starts at once) and restarts the worker processing it.
    """

    def __init__(self, dispatcher: "Dispatcher", timeout: float, grace: float = 10.0) -> None:
        super().__init__(daemon=True, name="alflow-watchdog")
        self.dispatcher = dispatcher
        self.limit = 2.0 * timeout + grace
        self.lock = threading.Lock()
        self.deadlines: dict[str, tuple[float, Any]] = {}  # key -> (deadline, future)
        self.fired: dict[str, str] = {}                      # key -> worker address
        self.halt = threading.Event()

    def track(self, fut: Any) -> None:
        with self.lock:
            self.deadlines[fut.key] = (time.monotonic() + self.limit, fut)

    def untrack(self, fut: Any) -> None:
        with self.lock:
            self.deadlines.pop(fut.key, None)

    def run(self) -> None:
        client = self.dispatcher.client
        while not self.halt.wait(0.5):
            now = time.monotonic()
            with self.lock:
                overdue = {k: f for k, (d, f) in self.deadlines.items() if d < now}
            if not overdue:
                continue
            try:
                processing = client.processing()
            except Exception:  # noqa: BLE001 - the scheduler may be busy; try again next round
                continue
            restarting = self.dispatcher.restarting()
            for addr, keys in processing.items():
                hit = [k for k in keys if k in overdue]
                if not hit:
                    continue
                if addr in restarting:
                    # Its worker is going down already: the scheduler will run the task
                    # elsewhere. Give it a fresh deadline rather than charge it an attempt.
                    with self.lock:
                        for k in hit:
                            if k in self.deadlines:
                                self.deadlines[k] = (time.monotonic() + self.limit, overdue[k])
                    continue
                with self.lock:
                    for k in hit:
                        self.deadlines.pop(k, None)
                        self.fired[k] = addr
                client.cancel([overdue[k] for k in hit], force=True)
                log.warning("no result from %s for %s after %.0f s: restarting it", addr, hit, self.limit)
                self.dispatcher._restart_worker(addr)


class Dispatcher:
    """Evaluate batches on a Dask cluster (context manager; the cluster lives across batches).

    Exactly one of: ``workers`` (size of the default LocalCluster of processes, one thread each;
    ``None`` = number of cores; ``0`` = in-process, no Dask), ``address`` (an existing
    scheduler), ``cluster`` (any cluster object: dask-jobqueue, dask-kubernetes, LocalCluster).
    """

    watchdog_grace: float = 10.0  # seconds added to 2 * timeout before the client-side watchdog acts
    scatter_timeout: float = 30.0  # seconds to wait for the oracle to reach the workers

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        cluster: Any = None,
        retries: int = 2,
        timeout: float | None = None,
        max_in_flight: int | None = None,
        dashboard: bool = False,
        quiet: bool = True,
    ) -> None:
        if sum(v is not None for v in (address, cluster)) > 1 or (workers is not None and (address or cluster is not None)):
            raise ValueError("Dispatcher: give at most one of workers=, address=, cluster=")
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
            raise ValueError(f"Dispatcher: workers must be an integer >= 0 (0 = in-process), got {workers!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"Dispatcher: retries must be an integer >= 0, got {retries!r}")
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ValueError(f"Dispatcher: timeout must be a positive number of seconds or None, got {timeout!r}")
        if max_in_flight is not None and (not isinstance(max_in_flight, int) or max_in_flight < 1):
            raise ValueError(f"Dispatcher: max_in_flight must be an integer >= 1 or None, got {max_in_flight!r}")
        self.workers, self.address, self.cluster = workers, address, cluster
        self.retries, self.timeout, self.max_in_flight = retries, timeout, max_in_flight
        self.dashboard, self.quiet = dashboard, quiet
        self.client: Any = None
        self._own_cluster: Any = None
        self._restarts: list[threading.Thread] = []
        self._restarting: set[str] = set()
        self._restart_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def in_process(self) -> bool:
        return self.workers == 0

    def start(self) -> "Dispatcher":
        """Connect (or start the LocalCluster). Idempotent; ``evaluate`` calls it if needed."""
        if self.in_process or self.client is not None:
            return self
        from distributed import Client, LocalCluster

        if self.quiet:
            sched = logging.getLogger("distributed.scheduler")
            if not any(isinstance(f, _HandledLoss) for f in sched.filters):
                sched.addFilter(_HandledLoss())
            for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker",
                         "distributed.core", "distributed.comm", "distributed.batched", "distributed.client"):
                logging.getLogger(name).setLevel(logging.ERROR)
        if self.address is not None:
            self.client = Client(self.address)
        elif self.cluster is not None:
            self.client = Client(self.cluster)
        else:
            import dask

            n = self.workers or os.cpu_count() or 1
            # The active memory manager trims "redundant" replicas, which would leave the
            # broadcast oracle on one worker only; keep a copy on each so a death loses none.
            with dask.config.set({"distributed.scheduler.active-memory-manager.start": False}):
                self._own_cluster = LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0" if self.dashboard else None,
                    # The scheduler's HTTP server (health, metrics; dashboard if asked) on a
                    # free port of 127.0.0.1, never the fixed public default 8787.
                    scheduler_kwargs={"dashboard": self.dashboard, "dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.ERROR if self.quiet else logging.WARNING,
                )
            self.client = Client(self._own_cluster)
        return self

    def close(self) -> None:
        """Close the client, and the cluster if this dispatcher started it."""
        for th in self._restarts:
            th.join(timeout=30)
        self._restarts.clear()
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._own_cluster is not None:
            self._own_cluster.close()
            self._own_cluster = None

    def __enter__(self) -> "Dispatcher":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def dashboard_link(self) -> str | None:
        return None if self.client is None or not self.dashboard else self.client.dashboard_link

    def n_threads(self) -> int:
        """Worker threads the cluster has now (1 in-process)."""
        if self.in_process:
            return 1
        self.start()
        return int(sum(self.client.nthreads().values()))

    def wait_for_workers(self, n: int | None = None, timeout: float = 60.0) -> None:
        """Block until worker restarts (after timeouts) are done and ``n`` workers are up.

        ``n`` defaults to the size of the LocalCluster this dispatcher started (else 1).
        """
        if self.in_process:
            return
        self.start()
        for th in list(self._restarts):
            th.join(timeout)
        want = n if n is not None else (self.workers or os.cpu_count() or 1) if self._own_cluster is not None else 1
        self.client.wait_for_workers(want, timeout=timeout)

    # -- evaluation --------------------------------------------------------------------------
    def _restart_worker(self, address: str) -> None:
        """Restart a worker whose thread hangs, in the background (results keep flowing).

        At most one restart per address at a time; while it runs, new tasks avoid the worker.
        """
        with self._restart_lock:
            if address in self._restarting:
                return
            self._restarting.add(address)

        def go() -> None:
            try:
                res = self.client.restart_workers([address], raise_for_error=False)
                log.info("restart of %s: %s", address, res)
            except Exception as exc:  # no nanny (an external worker): nothing we can do here
                log.warning("could not restart worker %s after a timeout: %s", address, exc)
            finally:
                with self._restart_lock:
                    self._restarting.discard(address)

        th = threading.Thread(target=go, daemon=True, name="alflow-restart")
        th.start()
        self._restarts = [t for t in self._restarts if t.is_alive()] + [th]

    def restarting(self) -> set[str]:
        """Addresses of workers being restarted now."""
        with self._restart_lock:
            return set(self._restarting)

    def _scatter(self, oracle: Oracle) -> Any:
        """Ship the oracle to every worker once; tolerate a worker that is going away."""
        oracle = shippable(oracle)
        last: Exception | None = None
        for attempt in range(4):
            try:
                # After repeated failures, one copy is enough: others fetch it from there.
                # A bounded wait: a worker that is hung but not yet declared dead would
                # otherwise block a broadcast forever.
                return self.client.scatter(oracle, broadcast=attempt < 3, hash=False, timeout=self.scatter_timeout)
            except (OSError, TimeoutError) as exc:  # CommClosedError is an OSError
                last = exc
                time.sleep(0.5 * (attempt + 1))
        raise RuntimeError(f"could not send oracle {oracle.name!r} to the workers: {last}") from last

    def evaluate(
        self,
        oracle: Oracle,
        X: Any,
        indices: Sequence[int] | np.ndarray | None = None,
        *,
        timeout: float | None = _UNSET,
        max_in_flight: int | None = _UNSET,
    ) -> Iterator[EvalResult]:
        """Evaluate the rows of ``X``; yield one :class:`EvalResult` per row as each completes.

        ``indices`` (default ``0..n-1``) are the caller's ids of the rows (pool positions). If the
        caller stops iterating early, the work still in flight is cancelled.
        """
        X = np.asarray(X, dtype=float)
        if X.ndim != 2:
            raise ValueError(f"Dispatcher.evaluate: X must be 2-D (n, d), got shape {X.shape}")
        if X.shape[1] != oracle.input_dim:
            raise ValueError(f"Dispatcher.evaluate: X has {X.shape[1]} columns, oracle {oracle.name!r} takes {oracle.input_dim}")
        idx = np.arange(X.shape[0]) if indices is None else np.asarray(indices)
        if idx.shape != (X.shape[0],):
            raise ValueError(f"Dispatcher.evaluate: indices must have shape ({X.shape[0]},), got {idx.shape}")
        timeout = self.timeout if timeout is _UNSET else timeout
        limit = self.max_in_flight if max_in_flight is _UNSET else max_in_flight
        if X.shape[0] == 0:
            return iter(())
        if self.in_process:
            return self._evaluate_local(oracle, X, idx, timeout)
        self.start()
        return self._evaluate_dask(oracle, X, idx, timeout, limit)

    def _finish(self, pos_index: int, out: dict[str, Any], attempts: int) -> EvalResult:
        return EvalResult(index=int(pos_index), ok=bool(out["ok"]), y=out["y"], wall_time=float(out["wall"]),
                          worker=str(out["worker"]), reason=out["reason"], attempts=attempts)

    def _evaluate_local(self, oracle: Oracle, X: np.ndarray, idx: np.ndarray, timeout: float | None) -> Iterator[EvalResult]:
        for pos in range(X.shape[0]):
            for attempt in range(1, self.retries + 2):
                out = run_point(oracle, X[pos], timeout)
                if out["ok"] or attempt == self.retries + 1:
                    yield self._finish(idx[pos], out, attempt)
                    break

    def _evaluate_dask(self, oracle: Oracle, X: np.ndarray, idx: np.ndarray, timeout: float | None,
                       limit: int | None) -> Iterator[EvalResult]:
        from distributed import as_completed

        client = self.client
        n = X.shape[0]
        batch = uuid.uuid4().hex[:10]
        oref = self._scatter(oracle)
        attempts = np.zeros(n, dtype=int)
        queue: deque[int] = deque(range(n))
        live: dict[Any, int] = {}
        # with_results: results are fetched in the event loop as they land, not by a blocking
        # round trip from this thread per future (that halved the dispatch overhead).
        ac = as_completed(with_results=True, raise_errors=False)
        cap_checked = 0.0
        cap = limit or 1

        def capacity() -> int:
            nonlocal cap_checked, cap
            if limit is not None:
                return limit
            now = time.monotonic()
            if now - cap_checked > 1.0:  # the cluster may scale; ask the scheduler at most 1/s
                cap = max(int(sum(client.nthreads().values())), 1)
                cap_checked = now
            return cap

        submitted: dict[Any, float] = {}
        lost = np.zeros(n, dtype=int)

        def submit(pos: int) -> None:
            attempts[pos] += 1
            key = f"alflow-eval-{batch}-{int(idx[pos])}-{attempts[pos]}-{lost[pos]}"
            avoid = self.restarting()
            healthy = [w for w in client.nthreads() if w not in avoid] if avoid else None
            # A loose restriction: prefer workers that are not being restarted (a task sent to
            # one would only be killed with it), but run anywhere if none is left.
            fut = client.submit(run_point, oref, X[pos], timeout, key=key, pure=False, retries=0,
                                workers=healthy or None, allow_other_workers=bool(healthy))
            live[fut] = pos
            submitted[fut] = time.monotonic()
            if watchdog is not None:
                watchdog.track(fut)
            ac.add(fut)

        watchdog = _Watchdog(self, timeout, self.watchdog_grace) if timeout is not None else None
        if watchdog is not None:
            watchdog.start()

        try:
            while queue and len(live) < capacity():
                submit(queue.popleft())
            for fut, payload in ac:
                pos = live.pop(fut)
                t_sub = submitted.pop(fut)
                if watchdog is not None:
                    watchdog.untrack(fut)
                if fut.status == "finished" and isinstance(payload, dict):
                    out = payload
                elif watchdog is not None and fut.key in watchdog.fired:
                    out = {"ok": False, "y": None, "wall": time.monotonic() - t_sub, "restart": False,
                           "worker": watchdog.fired[fut.key],
                           "reason": f"timeout: no result {watchdog.limit:.0f} s after submission "
                                     "(worker unresponsive, restarted)"}
                else:  # KilledWorker, lost data, cancelled: a failure, not a crash
                    exc = payload[1] if isinstance(payload, tuple) and len(payload) == 3 else payload
                    out = {"ok": False, "y": None, "wall": time.monotonic() - t_sub, "worker": "", "restart": False,
                           "reason": f"worker failure: {type(exc).__name__}: {exc}"}
                    if oref.status != "finished" or "lost dependencies" in str(exc):
                        # The scattered oracle died with its worker (Dask keeps one replica of
                        # scattered data): not the point's fault, so re-scatter and do not count
                        # the attempt (bounded, in case the cluster keeps losing workers).
                        if oref.status != "finished":
                            oref = self._scatter(oracle)
                        if lost[pos] < 3 + self.retries:
                            lost[pos] += 1
                            attempts[pos] -= 1
                fut.release()
                if out.get("restart"):
                    self._restart_worker(out["worker"])
                done = out["ok"] or attempts[pos] > self.retries
                if not done:
                    log.info("retrying index %s after: %s", idx[pos], out["reason"])
                    queue.appendleft(pos)
                # Refill before yielding: the workers keep computing while the caller stores.
                while queue and len(live) < capacity():
                    submit(queue.popleft())
                if done:
                    yield self._finish(idx[pos], out, int(attempts[pos]))
        finally:
            if watchdog is not None:
                watchdog.halt.set()
            if live:
                client.cancel(list(live), force=True)
            live.clear()
            oref.release()
