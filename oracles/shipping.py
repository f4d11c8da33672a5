"""Shipping an oracle to every Dask worker once, including workers that join later.

The oracle travels as a Dask *worker plugin* (:class:`OracleShipment`) holding its cloudpickle
bytes. The scheduler keeps registered plugins and hands them to every worker when it registers,
before that worker runs any task. So a worker that replaces a dead one (a nanny restart, an
adaptive cluster growing) has the oracle before its first evaluation, and no death can lose it.
Scattered data (what alflow used before) lives only on workers: when the workers holding it died,
tasks failed with "lost dependencies", and re-scattering or replicating it while workers came
and went failed too ("No valid workers found", "Can not use replicate to delete data").

cloudpickle (not the standard pickle Dask tries first) is used for the payload, so an oracle
from a ``path/file.py`` module, which the workers cannot import, travels by value (the registry
registers such modules with cloudpickle).

Tasks then name the oracle by its token (:func:`run_shipped`): nothing but ``x`` is pickled per
evaluation, and tasks have no dependencies, so the scheduler has no data to place.

This module imports ``distributed``; the dispatcher imports it only when Dask is used.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import cloudpickle
import numpy as np
from distributed.diagnostics.plugin import WorkerPlugin

from .evaluation import MISSING, SETUP, current_worker, run_point

# token -> the oracle, or why it could not be loaded on this worker (a str)
_SHIPPED: dict[str, Any] = {}
_LOCK = threading.Lock()

PLUGIN_PREFIX = "alflow-oracle-"


def pack(oracle: Any) -> tuple[str, bytes]:
    """(token, payload): the oracle's cloudpickle bytes and a digest that names them."""
    payload = cloudpickle.dumps(oracle)
    return hashlib.sha1(payload).hexdigest()[:20], payload


class OracleShipment(WorkerPlugin):
    """A worker plugin that installs one oracle in each worker's registry."""

    idempotent = True  # registering the same token again is a no-op

    def __init__(self, token: str, payload: bytes, label: str) -> None:
        self.token, self.payload, self.label = token, payload, label
        self.name = PLUGIN_PREFIX + token

    def setup(self, worker: Any) -> None:
        try:
            obj: Any = cloudpickle.loads(self.payload)
        except BaseException as exc:  # noqa: BLE001 - reported by every task that needs it
            obj = (f"cannot load oracle {self.label!r} on worker {current_worker()[0]}: "
                   f"{type(exc).__name__}: {exc}")
        with _LOCK:
            _SHIPPED[self.token] = obj

    def teardown(self, worker: Any) -> None:
        with _LOCK:
            _SHIPPED.pop(self.token, None)


def run_shipped(token: str, x: np.ndarray, timeout: float | None) -> dict[str, Any]:
    """The Dask task: evaluate the shipped oracle ``token`` at ``x`` (see ``run_point``).

    A worker without the oracle (its plugin registration timed out) answers ``missing``; the
    dispatcher then resubmits the point without charging it an attempt.
    """
    with _LOCK:
        oracle = _SHIPPED.get(token)
    if oracle is None or isinstance(oracle, str):
        worker, address = current_worker()
        now = time.time()
        out = {"ok": False, "y": None, "worker": worker, "address": address, "restart": False,
               "wall": 0.0, "started": now, "finished": now}
        if oracle is None:
            return {**out, "kind": MISSING, "reason": "the oracle has not reached this worker"}
        return {**out, "kind": SETUP, "reason": f"exception: {oracle} (the same for every point: "
                                                 "the workers must be able to import what the oracle uses)"}
    return run_point(oracle, x, timeout)
