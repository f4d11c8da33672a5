"""A stream of evaluations: submit points one at a time, take results as each completes.

This is what an asynchronous campaign uses to keep every worker busy: it submits as many points
as there are worker slots, and each time a result arrives it stores it and submits the next one::

    with dispatcher.stream(oracle) as s:        # ships the oracle to the workers once
        for i in first_points(s.capacity):
            s.submit(i, X[i])
        for r in s.results():                   # EvalResult as each completes
            store(r)
            if more_to_do():
                s.submit(j, X[j])               # allowed inside the loop
        ...
        s.cancel_pending()                      # a stop: drop what has not started

Semantics shared by both implementations (:class:`LocalStream` in-process, :class:`DaskStream`):

* ``submit`` never blocks. At most ``capacity`` evaluations run at once; the rest wait in the
  stream (on the client, not in a worker's queue, where they would wait behind a slow
  simulation while another worker idles), in submission order. Retries go first.
* A point is retried (``retries`` more times, fresh task key) after a failure of kind
  ``error``, ``timeout`` or ``worker_died``, never after ``setup``. One ``EvalResult`` per
  submitted point, after its last attempt (see :mod:`oracles.evaluation` for the kinds).
* ``results(timeout=None)`` yields results as they complete and returns when nothing is in
  flight, or once ``timeout`` seconds have passed since the call (the work goes on; call
  ``results`` again).
* Leaving the ``with`` block cancels whatever is still in flight.
* On a Dask cluster, when no worker at all has been there for ``no_workers_timeout`` seconds
  while points are in flight, ``results`` raises :class:`NoWorkersLeft` (after cancelling this
  stream's own tasks; nothing of the cluster is shut down).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .evaluation import (CANCELLED, ERROR, MISSING, OK, RETRIED, SETUP, TIMEOUT, WORKER_DIED, EvalResult, run_point,
                         worker_label)

if TYPE_CHECKING:  # pragma: no cover
    from .dispatch import Dispatcher

log = logging.getLogger("oracles.dispatch")

LOST = "lost"  # internal, never a result: the cluster cancelled or forgot the task (resubmitted)


class NoWorkersLeft(RuntimeError):
    """No Dask worker has been available for ``no_workers_timeout`` seconds while evaluations
    were in flight. Nothing was shut down; ``pending`` holds the caller's indices of the points
    that were not evaluated (they should stay unlabelled, to be sent again on resume)."""

    def __init__(self, message: str, pending: list[int]) -> None:
        super().__init__(message)
        self.pending = pending


@dataclass(eq=False)
class _Job:
    index: int
    x: np.ndarray
    submitted: float       # unix time of the caller's submit()
    attempts: int = 0      # attempts charged to the point
    resubmits: int = 0     # resubmissions after the cluster lost its task (not charged)
    deaths: int = 0        # attempts that ended with a dead worker


class EvalStream:
    """Bookkeeping shared by the in-process and the Dask streams (see the module docstring)."""

    def __init__(self, oracle: Any, retries: int, timeout: float | None) -> None:
        self.oracle, self.retries, self.timeout = oracle, retries, timeout
        self._queue: deque[_Job] = deque()

    # -- the caller's API -------------------------------------------------------------------
    def submit(self, index: int, x: Any) -> None:
        """Queue point ``x`` (shape ``(d,)``) under the caller's ``index``; never blocks."""
        x = np.asarray(x, dtype=float)
        if x.shape != (self.oracle.input_dim,):
            raise ValueError(f"submit: x must have shape ({self.oracle.input_dim},) for oracle "
                             f"{self.oracle.name!r}, got {x.shape}")
        self._queue.append(_Job(int(index), x, time.time()))
        self._fill()

    @property
    def in_flight(self) -> int:
        """Points submitted whose result has not been yielded yet (running or waiting)."""
        raise NotImplementedError

    @property
    def capacity(self) -> int:
        """Evaluations that can run at once now (worker threads, or ``max_in_flight``); >= 1."""
        raise NotImplementedError

    def results(self, timeout: float | None = None) -> Iterator[EvalResult]:
        raise NotImplementedError

    def cancel_pending(self) -> list[int]:
        """Drop the points that have not started (waiting in the stream, or waiting for a
        retry); running ones go on and are yielded. Returns the dropped indices."""
        dropped = [job.index for job in self._queue]
        self._queue.clear()
        return dropped

    def close(self) -> None:
        self._queue.clear()

    def __enter__(self) -> "EvalStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- shared rules -----------------------------------------------------------------------
    def _fill(self) -> None:
        """Start waiting points while there is capacity (no-op in-process)."""

    def _settle(self, job: _Job, out: dict[str, Any]) -> EvalResult | None:
        """The point's result, or None when it is to be retried."""
        kind = out["kind"]
        if kind in RETRIED and job.attempts <= self.retries:
            return None
        return EvalResult(
            index=job.index, ok=kind == OK, y=out.get("y") if kind == OK else None,
            wall_time=float(out.get("wall", math.nan)), worker=str(out.get("worker", "")),
            reason=out.get("reason"), attempts=job.attempts, kind=kind, submitted=job.submitted,
            started=float(out.get("started", math.nan)), finished=float(out.get("finished", math.nan)))


class LocalStream(EvalStream):
    """In-process evaluation, one point at a time, in the caller's thread (``workers=0``)."""

    def __init__(self, oracle: Any, retries: int, timeout: float | None) -> None:
        super().__init__(oracle, retries, timeout)
        self._running = 0

    @property
    def in_flight(self) -> int:
        return len(self._queue) + self._running

    @property
    def capacity(self) -> int:
        return 1

    def results(self, timeout: float | None = None) -> Iterator[EvalResult]:
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        while self._queue and time.monotonic() < deadline:
            job = self._queue.popleft()
            self._running = 1
            try:
                while True:
                    job.attempts += 1
                    result = self._settle(job, run_point(self.oracle, job.x, self.timeout))
                    if result is not None:
                        break
                    log.info("retrying index %s", job.index)
            finally:
                self._running = 0
            yield result


class DaskStream(EvalStream):
    """Evaluations as Dask tasks on the dispatcher's cluster."""

    max_resubmits = 5   # times a point is resubmitted, uncharged, after the cluster lost its task
    death_grace = 0.3   # seconds to gather the tasks that one worker death took along

    def __init__(self, dispatcher: "Dispatcher", oracle: Any, retries: int, timeout: float | None,
                 max_in_flight: int | None) -> None:
        super().__init__(oracle, retries, timeout)
        self._d = dispatcher
        self._client = dispatcher.client
        self._limit = max_in_flight
        self._live: dict[Any, tuple[_Job, float]] = {}  # future -> (job, monotonic time sent)
        self._batch = uuid.uuid4().hex[:10]
        self._sent = 0
        self._threads = 0
        self._threads_checked = -math.inf
        self._no_workers_since: float | None = None
        # Evaluations whose worker died, parked for `death_grace` s by the dead process, so that
        # the deaths that took several of them along can be told from those that took one.
        self._parked: dict[str, tuple[float, list[tuple[_Job, Any]]]] = {}
        self._token: str | None = None
        self._ac: Any = None
        self._watchdog: Any = None

    def __enter__(self) -> "DaskStream":
        from distributed import as_completed  # noqa: PLC0415

        self._token = self._d._ship(self.oracle)
        # with_results: results are fetched in the event loop as they land, not by a blocking
        # round trip from this thread per future.
        self._ac = as_completed(with_results=True, raise_errors=False)
        self._refresh_threads(force=True)
        if self.timeout is not None:
            from .watchdog import Watchdog  # noqa: PLC0415

            self._watchdog = Watchdog(self._client, self.timeout, self._d.watchdog_grace,
                                      self._d._restart_worker, self._d.restarting)
            self._watchdog.start()
        return self

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.halt.set()
            self._watchdog = None
        live, self._live = list(self._live), {}
        self._queue.clear()
        self._parked.clear()
        if live:
            try:
                self._client.cancel(live, force=True)
            except Exception as exc:  # noqa: BLE001 - the client may be gone already
                log.debug("cancelling in-flight evaluations: %s", exc)
        if self._token is not None:
            self._d._release(self._token)
            self._token = None

    # -- the caller's API -------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._queue) + len(self._live) + sum(len(g) for _, g in self._parked.values())

    def cancel_pending(self) -> list[int]:
        dropped = super().cancel_pending()
        for _, group in self._parked.values():  # dead, and waiting to be sent again: not started
            dropped += [job.index for job, _ in group]
        self._parked.clear()
        return dropped

    @property
    def capacity(self) -> int:
        if self._limit is not None:
            return self._limit
        self._refresh_threads()
        return max(self._threads, 1)

    def results(self, timeout: float | None = None) -> Iterator[EvalResult]:
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        while self.in_flight:
            for result in self._settle_deaths():
                self._fill()
                yield result
            due = min((t + self.death_grace for t, _ in self._parked.values()), default=math.inf)
            done = self._next_done(min(deadline, due))
            if done is None:
                if time.monotonic() >= deadline:
                    return
                continue  # parked deaths are due, or nothing is running
            result = self._handle(*done)
            if result is None or result.kind != SETUP:
                # Before yielding: the workers keep computing while the caller stores. Not after
                # a set-up failure, which the caller will want to stop on before paying more.
                self._fill()
            if result is not None:
                yield result

    # -- machinery --------------------------------------------------------------------------
    def _refresh_threads(self, force: bool = False, every: float = 1.0) -> None:
        now = time.monotonic()
        if force or now - self._threads_checked > every:  # the cluster may change; ask rarely
            try:
                self._threads = self._d.threads_now()
            except Exception as exc:  # noqa: BLE001 - a busy scheduler: keep the last figure
                log.debug("asking the scheduler for its workers: %s", exc)
            self._threads_checked = now

    def _fill(self) -> None:
        if self._limit is None and self._queue and len(self._live) >= self._threads:
            # Points wait and every known slot is taken: a worker may have come back meanwhile
            # (free to ask on the own cluster; a round trip elsewhere, so at most once a second).
            self._refresh_threads(every=0.05 if self._d._own_cluster is not None else 1.0)
        limit = self._limit if self._limit is not None else max(self._threads, 1)
        while self._queue and len(self._live) < limit:
            self._send(self._queue.popleft())

    def _send(self, job: _Job) -> None:
        from .shipping import run_shipped  # noqa: PLC0415

        job.attempts += 1
        self._sent += 1
        key = f"alflow-eval-{self._batch}-{job.index}-{self._sent}"
        extra: dict[str, Any] = {}
        avoid = self._d.restarting()
        if avoid:
            # A loose restriction: prefer workers that are not being restarted (a task sent to
            # one would only be killed with it), but run anywhere if none is left.
            healthy = [w for w in self._client.nthreads() if w not in avoid]
            if healthy:
                extra = {"workers": healthy, "allow_other_workers": True}
        fut = self._client.submit(run_shipped, self._token, job.x, self.timeout, key=key, pure=False,
                                  retries=0, **extra)
        self._live[fut] = (job, time.monotonic())
        self._ac.add(fut)
        if self._watchdog is not None:
            self._watchdog.track(fut)

    def _next_done(self, deadline: float) -> tuple[Any, Any] | None:
        """The next completed (future, payload), or None when nothing is in flight or the
        deadline passed. Between arrivals it watches the cluster (see :meth:`_tick`)."""
        ac = self._ac
        cond = getattr(ac, "thread_condition", None)
        while True:
            if ac.has_ready():
                return next(ac)
            if not self._live and not self._queue:
                if self._parked and time.monotonic() < deadline:
                    time.sleep(min(0.05, deadline - time.monotonic()))
                return None
            self._tick()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            wait = min(0.25, remaining)
            if cond is None:
                time.sleep(min(wait, 0.01))
                continue
            # Check and wait under the condition that as_completed notifies after queueing a
            # result, so an arrival between the check and the wait is not missed. (Never call
            # the client while holding it: the event loop takes it to notify.)
            with cond:
                if not ac.has_ready():
                    cond.wait(wait)

    def _tick(self) -> None:
        """Between results: follow the cluster's size, replace workers the local cluster gave
        up on, and give up when no worker has been there for too long."""
        self._refresh_threads()
        self._d._replenish()
        self._fill()
        if self._threads > 0 or not (self._live or self._queue):
            self._no_workers_since = None
            return
        now = time.monotonic()
        if self._no_workers_since is None:
            self._no_workers_since = now
        elif now - self._no_workers_since >= self._d.no_workers_timeout:
            waited = now - self._no_workers_since
            pending = sorted(job.index for job, _ in self._live.values()) + [job.index for job in self._queue]
            self.close()
            raise NoWorkersLeft(
                f"no Dask worker left: none has been connected to {self._d.where()} for {waited:.0f} s; "
                f"{len(pending)} evaluation(s) not done stay unlabelled (resume when workers are back)",
                pending)

    def _handle(self, fut: Any, payload: Any) -> EvalResult | None:
        job, t_sent = self._live.pop(fut)
        fired = self._watchdog.untrack(fut) if self._watchdog is not None else None
        status = fut.status
        try:
            fut.release()
        except Exception:  # noqa: BLE001
            pass
        if status == "finished" and isinstance(payload, dict):
            out = payload
        elif fired is not None:
            out = {"kind": TIMEOUT, "worker": self._d.worker_name(fired), "wall": time.monotonic() - t_sent,
                   "finished": time.time(),
                   "reason": f"timeout: no result {self._watchdog_limit():.0f} s after submission "
                             "(worker unresponsive, restarted)"}
        else:
            exc = payload[1] if isinstance(payload, tuple) and len(payload) == 3 else payload
            out = self._failure(job, exc, status, t_sent)
        kind = out["kind"]
        if kind == WORKER_DIED:
            key = out["death"]
            first, group = self._parked.get(key, (time.monotonic(), []))
            self._parked[key] = (first, group + [(job, out)])
            return None
        if out.get("restart") and out.get("address"):
            self._d._restart_worker(out["address"])
        if kind in (MISSING, LOST):
            if job.resubmits < self.max_resubmits:
                job.attempts -= 1
                job.resubmits += 1
                log.info("resubmitting index %s (not charged): %s", job.index, out.get("reason"))
                self._queue.appendleft(job)
                return None
            out = {**out, "kind": CANCELLED,
                   "reason": f"cancelled: the cluster lost this evaluation {job.resubmits + 1} times "
                             f"({out.get('reason')})"}
        result = self._settle(job, out)
        if result is None:
            log.info("retrying index %s after: %s", job.index, out.get("reason"))
            self._queue.appendleft(job)
        return result

    def _settle_deaths(self) -> list[EvalResult]:
        """Decide the parked deaths that are due.

        With one task per worker thread, a death that took one of our tasks was caused by it,
        or struck it: either way one attempt of that point. A death that took several (a worker
        with several threads, or a finished result that was lost with the worker and recomputed
        next to the culprit) cannot say which one caused it: none is charged, and each is sent
        again (at most ``max_resubmits`` times; after that, each is charged).
        """
        now = time.monotonic()
        due = [k for k, (t, _) in self._parked.items() if now - t >= self.death_grace]
        results: list[EvalResult] = []
        for key in due:
            _, group = self._parked.pop(key)
            for job, out in group:
                if len(group) > 1 and job.resubmits < self.max_resubmits:
                    job.attempts -= 1
                    job.resubmits += 1
                    log.info("resubmitting index %s (not charged): its worker died with %d of our "
                             "evaluations", job.index, len(group))
                    self._queue.appendleft(job)
                    continue
                result = self._settle(job, self._charge_death(job, out))
                if result is None:
                    log.info("retrying index %s after its worker died", job.index)
                    self._queue.appendleft(job)
                else:
                    results.append(result)
        return results

    def _charge_death(self, job: _Job, out: dict[str, Any]) -> dict[str, Any]:
        """Count a worker death against the point; the reason names how the process ended."""
        # Dask itself re-ran the task on `extra` more workers before giving up: each of those
        # deaths was an attempt of this point too (0 on alflow's own cluster).
        extra = out["extra"]
        job.attempts += extra
        job.deaths += 1 + extra
        final = job.attempts > self.retries
        how = self._d.exit_of(out["nanny"], out["pid"], wait=self._d.exit_report_wait if final else 0.0)
        tried = f"; {job.deaths} of {job.attempts} attempts ended so" if job.attempts > 1 else ""
        return {**out, "reason": f"worker died while evaluating this point: its process {how} "
                                 f"(worker {out['worker']} at {out['address']}{tried})"}

    def _watchdog_limit(self) -> float:
        return 2.0 * (self.timeout or 0.0) + self._d.watchdog_grace

    def _failure(self, job: _Job, exc: Any, status: str, t_sent: float) -> dict[str, Any]:
        """A task that produced no payload: its worker died, the cluster lost it, or the task
        itself could not run (e.g. it could not be unpickled on the worker)."""
        from distributed.scheduler import KilledWorker  # noqa: PLC0415

        out: dict[str, Any] = {"worker": "", "wall": time.monotonic() - t_sent, "finished": time.time()}
        if isinstance(exc, KilledWorker):
            ws = exc.last_worker
            address = getattr(ws, "address", "?")
            nanny, pid = getattr(ws, "nanny", None), getattr(ws, "pid", None)
            self._refresh_threads(force=True)
            return {**out, "kind": WORKER_DIED, "worker": worker_label(getattr(ws, "name", None), address),
                    "address": address, "nanny": nanny, "pid": pid, "death": f"{nanny}/{pid}/{address}",
                    "extra": max(int(exc.allowed_failures), 0), "reason": "worker died"}
        text = f"{type(exc).__name__}: {exc}"
        if status == "cancelled" or type(exc).__name__.endswith("CancelledError"):
            return {**out, "kind": LOST, "reason": f"cancelled by the cluster: {text}"}
        if isinstance(exc, ImportError):
            return {**out, "kind": SETUP,
                    "reason": f"exception: {text} (the task could not be loaded on the worker: the same "
                              "for every point)"}
        return {**out, "kind": ERROR, "reason": f"worker failure: {text}"}
