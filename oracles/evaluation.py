"""One evaluation of an oracle at one point: its record, and how a failure is classified.

:func:`run_point` runs where the oracle runs (a Dask worker, or in-process) and never raises:
every outcome is data, a plain dict that travels back cheaply. The dispatcher turns it into an
:class:`EvalResult` once the point is settled (after its retries).

Failure kinds (``EvalResult.kind``), and what the caller should make of them:

======================  ==========================================================  =========
kind                    meaning                                                     retried
======================  ==========================================================  =========
``"ok"``                a label                                                     --
``"error"``             the oracle raised, or returned NaN/inf or a non-number,     yes
                        for this x: a property of x (learnable, e.g. a solver
                        that diverges in a corner of the box)
``"setup"``             the same for every x: wrong number of outputs, a call       never
                        that cannot bind its parameters, a missing module, an
                        oracle that cannot be loaded on the worker, a program that
                        cannot start. The reason says what to set; stop the batch
``"timeout"``           ran past the dispatcher's or the command's timeout          yes
``"worker_died"``       the worker process died while evaluating it (os._exit, a    yes
                        segfault, the OOM killer); the reason names the exit
                        status or signal where the nanny reported it
``"cancelled"``         never evaluated, not because of x: its task was lost by     --
                        the cluster more often than the dispatcher resubmits.
                        Leave the point unlabelled (not a failure of x)
======================  ==========================================================  =========
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import OracleSetupError, OracleTimeout, OutputShapeError

OK, ERROR, SETUP, TIMEOUT, WORKER_DIED, CANCELLED = "ok", "error", "setup", "timeout", "worker_died", "cancelled"
KINDS = (OK, ERROR, SETUP, TIMEOUT, WORKER_DIED, CANCELLED)
RETRIED = frozenset({ERROR, TIMEOUT, WORKER_DIED})
MISSING = "missing"  # internal, never a result: the worker had no copy of the oracle (resubmitted)

ABORT_GRACE = 2.0  # seconds an aborted evaluation thread gets to end before its worker is restarted


@dataclass
class EvalResult:
    """The outcome of one point: a label (``ok``) or a failure with its ``kind`` and ``reason``."""

    index: int                   # the caller's index (pool position) of the point
    ok: bool
    y: np.ndarray | None         # (k,) float64 when ok, else None
    wall_time: float             # seconds the last attempt ran on its worker
    worker: str                  # readable name of the worker of the last attempt ("local" in-process)
    reason: str | None           # why it failed (None when ok); full text, with a program's stderr tail
    attempts: int                # evaluations tried for this point (1 = first try succeeded)
    kind: str = OK               # one of KINDS (see the module docstring)
    submitted: float = math.nan  # unix time the point was first submitted
    started: float = math.nan    # unix time the last attempt started on its worker (NaN: unknown)
    finished: float = math.nan   # unix time the last attempt ended


def worker_label(name: Any, address: str) -> str:
    """A worker name a person can read: Dask's name, ``worker-3`` for a numbered worker, else
    the address."""
    if name is None or name == "" or name == address:
        return address
    if isinstance(name, int) or (isinstance(name, str) and name.isdigit()):
        return f"worker-{name}"
    return str(name)


def current_worker() -> tuple[str, str]:
    """(label, address) of the Dask worker running this code; ``("local", "")`` elsewhere."""
    try:
        from distributed import get_worker  # noqa: PLC0415

        w = get_worker()
    except (ImportError, ValueError):
        return "local", ""
    return worker_label(w.name, w.address), w.address


def classify(exc: BaseException) -> tuple[str, str]:
    """(kind, reason) of an exception raised by an oracle call."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OutputShapeError):
        return SETUP, f"bad output: {exc}"
    if isinstance(exc, OracleSetupError):
        return SETUP, f"exception: {text}"
    if isinstance(exc, ImportError):
        return SETUP, (f"exception: {text} (the same for every point: make the module importable "
                       "where the oracle runs, e.g. install it in the Dask workers' environment)")
    if isinstance(exc, OracleTimeout):
        return TIMEOUT, f"timeout: {exc}"
    return ERROR, f"exception: {text}"


def _call(oracle: Any, x: np.ndarray, box: dict[str, Any]) -> None:
    try:
        box["y"] = oracle(x)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes data
        box["kind"], box["reason"] = classify(exc)


def _check_output(oracle: Any, value: Any) -> tuple[np.ndarray | None, str, str | None]:
    """(y, kind, reason) for what the oracle returned; the dispatcher's own check, for oracles
    that override ``__call__`` and so skip the base class's."""
    try:
        y = np.asarray(value, dtype=float).reshape(-1) if np.ndim(value) <= 1 else None
    except (TypeError, ValueError):
        y = None
    if y is None:
        return None, ERROR, (f"bad output: expected {oracle.output_dim} number(s), got "
                             f"{np.shape(value)} {type(value).__name__}")
    if y.shape != (oracle.output_dim,):
        describe = getattr(oracle, "describe_output_mismatch", None)
        text = describe(y.size) if describe else f"expected shape ({oracle.output_dim},), got {y.shape}"
        return None, SETUP, f"bad output: {text}"
    if not np.all(np.isfinite(y)):
        return None, ERROR, f"non-finite output: {y.tolist()}"
    return y, OK, None


def _stop(oracle: Any, th: threading.Thread) -> bool:
    """Ask an overrunning oracle to stop (``Oracle.abort``); True if its thread then ended."""
    abort = getattr(oracle, "abort", None)
    if abort is None:
        return False
    try:
        abort()
    except Exception:  # noqa: BLE001 - a failing abort only means a worker restart
        return False
    th.join(ABORT_GRACE)
    return not th.is_alive()


def run_point(oracle: Any, x: np.ndarray, timeout: float | None) -> dict[str, Any]:
    """Evaluate one point where it runs; never raises.

    Returns ``{ok, y, kind, reason, wall, started, finished, worker, restart}``; ``restart``
    asks the dispatcher to restart this worker (a thread that overran its timeout and could
    not be stopped still occupies it); ``address`` is the worker's address.
    """
    worker, address = current_worker()
    box: dict[str, Any] = {}
    started = time.time()
    t0 = time.perf_counter()
    out: dict[str, Any] = {"ok": False, "y": None, "kind": ERROR, "reason": None, "worker": worker,
                           "address": address, "started": started, "restart": False}
    if timeout is None:
        _call(oracle, x, box)
    else:
        th = threading.Thread(target=_call, args=(oracle, x, box), daemon=True, name="alflow-oracle")
        th.start()
        th.join(timeout)
        if th.is_alive():
            stopped = _stop(oracle, th)
            out.update(kind=TIMEOUT, restart=not stopped, wall=time.perf_counter() - t0, finished=time.time(),
                       reason=f"timeout: evaluation exceeded {timeout} s"
                              + (" (stopped)" if stopped else " (worker restarted)"))
            return out
    out.update(wall=time.perf_counter() - t0, finished=time.time())
    if "kind" in box:
        out.update(kind=box["kind"], reason=box["reason"])
        return out
    y, kind, reason = _check_output(oracle, box.get("y"))
    out.update(ok=kind == OK, y=y, kind=kind, reason=reason)
    return out
