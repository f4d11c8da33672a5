"""Selection off the loop that feeds the workers: a background thread, and a process of its own.

Why: the evaluation stream hands a waiting point to a worker only when the loop that owns it
looks at its results. When that loop also chose the points, a worker that finished during a
selection waited for the selection to end. On the loaded 2-core development machine a pick
took 0.2-0.5 s instead of 0.02 s, and workers waited a median 0.6 s for their next point
(utilisation 0.55 with 8 workers). Here the loop asks for ``n`` points (:meth:`Selector.request`)
and takes the chosen ones (:meth:`Selector.take`) between results; the thread chooses them,
marks them requested in the store (so they are pending, conditioned on, and resent on resume)
and answers several requests that piled up during one selection with one call.

The strategy itself runs in a :class:`SelectionProcess`: in a thread, its numpy and torch work
still held the GIL often enough to delay the loop (measured with 8 workers: a result reached
the loop a median 0.11 s after its evaluation ended with ``nngp_lcmd`` picks in a thread,
0.035 s with ``random`` picks). The process keeps the pool and the newest model; a call sends
the conditioning set, the candidates and, when the model changed, its state.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

__all__ = ["Selector", "SelectionProcess"]

_pool_X: np.ndarray | None = None
_model: tuple[int, Any] | None = None  # (version, model) in the selection process


def _init(pool_X: np.ndarray) -> None:
    global _pool_X
    _pool_X = pool_X


def _pick_remote(version: int, state: dict[str, np.ndarray] | None, known: np.ndarray,
                 candidates: np.ndarray, n: int, kwargs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """In the selection process: the picks of model ``version`` (``state`` when it is new)."""
    global _model
    from alcore.campaign.async_select import pick_from  # noqa: PLC0415
    from alcore.model import DropoutMLP  # noqa: PLC0415
    from alcore.model.threads import training_threads  # noqa: PLC0415

    if state is not None:
        _model = (version, DropoutMLP.from_state(state))
    if _model is None or _model[0] != version:
        raise RuntimeError(f"the selection process has no model version {version}")
    with training_threads(1):
        return pick_from(_pool_X, known, candidates, _model[1], n, **kwargs)


class SelectionProcess:
    """The process that runs the strategy (see the module docstring)."""

    def __init__(self, pool_X: np.ndarray) -> None:
        from alcore.campaign.async_train import process_context  # noqa: PLC0415

        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=process_context(), initializer=_init,
                                         initargs=(np.asarray(pool_X, dtype=float),))
        self._sent: int | None = None  # the model version the process holds

    def pick(self, version: int, model: Any, known: np.ndarray, candidates: np.ndarray, n: int,
             **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        state = model.get_state() if self._sent != version else None
        out = self._pool.submit(_pick_remote, version, state, known, candidates, n, kwargs).result()
        self._sent = version
        return out

    def close(self) -> None:
        processes = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()


class Selector:
    """One background thread that runs ``choose(n) -> picks`` on request.

    ``choose`` must mark its picks requested in the store before it returns them; it may return
    fewer than ``n`` (an empty pool). An exception in it is raised again by :meth:`take`.
    """

    def __init__(self, choose: Callable[[int], np.ndarray]) -> None:
        self._choose = choose
        self._cond = threading.Condition()
        self._want = 0            # points asked for and not yet being chosen
        self._busy = 0            # points being chosen now
        self._ready: deque[int] = deque()
        self._error: BaseException | None = None
        self._closed = False
        self.seconds = 0.0        # time spent choosing
        self._thread = threading.Thread(target=self._loop, daemon=True, name="alflow-select")
        self._thread.start()

    @property
    def outstanding(self) -> int:
        """Points asked for and not yet handed over (being chosen, or waiting to be)."""
        with self._cond:
            return self._want + self._busy + len(self._ready)

    @property
    def idle(self) -> bool:
        """Nothing asked for, nothing being chosen, nothing to take."""
        return self.outstanding == 0

    def request(self, n: int) -> None:
        if n > 0:
            with self._cond:
                self._want += int(n)
                self._cond.notify()

    def cancel(self) -> None:
        """Drop what was asked for and not started (a choice in progress still completes)."""
        with self._cond:
            self._want = 0

    def take(self) -> list[int]:
        """The points chosen since the last call (raises the thread's exception, if any)."""
        with self._cond:
            if self._error is not None:
                raise self._error
            out = list(self._ready)
            self._ready.clear()
            return out

    def wait(self, timeout: float) -> None:
        """Until points are ready, the thread is idle, or ``timeout`` seconds passed."""
        with self._cond:
            self._cond.wait_for(lambda: self._ready or self._error is not None
                                or (self._want == 0 and self._busy == 0), timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._want = 0
            self._cond.notify_all()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._want > 0 or self._closed)
                if self._closed:
                    return
                n, self._want, self._busy = self._want, 0, self._want
            t0 = time.perf_counter()
            try:
                picks = [int(i) for i in self._choose(n)]
            except BaseException as exc:  # noqa: BLE001 - raised again in the loop's thread
                with self._cond:
                    self._error, self._busy = exc, 0
                    self._cond.notify_all()
                return
            with self._cond:
                self.seconds += time.perf_counter() - t0
                self._ready.extend(picks)
                self._busy = 0
                self._cond.notify_all()
