"""Dispatcher: results as they complete; failures are data; killed workers; cluster reuse.

One LocalCluster-backed Dispatcher (2 worker processes) is shared by the module: starting
Dask costs seconds.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

from oracles import Dispatcher, EvalResult, Oracle, resolve

# The worker processes cannot import this test module: ship its classes by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Behaving(Oracle):
    """y = sum(x), with special inputs that misbehave (x[0] selects the behaviour).

    x0 = -1 raises, -2 returns NaN, -3 hangs, -4 returns the wrong shape, -5 returns inf;
    x0 = -6 sleeps ``slow`` seconds after writing its worker's pid to ``pidfile``;
    x0 = -7 hangs in C code that holds the GIL (catastrophic regex backtracking).
    """

    name = "behaving"

    def __init__(self, pidfile: str = "", slow: float = 3.0, sleep: float = 0.0) -> None:
        self.pidfile, self.slow, self.sleep = pidfile, slow, sleep
        self._setup([[-10, 10], [-10, 10]], ["s"])

    def __call__(self, x):  # bypasses the base-class shape check on purpose (wrong-shape case)
        x = np.asarray(x, float)
        if self.sleep:
            time.sleep(self.sleep)
        code = x[0]
        if code == -1:
            raise RuntimeError("simulator blew up")
        if code == -2:
            return np.array([np.nan])
        if code == -3:
            time.sleep(120)
        if code == -4:
            return np.array([1.0, 2.0])
        if code == -5:
            return np.array([np.inf])
        if code == -7:
            re.match(r"(a+)+$", "a" * 60 + "b")
        if code == -6:
            with open(self.pidfile, "a") as fh:
                fh.write(f"{os.getpid()}\n")
            time.sleep(self.slow)
        return np.array([x.sum()])


@pytest.fixture(scope="module")
def disp():
    with Dispatcher(workers=2, retries=1) as d:
        yield d


def good_points(n: int) -> np.ndarray:
    return np.column_stack([np.arange(n, dtype=float), np.ones(n)])


def test_batch_results_are_complete_correct_and_tagged(disp):
    X = good_points(12)
    idx = np.arange(100, 112)
    res = list(disp.evaluate(Behaving(), X, idx))
    assert len(res) == 12 and all(isinstance(r, EvalResult) and r.ok for r in res)
    assert sorted(r.index for r in res) == list(idx)
    for r in res:
        assert r.y.shape == (1,) and r.y[0] == X[r.index - 100].sum()
        assert r.attempts == 1 and r.reason is None and r.wall_time >= 0
        assert r.worker.startswith("tcp://127.0.0.1:")
    assert len({r.worker for r in res}) == 2  # both workers took part


def test_results_arrive_as_they_complete(disp):
    """A slow point first in the batch must not hold back the fast ones behind it."""
    o = Behaving(pidfile=os.devnull, slow=2.0)
    X = np.vstack([[-6, 0], good_points(6)])
    t0 = time.perf_counter()
    order, times = [], []
    for r in disp.evaluate(o, X):
        order.append(r.index)
        times.append(time.perf_counter() - t0)
    assert order[-1] == 0 and set(order) == set(range(7))
    assert times[0] < 1.5  # the first fast result did not wait for the slow one


def test_failures_are_reported_and_the_rest_completes(disp):
    X = np.array([[-1, 0], [1, 1], [-2, 0], [2, 2], [-4, 0], [-5, 0], [3, 3]], dtype=float)
    res = {r.index: r for r in disp.evaluate(Behaving(), X)}
    assert len(res) == 7
    for i in (1, 3, 6):
        assert res[i].ok and res[i].y[0] == X[i].sum()
    expect = {0: "exception: RuntimeError: simulator blew up", 2: "non-finite output", 4: "bad output",
              5: "non-finite output"}
    for i, reason in expect.items():
        assert not res[i].ok and res[i].y is None
        assert res[i].reason.startswith(reason), res[i].reason
        assert res[i].attempts == 2  # retries=1: tried twice


def test_hung_evaluation_times_out_and_its_worker_is_replaced(disp):
    X = np.array([[-3, 0], [1, 0], [2, 0], [3, 0]], dtype=float)
    t0 = time.perf_counter()
    res = {r.index: r for r in disp.evaluate(Behaving(), X, timeout=1.0)}
    assert time.perf_counter() - t0 < 30
    assert res[0].reason.startswith("timeout") and res[0].attempts == 2 and not res[0].ok
    assert all(res[i].ok for i in (1, 2, 3))
    # the hung workers are restarted: the cluster is back to two healthy workers
    disp.wait_for_workers(timeout=30)
    assert len(disp.client.nthreads()) == 2
    assert all(r.ok for r in disp.evaluate(Behaving(), good_points(4)))


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_hang_holding_the_gil_is_caught_by_the_client_watchdog():
    """The in-worker watchdog cannot run while C code holds the GIL; the client-side one can.

    Its own cluster: the restarts it causes must not disturb the shared one. Marked slow
    because it is not yet reliable on a loaded machine: about one run in four, the nanny's
    restart of the GIL-hung worker does not complete and the next batch's broadcast scatter
    waits on that worker (known issue, see the oracles report).
    """
    with Dispatcher(workers=2, retries=0) as d:
        d.watchdog_grace = 1.0
        d.scatter_timeout = 10.0
        X = np.array([[-7, 0], [1, 0], [2, 0]], dtype=float)
        t0 = time.perf_counter()
        res = {r.index: r for r in d.evaluate(Behaving(), X, timeout=0.5)}
        assert time.perf_counter() - t0 < 40
        assert not res[0].ok and res[0].reason.startswith("timeout: no result") and res[0].attempts == 1
        assert res[0].worker.startswith("tcp://")
        assert res[1].ok and res[2].ok
        d.wait_for_workers(timeout=60)
        assert len(d.client.nthreads()) == 2
        assert all(r.ok for r in d.evaluate(Behaving(), good_points(4)))


def test_worker_killed_mid_evaluation_point_retried_elsewhere(disp, tmp_path):
    pidfile = tmp_path / "pids"
    pidfile.touch()
    worker_pids = disp.client.run(os.getpid)  # {address: pid}
    o = Behaving(pidfile=str(pidfile), slow=2.0)
    X = np.vstack([[-6, 0], good_points(6)])
    killed: dict[str, int] = {}

    def killer():
        deadline = time.time() + 30
        while time.time() < deadline:
            lines = pidfile.read_text().split()
            if lines:
                pid = int(lines[0])
                assert pid in worker_pids.values()
                killed["pid"] = pid
                killed["addr"] = next(a for a, p in worker_pids.items() if p == pid)
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    th = threading.Thread(target=killer)
    th.start()
    res = {r.index: r for r in disp.evaluate(o, X)}
    th.join()
    assert "pid" in killed, "the slow point never started"
    assert len(res) == 7 and all(r.ok for r in res.values())
    assert res[0].y[0] == -6 and res[0].worker != killed["addr"]
    runs = [int(p) for p in pidfile.read_text().split()]
    assert len(runs) == 2 and runs[1] != killed["pid"]  # evaluated again, in another process


def test_cluster_is_reused_across_batches(disp):
    addr = disp.client.scheduler.address
    t0 = time.perf_counter()
    for _ in range(3):
        assert all(r.ok for r in disp.evaluate(resolve("rosenbrock", dim=2), np.zeros((4, 2))))
    assert disp.client.scheduler.address == addr
    assert time.perf_counter() - t0 < 10


def test_stopping_early_cancels_the_rest(disp):
    o = Behaving(sleep=0.3)
    it = disp.evaluate(o, good_points(20), max_in_flight=2)
    first = next(it)
    assert first.ok
    it.close()  # the caller stops listening: in-flight work is cancelled, nothing queued is sent
    time.sleep(0.5)
    busy = [k for keys in disp.client.processing().values() for k in keys]
    assert not any(str(k).startswith("alflow-eval") for k in busy), busy


def test_max_in_flight_bounds_outstanding_work(disp, tmp_path):
    o = Behaving(sleep=0.2)
    seen = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(sum(len(v) for v in disp.client.processing().values()))
            time.sleep(0.05)

    th = threading.Thread(target=watch)
    th.start()
    res = list(disp.evaluate(o, good_points(10), max_in_flight=1))
    stop.set()
    th.join()
    assert len(res) == 10 and max(seen) <= 1


def test_input_validation(disp):
    with pytest.raises(ValueError, match="X has 3 columns"):
        disp.evaluate(Behaving(), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"indices must have shape \(2,\)"):
        disp.evaluate(Behaving(), np.zeros((2, 2)), indices=[1])
    with pytest.raises(ValueError, match="at most one of"):
        Dispatcher(workers=2, address="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="retries must be"):
        Dispatcher(retries=-1)


def test_in_process_mode_has_the_same_semantics():
    with Dispatcher(workers=0, retries=2, timeout=0.3) as d:
        X = np.array([[1, 1], [-1, 0], [-2, 0], [-3, 0]], dtype=float)
        res = {r.index: r for r in d.evaluate(Behaving(), X)}
    assert res[0].ok and res[0].worker == "local" and res[0].y[0] == 2
    assert res[1].reason.startswith("exception") and res[1].attempts == 3
    assert res[2].reason.startswith("non-finite") and res[3].reason.startswith("timeout")


def test_existing_cluster_object_is_used_and_left_running():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Dispatcher(cluster=cluster) as d:
            res = list(d.evaluate(resolve("branin"), np.array([[np.pi, 2.275]])))
        assert res[0].ok and res[0].y[0] == pytest.approx(0.397887, abs=1e-5)
        assert cluster.status.name == "running"
        with Dispatcher(address=cluster.scheduler_address) as d2:
            assert next(iter(d2.evaluate(resolve("branin"), np.array([[np.pi, 2.275]])))).ok


def test_oracle_from_a_file_runs_on_workers_that_cannot_import_it(disp, tmp_path):
    """A ``path/file.py:attr`` oracle lives in a module only this process has; the dispatcher
    must ship its code by value (Dask's plain pickle would refer to it by module name)."""
    src = tmp_path / "plugin_sim.py"
    src.write_text("def sim(x):\n    return 3.0 * float(x[0]) - float(x[1])\n")
    oracle = resolve(f"{src}:sim", bounds=[[0, 1], [0, 1]])
    X = np.array([[0.5, 0.25], [1.0, 0.0], [0.0, 1.0]])
    results = {r.index: r for r in disp.evaluate(oracle, X, [7, 8, 9])}
    assert all(r.ok for r in results.values()), [r.reason for r in results.values()]
    assert {i: float(r.y[0]) for i, r in results.items()} == pytest.approx({7: 1.25, 8: 3.0, 9: -1.0})
    assert len({r.worker for r in results.values()}) >= 1 and all(r.worker for r in results.values())
