"""Background training of an asynchronous campaign: a snapshot of the labels in, a model out.

Why a snapshot: the training must not touch the store (the campaign's main thread keeps
writing labels while it trains) and must train on a fixed set, so the model version it makes
says exactly which labels it saw. :class:`TrainJob` holds copies of the labelled inputs and
outputs, the previous version's state (warm start, calibration) and the seed;
:func:`fit_job` runs :func:`alcore.model.fit.fit_surrogate` on it (the same function that
trains the batch campaign's surrogate) with one torch thread.

Why a separate process (:class:`TrainingProcess`): measured with 8 workers on the 2-core
development machine, training in a thread of the campaign's process held the GIL so much that
each pick took 0.2 s instead of 0.02 s and a worker waited a median 0.55 s for its next point
(utilisation 0.62). The process is started once per run (``forkserver`` with the model code
preloaded where available, so later runs in the same program start it quickly).

:class:`Trainer` runs one job at a time in a daemon thread (which waits for the process), so
the campaign polls instead of blocking, and a campaign that stops does not wait for a model it
will not use (the resume trains again on the labels in the store).
"""

from __future__ import annotations

import contextvars
import multiprocessing
import os
import threading
import time
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TrainJob", "TrainResult", "TrainingAbandoned", "TrainingProcess", "fit_job", "Trainer",
           "process_context"]


class TrainingAbandoned(RuntimeError):
    """The run stopped while this version trained (the resume trains it again)."""


@dataclass
class TrainJob:
    """Everything one model version is trained from (copies; nothing shared with the store)."""

    version: int
    indices: np.ndarray                      # pool positions of the labels, in X/y row order
    X: np.ndarray                            # (n, d)
    y: np.ndarray                            # (n, k)
    settings: Any                            # alcore.model.fit.SurrogateSettings
    seed: int
    previous_state: dict[str, np.ndarray] | None = None
    previous_choice: dict[str, Any] | None = None
    new_rows: np.ndarray | None = None       # rows of X labelled since the previous version
    target_X: np.ndarray | None = None       # the pool: the calibration is fitted for it

    @property
    def n_train(self) -> int:
        return int(self.indices.size)


@dataclass
class TrainResult:
    """A finished model version: the model, its state for the checkpoint, the fit's record."""

    version: int
    model: Any                               # alcore.model.DropoutMLP (None across processes)
    state: dict[str, np.ndarray]
    info: dict[str, Any]                     # SurrogateFit.info() + n_train
    n_train: int
    indices: np.ndarray
    seconds: float


def fit_job(job: TrainJob, keep_model: bool = True) -> TrainResult:
    """Fit the surrogate of ``job`` (one torch thread: the workers' machine is busy).

    ``keep_model=False`` leaves the model out of the result (it crosses a process boundary as
    its state; :meth:`TrainingProcess.fit` rebuilds it)."""
    from alcore.model.fit import fit_surrogate  # noqa: PLC0415
    from alcore.model.threads import training_threads  # noqa: PLC0415

    t0 = time.perf_counter()
    with training_threads(1):
        fit = fit_surrogate(job.X, job.y, job.settings, previous_state=job.previous_state,
                            previous_choice=job.previous_choice, seed=job.seed, new_rows=job.new_rows,
                            target_X=job.target_X)
    info = fit.info() | {"n_train": job.n_train}
    return TrainResult(version=job.version, model=fit.model if keep_model else None,
                       state=fit.model.get_state(), info=info, n_train=job.n_train, indices=job.indices,
                       seconds=time.perf_counter() - t0)


def _fit_remote(job: TrainJob) -> TrainResult:
    return fit_job(job, keep_model=False)


def _warm_up() -> int:
    """Import the model code in the training process before the first job needs it."""
    import alcore.model.fit  # noqa: F401, PLC0415

    return os.getpid()


def process_context() -> Any:
    """The multiprocessing context of the run's helper processes (training, selection):
    ``forkserver`` with the model and strategy code preloaded where available, else ``spawn``
    (never ``fork``: the campaign's process has threads)."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["alcore.model.fit", "alcore.strategies"])
    return ctx


class TrainingProcess:
    """One training process for the run (see the module docstring)."""

    def __init__(self) -> None:
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=process_context())
        self.closed = False
        # Starting the process imports torch there (seconds on a busy machine): not in the
        # caller's thread, which meanwhile hands out the initial design.
        self._started = threading.Thread(target=self._pool.submit, args=(_warm_up,), daemon=True,
                                         name="alflow-train-start")
        self._started.start()

    def fit(self, job: TrainJob) -> TrainResult:
        """Train ``job`` in the process (blocks the calling thread, not the GIL)."""
        from alcore.model import DropoutMLP  # noqa: PLC0415

        self._started.join()
        try:
            result = self._pool.submit(_fit_remote, job).result()
        except (BrokenProcessPool, CancelledError, RuntimeError):
            if self.closed:  # RuntimeError: submit after shutdown
                raise TrainingAbandoned(f"model version {job.version}: the run stopped") from None
            raise
        result.model = DropoutMLP.from_state(result.state)
        return result

    def close(self) -> None:
        """Stop the process; a job still running is abandoned (its process ends with it)."""
        self.closed = True
        self._started.join(timeout=60)
        processes = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:  # a fit of a stopping campaign is not worth waiting for
            if p.is_alive():
                p.terminate()


@dataclass
class Trainer:
    """One background training at a time; the campaign polls :meth:`ready`.

    ``run`` is called in the thread as ``run(version)`` and must return the version's summary
    dict; the :class:`TrainResult` itself is handed over through :meth:`deliver` (so that ``run``
    may be a Prefect task, whose return value Prefect records). The calling context (contextvars,
    e.g. Prefect's flow run) is copied into the thread, so a task called there belongs to the
    flow run. ``context`` is taken when the campaign starts, so that a training started from
    inside another task run (the labelling) belongs to the flow run, not to that task run.
    """

    run: Callable[[int], dict[str, Any]]
    context: contextvars.Context | None = None   # run in a copy of this (default: the caller's)
    _thread: threading.Thread | None = None
    _done: threading.Event = field(default_factory=threading.Event)
    _result: TrainResult | None = None
    _error: BaseException | None = None
    _version: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def busy(self) -> bool:
        return self._version is not None

    @property
    def version(self) -> int | None:
        """The version being trained (or finished and not taken yet)."""
        return self._version

    def start(self, version: int) -> None:
        if self.busy:
            raise RuntimeError(f"training of version {self._version} is still running")
        self._version, self._result, self._error = int(version), None, None
        self._done.clear()
        ctx = (self.context.run(contextvars.copy_context) if self.context is not None
               else contextvars.copy_context())
        self._thread = threading.Thread(target=ctx.run, args=(self._work, int(version)), daemon=True,
                                        name=f"alflow-train-{version}")
        self._thread.start()

    def _work(self, version: int) -> None:
        try:
            self.run(version)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the campaign's thread
            with self._lock:
                self._error = exc
        finally:
            self._done.set()

    def deliver(self, result: TrainResult) -> None:
        """Called by ``run`` with the trained version."""
        with self._lock:
            self._result = result

    def ready(self) -> bool:
        """The training finished (a model to take, or an error to raise)."""
        return self.busy and self._done.is_set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout) if self.busy else False

    def take(self) -> TrainResult:
        """The finished version (raises the training's exception); the trainer is free again."""
        if not self.ready():
            raise RuntimeError("no finished training to take")
        with self._lock:
            result, error = self._result, self._error
            self._version, self._result, self._error, self._thread = None, None, None, None
        if error is not None:
            raise error
        if result is None:
            raise RuntimeError("the training step returned without delivering a model")
        return result
