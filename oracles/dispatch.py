"""Fan oracle evaluations out over a Dask cluster; results as they complete.

Why it is shaped this way:

* **Results as they complete**, each with its pool index, so the caller can make every label
  durable the moment it exists; a crash of the caller then loses at most the evaluations in
  flight. :meth:`Dispatcher.stream` is the primitive (submit one point at a time, e.g. the next
  one the moment a worker frees up); :meth:`Dispatcher.evaluate` is a batch on top of it.
* **Failures are data** with a kind (:mod:`oracles.evaluation`): an exception, a NaN, a
  timeout or a dead worker is retried (``retries`` more times, fresh task key) and then
  reported as an :class:`EvalResult` with ``ok=False``; a failure that is the same for every
  point (``"setup"``: wrong output count, a call that cannot bind, a missing module) is never
  retried. The rest of the batch goes on.
* **Worker deaths** (an oracle that calls ``os._exit`` or segfaults for some inputs): on the
  LocalCluster the dispatcher starts, the scheduler is told not to re-run a task whose worker
  died (``allowed-failures = 0``), so each death is one attempt of that point and the retry
  rule above decides; the nanny reports the exit status (:mod:`oracles.worker_exits`), which
  goes into the reason; dead workers are replaced by their nannies, and workers the cluster
  gave up on are started again. The oracle reaches every worker, replacements included, as a
  worker plugin (:mod:`oracles.shipping`), so no death can lose it. On an external cluster
  (``address=``, ``cluster=``) nothing is ever shut down; when no worker is left, the stream
  raises :class:`NoWorkersLeft` after ``no_workers_timeout`` seconds.
* **Timeouts at process level.** A Python thread cannot be interrupted, so with a timeout the
  oracle runs in a watchdog thread inside the worker; when it overruns, the oracle is asked to
  ``abort`` (the ``command`` oracle kills its programs) and, if its thread still runs, the worker
  is restarted through its nanny. If C code holds the GIL, the worker cannot even report; a
  client-side watchdog (:mod:`oracles.watchdog`) then cancels the task after ``2 * timeout +
  10`` s and restarts the worker.
* **One cluster for the whole campaign**: the dispatcher is a context manager that keeps its
  client and cluster across batches; an oracle is shipped once and reused while unchanged.
* Tasks use ``pure=False`` and unique keys: identical inputs must still be evaluated
  (stochastic simulators) and a retry must never be answered from a cached failure.

``Dispatcher(workers=0)`` evaluates in-process with the same semantics (no Dask): handy for
debugging an oracle and for tests of the callers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .base import Oracle, OracleSetupError
from .evaluation import EvalResult
from .stream import DaskStream, EvalStream, LocalStream, NoWorkersLeft

log = logging.getLogger(__name__)

_UNSET: Any = object()

__all__ = ["Dispatcher", "EvalResult", "NoWorkersLeft"]


def _bounded(fn: Callable[[], Any], timeout: float, what: str) -> bool:
    """Run ``fn`` in a helper thread for at most ``timeout`` s; False if it did not finish.

    For cluster-wide broadcasts (plugin registration) that a hung worker could block forever.
    Exceptions propagate.
    """
    box: dict[str, BaseException] = {}

    def go() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["exc"] = exc

    th = threading.Thread(target=go, daemon=True, name=f"alflow-{what}")
    th.start()
    th.join(timeout)
    if "exc" in box:
        raise box["exc"]
    if th.is_alive():
        log.warning("%s did not finish within %.0f s; going on", what, timeout)
        return False
    return True


class _HandledByUs(logging.Filter):
    """Drop the scheduler's ERROR line for each of our tasks whose worker died: the death is
    recorded in the point's result (with the exit status), so the line is only noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("alflow-eval-" in msg and "workers died while trying to run it" in msg)


class Dispatcher:
    """Evaluate points on a Dask cluster (context manager; the cluster lives across batches).

    Exactly one of: ``workers`` (size of the default LocalCluster of processes, one thread each;
    ``None`` = number of cores; ``0`` = in-process, no Dask), ``address`` (an existing
    scheduler), ``cluster`` (any cluster object: dask-jobqueue, dask-kubernetes, LocalCluster).
    """

    watchdog_grace: float = 10.0      # seconds added to 2 * timeout before the client-side watchdog acts
    ship_timeout: float = 30.0        # seconds to wait for the oracle to reach the workers
    no_workers_timeout: float = 60.0  # seconds without any worker, work in flight, before NoWorkersLeft
    exit_report_wait: float = 2.0     # seconds to wait for a nanny's report of how a worker died
    replenish_interval: float = 2.0   # seconds between checks that the own cluster has all its workers

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        cluster: Any = None,
        retries: int = 2,
        timeout: float | None = None,
        max_in_flight: int | None = None,
        dashboard: bool | str = False,
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
        self._shipped: dict[str, int] = {}  # token -> streams using it (kept registered when 0)
        self._ship_lock = threading.Lock()
        self._exits: OrderedDict[str, int] = OrderedDict()  # worker address -> exit code (nanny reports)
        self._exits_cond = threading.Condition()
        self._exit_reporter = False
        self._replenished = -float("inf")

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def in_process(self) -> bool:
        return self.workers == 0

    def start(self) -> "Dispatcher":
        """Connect (or start the LocalCluster). Idempotent; ``stream``/``evaluate`` call it."""
        if self.in_process or self.client is not None:
            return self
        from distributed import Client  # noqa: PLC0415

        if self.quiet:
            sched = logging.getLogger("distributed.scheduler")
            if not any(isinstance(f, _HandledByUs) for f in sched.filters):
                sched.addFilter(_HandledByUs())
            for name in ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker",
                         "distributed.core", "distributed.comm", "distributed.batched", "distributed.client",
                         "distributed.deploy.spec"):
                logging.getLogger(name).setLevel(logging.ERROR)
        if self.dashboard and self.address is None and self.cluster is None and not _have_bokeh():
            log.warning("the Dask dashboard needs bokeh (pip install 'alflow[dashboard]'); starting without it")
        if self.address is not None:
            self.client = Client(self.address)
        elif self.cluster is not None:
            self.client = Client(self.cluster)
        else:
            from . import local_cluster  # noqa: PLC0415

            self._own_cluster = local_cluster.start(self.workers, self.dashboard, self.quiet)
            self.client = Client(self._own_cluster)
        self._watch_exits()
        return self

    def _watch_exits(self) -> None:
        """Subscribe to the nannies' reports of worker exits (see :mod:`oracles.worker_exits`)."""
        from .worker_exits import TOPIC, ExitReporter  # noqa: PLC0415

        try:
            self.client.subscribe_topic(TOPIC, self._on_exit_event)
            self._exit_reporter = _bounded(lambda: self.client.register_plugin(ExitReporter()),
                                           self.ship_timeout, "exit-reporter registration")
        except Exception as exc:  # noqa: BLE001 - without it, reasons lack the exit status
            log.warning("cannot watch worker exits (failures will not name the exit status): %s", exc)

    def _on_exit_event(self, event: Any) -> None:
        from .worker_exits import exit_key  # noqa: PLC0415

        _, msg = event
        if isinstance(msg, dict) and msg.get("pid"):
            with self._exits_cond:
                self._exits[exit_key(msg.get("nanny"), msg["pid"])] = int(msg.get("exitcode") or 0)
                while len(self._exits) > 1000:
                    self._exits.popitem(last=False)
                self._exits_cond.notify_all()

    def exit_of(self, nanny: str | None, pid: int | None, wait: float = 0.0) -> str:
        """How the worker process ``pid`` of ``nanny`` ended (``"was killed by signal 11
        (SIGSEGV)"``), waiting up to ``wait`` s for the nanny's report."""
        from .worker_exits import describe_exit, exit_key  # noqa: PLC0415

        key = exit_key(nanny, pid)
        with self._exits_cond:
            if nanny and pid:
                self._exits_cond.wait_for(lambda: key in self._exits, timeout=wait)
            return describe_exit(self._exits.get(key))

    def close(self) -> None:
        """Close the client, and the cluster if this dispatcher started it. On a cluster it did
        not start, only its own plugins are removed: no worker is touched."""
        for th in self._restarts:
            th.join(timeout=30)
        self._restarts.clear()
        if self.client is not None:
            if self._own_cluster is None:
                self._unregister_plugins()
            try:
                self.client.close()
            except Exception as exc:  # noqa: BLE001 - closing must not mask the caller's outcome
                log.warning("closing the Dask client: %s", exc)
            self.client = None
        self._shipped.clear()
        if self._own_cluster is not None:
            self._own_cluster.close()
            self._own_cluster = None

    def _unregister_plugins(self) -> None:
        from .worker_exits import TOPIC, ExitReporter  # noqa: PLC0415

        def go() -> None:
            for token in list(self._shipped):
                self._unship(token)
            if self._exit_reporter:
                self.client.unregister_worker_plugin(ExitReporter.name, nanny=True)
            self.client.unsubscribe_topic(TOPIC)

        try:
            _bounded(go, self.ship_timeout, "plugin removal")
        except Exception as exc:  # noqa: BLE001
            log.warning("removing alflow's plugins from the cluster: %s", exc)

    def __enter__(self) -> "Dispatcher":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard's URL (asked for with ``dashboard=True``, or the external
        cluster's own), or None when there is none."""
        if self.client is None or (self._own_cluster is not None and not self.dashboard):
            return None
        if self._own_cluster is not None and not _have_bokeh():
            return None
        try:
            link = self.client.dashboard_link
        except Exception:  # noqa: BLE001 - no HTTP server on that scheduler
            return None
        return link or None

    def where(self) -> str:
        """Where evaluations run, for messages."""
        if self.in_process:
            return "this process"
        if self._own_cluster is not None:
            return "the local cluster"
        return f"scheduler {self.address or getattr(self.cluster, 'scheduler_address', '?')}"

    def worker_name(self, address: str) -> str:
        """A readable name for the worker at ``address`` (the address if unknown)."""
        from .evaluation import worker_label  # noqa: PLC0415

        try:
            info = self.client.scheduler_info(n_workers=-1)["workers"].get(address, {})
        except Exception:  # noqa: BLE001
            info = {}
        return worker_label(info.get("name"), address)

    def n_threads(self) -> int:
        """Worker threads the cluster has now (1 in-process)."""
        if self.in_process:
            return 1
        self.start()
        return self.threads_now()

    def threads_now(self) -> int:
        """Worker threads connected now. Free on the own LocalCluster (its worker list is kept
        up to date in this process by the scheduler's events); a round trip to the scheduler
        otherwise."""
        if self._own_cluster is not None:
            for _ in range(3):  # the event loop may change the dict while we read it
                try:
                    workers = list(self._own_cluster.scheduler_info["workers"].values())
                    return int(sum(w.get("nthreads", 0) for w in workers))
                except RuntimeError:
                    continue
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

    # -- workers -----------------------------------------------------------------------------
    def _replenish(self) -> None:
        """Start again any worker the own LocalCluster lost (see :mod:`oracles.local_cluster`)."""
        now = time.monotonic()
        if self._own_cluster is None or now - self._replenished < self.replenish_interval:
            return
        self._replenished = now
        from . import local_cluster  # noqa: PLC0415

        try:
            local_cluster.replenish(self._own_cluster)
        except Exception as exc:  # noqa: BLE001 - try again at the next check
            log.warning("could not start replacement workers: %s", exc)

    def _restart_worker(self, address: str) -> None:
        """Restart a worker whose thread hangs, in the background (results keep flowing).

        Only through its nanny: a worker without one would be shut down, not restarted, and on a
        cluster alflow did not start nothing is ever shut down. At most one restart per address
        at a time; while it runs, new tasks avoid the worker.
        """
        with self._restart_lock:
            if address in self._restarting:
                return
            self._restarting.add(address)

        def go() -> None:
            try:
                info = self.client.scheduler_info(n_workers=-1)["workers"].get(address)
                if info is None:
                    return  # gone already
                if not info.get("nanny"):
                    log.warning("worker %s hangs after a timeout but has no nanny to restart it", address)
                    return
                res = self.client.restart_workers([address], raise_for_error=False)
                log.info("restart of %s: %s", address, res)
            except Exception as exc:  # noqa: BLE001
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

    # -- shipping the oracle -----------------------------------------------------------------
    def _ship(self, oracle: Oracle) -> str:
        """Make the oracle available on every worker, present and future; returns its token.

        The same oracle (same pickled bytes) is shipped once per dispatcher and reused by later
        streams; shipments of other oracles that no stream uses are removed first.
        """
        from .shipping import OracleShipment, pack  # noqa: PLC0415

        try:
            token, payload = pack(oracle)
        except Exception as exc:
            raise OracleSetupError(
                f"oracle {getattr(oracle, 'name', oracle)!r} cannot be sent to the Dask workers: it must be "
                f"picklable with cloudpickle (keep open files, locks and solver handles out of it): "
                f"{type(exc).__name__}: {exc}") from exc
        with self._ship_lock:
            if token in self._shipped:
                self._shipped[token] += 1
                return token
            for other, users in list(self._shipped.items()):
                if users == 0:
                    self._unship(other)
            plugin = OracleShipment(token, payload, getattr(oracle, "name", "oracle"))
            try:
                # The scheduler records the plugin before it broadcasts it, so even if a hung
                # worker holds up the broadcast, every worker that registers later gets it;
                # a worker that has none answers "missing" and the point is sent again.
                _bounded(lambda: self.client.register_plugin(plugin), self.ship_timeout, "oracle shipment")
            except Exception as exc:
                raise RuntimeError(f"could not send oracle {plugin.label!r} to the workers: {exc}") from exc
            self._shipped[token] = 1
            return token

    def _release(self, token: str) -> None:
        with self._ship_lock:
            if token in self._shipped:
                self._shipped[token] = max(self._shipped[token] - 1, 0)

    def _unship(self, token: str) -> None:
        from .shipping import PLUGIN_PREFIX  # noqa: PLC0415

        self._shipped.pop(token, None)
        try:
            self.client.unregister_worker_plugin(PLUGIN_PREFIX + token)
        except Exception as exc:  # noqa: BLE001 - a stale plugin only costs scheduler memory
            log.debug("removing oracle shipment %s: %s", token, exc)

    # -- evaluation --------------------------------------------------------------------------
    def stream(self, oracle: Oracle, *, timeout: float | None = _UNSET,
               max_in_flight: int | None = _UNSET) -> EvalStream:
        """A stream of evaluations of ``oracle`` (use it as a context manager; see
        :mod:`oracles.stream`). ``timeout``/``max_in_flight`` default to the dispatcher's."""
        timeout = self.timeout if timeout is _UNSET else timeout
        limit = self.max_in_flight if max_in_flight is _UNSET else max_in_flight
        if self.in_process:
            return LocalStream(oracle, self.retries, timeout)
        self.start()
        return DaskStream(self, oracle, self.retries, timeout, limit)

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
        caller stops iterating early, the work still in flight is cancelled. A batch on top of
        :meth:`stream`: every row is submitted at once and waits in the stream for a free slot.
        """
        X = np.asarray(X, dtype=float)
        if X.ndim != 2:
            raise ValueError(f"Dispatcher.evaluate: X must be 2-D (n, d), got shape {X.shape}")
        if X.shape[1] != oracle.input_dim:
            raise ValueError(f"Dispatcher.evaluate: X has {X.shape[1]} columns, oracle {oracle.name!r} takes {oracle.input_dim}")
        idx = np.arange(X.shape[0]) if indices is None else np.asarray(indices)
        if idx.shape != (X.shape[0],):
            raise ValueError(f"Dispatcher.evaluate: indices must have shape ({X.shape[0]},), got {idx.shape}")
        if X.shape[0] == 0:
            return iter(())
        return self._batch(oracle, X, idx, timeout, max_in_flight)

    def _batch(self, oracle: Oracle, X: np.ndarray, idx: np.ndarray, timeout: Any, limit: Any) -> Iterator[EvalResult]:
        with self.stream(oracle, timeout=timeout, max_in_flight=limit) as s:
            for i, x in zip(idx, X):
                s.submit(int(i), x)
            yield from s.results()


def _have_bokeh() -> bool:
    """Dask serves its dashboard only with bokeh installed (``pip install 'alflow[dashboard]'``)."""
    import importlib.util  # noqa: PLC0415

    return importlib.util.find_spec("bokeh") is not None
