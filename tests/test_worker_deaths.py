"""Oracles that kill their worker: each such point ends as a recorded failure, the batch goes on.

Issue 16, item 4: with an oracle that calls ``os._exit`` or segfaults for a region of inputs,
a stock LocalCluster ran out of workers after about 10 deaths and the campaign died ("No valid
workers found"; a resume: "Can not use replicate to delete data"). Every test here starts its own
cluster: deaths must not disturb the clusters of other tests.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time

import cloudpickle
import numpy as np
import pytest

from oracles import Dispatcher, NoWorkersLeft, Oracle

cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Deadly(Oracle):
    """y = x0 + x1, except x0 = -8: ``os._exit(3)``, x0 = -9: a segfault (reads address 0)."""

    name = "deadly"

    def __init__(self, sleep: float = 0.0) -> None:
        self.sleep = sleep
        self._setup([[-10, 10], [-10, 10]], ["y"])

    def _evaluate(self, x: np.ndarray) -> list[float]:
        if x[0] == -8:
            os._exit(3)
        if x[0] == -9:
            ctypes.string_at(0)
        if self.sleep:
            time.sleep(self.sleep)
        return [x[0] + x[1]]


def points(n: int) -> np.ndarray:
    return np.column_stack([np.arange(n, dtype=float), np.ones(n)])


@pytest.mark.timeout(300)
def test_points_that_kill_their_worker_are_failures_and_the_cluster_heals():
    X = points(10)
    X[[1, 6], 0] = -8
    X[[3, 8], 0] = -9
    with Dispatcher(workers=2, retries=1) as d:
        t0 = time.time()
        res = {r.index: r for r in d.evaluate(Deadly(), X)}
        assert sorted(res) == list(range(10))
        for i in (1, 6, 3, 8):
            r = res[i]
            assert not r.ok and r.kind == "worker_died" and r.attempts == 2, r
            assert r.reason.startswith("worker died while evaluating this point"), r.reason
            assert "2 of 2 attempts" in r.reason and r.worker.startswith("worker-")
            assert r.submitted >= t0 and r.finished >= r.submitted and np.isnan(r.started)
        # The reason names how the worker ended, as its nanny reaped it. Reaping can race with
        # the nanny's restart, and then multiprocessing reports 255 for an exit it could not
        # decode (seen once in a full-suite run: 1 of 4 points); every other death must name
        # the true status, and at least one of each kind must.
        unknown = "was killed by an unknown signal (exit status 255)"
        expected = {1: "exited with status 3", 6: "exited with status 3",
                    3: "killed by signal 11 (SIGSEGV)", 8: "killed by signal 11 (SIGSEGV)"}
        for i, how in expected.items():
            assert how in res[i].reason or unknown in res[i].reason, res[i].reason
        assert any(expected[i] in res[i].reason for i in (1, 6)), [res[i].reason for i in (1, 6)]
        assert any(expected[i] in res[i].reason for i in (3, 8)), [res[i].reason for i in (3, 8)]
        for i in (0, 2, 4, 5, 7, 9):
            assert res[i].ok and res[i].y[0] == X[i].sum() and res[i].attempts == 1
        # 8 deaths later the cluster is whole again, and a new batch (a resume) just works
        d.wait_for_workers(2, timeout=120)
        again = list(d.evaluate(Deadly(sleep=0.2), points(6)))
        assert all(r.ok for r in again)
        assert len({r.worker for r in again}) == 2


@pytest.mark.timeout(300)
def test_workers_the_local_cluster_lost_are_started_again():
    """A nanny that is gone for good (what SpecCluster did after a death it thought final)
    is replaced from the cluster's worker spec, and the batch goes on."""
    with Dispatcher(workers=2, retries=0) as d:
        d.replenish_interval = 0.2
        cluster = d._own_cluster
        gone = cluster.workers.pop(1)
        cluster.sync(gone.close)  # its worker leaves; nothing would ever start it again
        res = list(d.evaluate(Deadly(sleep=0.1), points(8)))
        assert all(r.ok for r in res)
        d.wait_for_workers(2, timeout=120)
        deadline = time.monotonic() + 60  # the cluster files the new nanny once it has started
        while set(cluster.workers) != {0, 1} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert set(cluster.workers) == {0, 1}


def _external_worker(address: str) -> subprocess.Popen:
    """A worker without a nanny: nobody restarts it when it dies."""
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--no-nanny", "--nthreads", "1",
         "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.timeout(300)
def test_no_worker_left_on_an_external_cluster_raises_one_clear_error_and_shuts_nothing_down():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster:
        addr = cluster.scheduler_address
        worker = _external_worker(addr)
        try:
            with Dispatcher(address=addr, retries=1) as d:
                d.no_workers_timeout = 3.0
                d.client.wait_for_workers(1, timeout=120)
                X = points(4)
                X[2, 0] = -8  # kills the only worker; no nanny brings it back
                got, t0 = [], time.perf_counter()
                with pytest.raises(NoWorkersLeft, match=r"no Dask worker left: none has been connected "
                                                        r"to scheduler tcp://\S+ for \d+ s") as ei:
                    for r in d.evaluate(Deadly(sleep=0.1), X):
                        got.append(r)
                assert time.perf_counter() - t0 < 60
                done = {r.index for r in got}
                assert 2 not in done and sorted(done | set(ei.value.pending)) == [0, 1, 2, 3]
                assert "\n" not in str(ei.value)
            assert worker.wait(timeout=30) == 3  # the oracle's exit, not ours
            # the scheduler is untouched: a new worker joins and the pending points can be resumed
            assert cluster.status.name == "running"
            worker = _external_worker(addr)
            with Client(addr) as c:
                c.wait_for_workers(1, timeout=120)
            with Dispatcher(address=addr) as d:
                res = list(d.evaluate(Deadly(), points(4)[[i for i in ei.value.pending if i != 2]]))
            assert res and all(r.ok for r in res)
        finally:
            worker.kill()
            worker.wait()


KILLS_ITS_WORKER = '''
import os


def f(x):
    """Kills the process it runs in for x0 > 0 (no result, no exception)."""
    if x[0] > 0:
        os._exit(3)
    return float(x[0] + x[1])
'''


@pytest.mark.timeout(300)
def test_a_campaign_on_an_external_cluster_left_without_workers_stops_in_one_line(tmp_path, monkeypatch):
    """The campaign turns NoWorkersLeft into its one-line error (exit 2 in `alflow run`): every
    label that arrived is stored, the rest stays requested, the scheduler is left running."""
    from distributed import LocalCluster

    from alcore import campaign
    from alcore.campaign import CampaignSetupError
    from alcore.config import load_config
    from alcore.store import CampaignStore
    from campaign_helpers import counting_config, write_toml

    (tmp_path / "killer.py").write_text(KILLS_ITS_WORKER)
    monkeypatch.setattr(Dispatcher, "no_workers_timeout", 3.0)
    with LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster:
        addr = cluster.scheduler_address
        worker = _external_worker(addr)
        try:
            cfg = counting_config(tmp_path, dask={"workers": None, "address": addr, "retries": 0})
            cfg["oracle"]["name"] = "killer.py:f"
            cfg = load_config(write_toml(tmp_path / "c.toml", cfg))
            with pytest.raises(CampaignSetupError, match=r"^no Dask worker left: none has been connected "
                                                         r"to scheduler tcp://\S+ for \d+ s") as ei:
                campaign.run(cfg)
            assert "\n" not in str(ei.value)
            assert worker.wait(timeout=30) == 3  # the oracle's exit, not ours
            assert cluster.status.name == "running"  # nothing of the user's cluster was shut down
            with CampaignStore.open(cfg.store_path, "r") as st:
                assert st.n_labelled + len(st.requested_indices()) == 8  # nothing lost: resumable
                assert len(st.requested_indices()) >= 1 and len(st.failed_indices()) == 0
        finally:
            worker.kill()
            worker.wait()
