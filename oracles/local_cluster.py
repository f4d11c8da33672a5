"""The LocalCluster alflow starts by default, set up to live through a storm of worker deaths.

An oracle that kills its worker for some inputs (``os._exit``, a segfault) kills one worker
process per attempt. Three things went wrong with a stock LocalCluster (measured: no worker left
after about 10 deaths in 15 s):

* The scheduler re-runs a task whose worker died on up to ``allowed-failures`` (3) more workers,
  so one bad point killed four workers before alflow even saw it. Here a death fails the task at
  once (``allowed-failures = 0``): each death is one attempt of the point, and the dispatcher's
  retry rule decides. ``worker-saturation = 1.0`` keeps at most one task per worker thread, so a
  death takes no innocent queued task with it.
* Each worker's nanny restarts it after a death, but ``SpecCluster`` also closes, for good, any
  nanny whose worker is not registered ``lost-worker-timeout`` (15 s) after a death; in a run of
  deaths that is often the case, and those slots were never refilled. :class:`HealingCluster`
  leaves the restarting to the nannies.
* Should a nanny still disappear, :func:`replenish` starts its worker anew from the cluster's
  worker spec (which keeps every slot).

A terminal's Ctrl-C sends SIGINT to the whole foreground process group: the nannies and workers
died of it, each printing a KeyboardInterrupt traceback, before the campaign could stop cleanly.
They are started with SIGINT ignored (:func:`sigint_ignored`; an ignored signal stays ignored
across exec, and Python then installs no KeyboardInterrupt handler), so the campaign alone
handles Ctrl-C and closes the cluster itself.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dask
from distributed import LocalCluster
from distributed.deploy.cluster import Cluster

log = logging.getLogger("oracles.dispatch")

SCHEDULER_SETTINGS = {
    "distributed.scheduler.allowed-failures": 0,
    "distributed.scheduler.worker-saturation": 1.0,
}


class HealingCluster(LocalCluster):
    """A LocalCluster that never closes a nanny because its worker died (the nanny restarts it)."""

    def _update_worker_status(self, op: str, msg: Any) -> None:
        # Only the bookkeeping of the base Cluster; skip SpecCluster's delayed close of the
        # nanny of a removed worker.
        Cluster._update_worker_status(self, op, msg)


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while the block starts processes, which inherit that (main thread only:
    elsewhere signals cannot be set, and the processes keep Python's default)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def start(workers: int | None, dashboard: bool | str, quiet: bool) -> LocalCluster:
    """Start the cluster: ``workers`` processes (None: one per core), one thread each, that
    leave a terminal's Ctrl-C to the campaign (see the module docstring).

    ``dashboard``: False (none), True (a free port of 127.0.0.1) or a ``"host:port"``.
    """
    where = dashboard if isinstance(dashboard, str) and dashboard else "127.0.0.1:0"
    dashboard = bool(dashboard)
    n = workers or os.cpu_count() or 1
    settings = dict(SCHEDULER_SETTINGS)
    if quiet:
        # Worker processes set up logging when they import distributed, before the nanny's
        # own silencing applies; a worker restarted while the cluster closes would print INFO.
        settings["distributed.nanny.pre-spawn-environ.DASK_LOGGING__DISTRIBUTED"] = "error"
    with dask.config.set(settings), sigint_ignored():  # settings: read when the nannies are created
        return HealingCluster(
            n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=where if dashboard else None,
            # The scheduler's HTTP server (health, metrics; dashboard if asked) on a free port
            # of 127.0.0.1 (or the address asked for), never the fixed public default 8787.
            scheduler_kwargs={"dashboard": dashboard, "dashboard_address": where},
            silence_logs=logging.ERROR if quiet else logging.WARNING,
        )


def replenish(cluster: LocalCluster) -> int:
    """Start the workers of slots that have no nanny any more; returns how many."""
    missing = set(cluster.worker_spec) - set(cluster.workers)
    if missing:
        log.warning("starting %d worker(s) again that the local cluster had lost", len(missing))
        cluster.scale(len(cluster.worker_spec))  # the spec keeps every slot: this refills them
    return len(missing)
