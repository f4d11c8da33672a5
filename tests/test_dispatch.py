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

from oracles import Dispatcher, EvalResult, FunctionOracle, Oracle, resolve

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
        assert r.attempts == 1 and r.reason is None and r.wall_time >= 0 and r.kind == "ok"
        assert re.fullmatch(r"worker-[01]", r.worker), r.worker  # a name, not an address
    assert len({r.worker for r in res}) == 2  # both workers took part


def test_results_carry_submit_start_and_end_times(disp):
    t0 = time.time()
    res = list(disp.evaluate(Behaving(sleep=0.2), good_points(4)))
    t1 = time.time()
    for r in res:
        assert t0 <= r.submitted <= r.started <= r.finished <= t1
        assert r.finished - r.started == pytest.approx(r.wall_time, abs=0.5)  # two clocks, one moment
        assert r.wall_time >= 0.2


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
    expect = {0: "exception: RuntimeError: simulator blew up", 2: "non-finite output", 5: "non-finite output"}
    for i, reason in expect.items():
        assert not res[i].ok and res[i].y is None and res[i].kind == "error"
        assert res[i].reason.startswith(reason), res[i].reason
        assert res[i].attempts == 2  # retries=1: tried twice
    # a wrong number of outputs is the same for every x: a set-up error, never retried
    assert res[4].kind == "setup" and res[4].attempts == 1 and not res[4].ok
    assert res[4].reason.startswith("bad output: behaving: returned 2 output(s) but the oracle declares 1")


def count_calls(log: str):
    """A plain function with three outputs whose outputs were not declared; logs each call."""
    def three_outputs(x):
        with open(log, "a") as fh:
            fh.write("call\n")
        return [x[0], x[1], x[0] * x[1]]
    return three_outputs


def test_undeclared_outputs_are_a_setup_error_that_names_the_fix(disp, tmp_path):
    log = tmp_path / "calls"
    log.touch()
    o = FunctionOracle(count_calls(str(log)), bounds=[[0, 1], [0, 1]])  # declares k = 1
    res = list(disp.evaluate(o, np.full((4, 2), 0.5)))
    assert [r.kind for r in res] == ["setup"] * 4
    assert all(r.attempts == 1 for r in res)                   # never retried (retries=1)
    assert len(log.read_text().split()) == 4                   # 4 calls, not 8
    assert "returned 3 output(s) but the oracle declares 1" in res[0].reason
    assert "set oracle.params output_names = ['y0', 'y1', 'y2']" in res[0].reason


def test_a_caller_can_stop_after_the_first_setup_failure(disp, tmp_path):
    """The campaign stops the batch on the first "setup" result: what it pays is bounded by
    the evaluations already running (capacity), not by the batch size."""
    log = tmp_path / "calls"
    log.touch()
    o = FunctionOracle(count_calls(str(log)), bounds=[[0, 1], [0, 1]])
    with disp.stream(o) as s:
        cap = s.capacity
        for i in range(20):
            s.submit(i, [0.5, 0.5])
        first = next(iter(s.results()))
        assert first.kind == "setup"
        dropped = s.cancel_pending()
        rest = list(s.results())
    assert cap == disp.n_threads() == 2
    assert len(dropped) >= 20 - cap and len(rest) <= cap - 1
    assert len(rest) + 1 + len(dropped) == 20                   # every point accounted for once
    assert len(log.read_text().split()) <= cap                  # no refill after the set-up failure


def test_stream_keeps_every_slot_busy_with_submits_inside_the_loop(disp):
    o = Behaving(sleep=0.1)
    X = good_points(10)
    seen_in_flight = []
    with disp.stream(o) as s:
        cap = s.capacity
        nxt = 0
        while nxt < cap:
            s.submit(nxt, X[nxt])
            nxt += 1
        got = []
        for r in s.results():
            got.append(r)
            seen_in_flight.append(s.in_flight)
            if nxt < len(X):
                s.submit(nxt, X[nxt])
                nxt += 1
        assert s.in_flight == 0
    assert sorted(r.index for r in got) == list(range(10)) and all(r.ok for r in got)
    assert cap == 2 and max(seen_in_flight) <= cap


def test_stream_results_timeout_returns_and_a_later_call_gets_the_result(disp):
    with disp.stream(Behaving(sleep=1.5)) as s:
        s.submit(7, [1.0, 1.0])
        t = time.perf_counter()
        assert list(s.results(timeout=0.3)) == []
        assert time.perf_counter() - t < 1.4  # returned before the result could exist
        assert s.in_flight == 1
        (r,) = list(s.results())
    assert r.index == 7 and r.ok and s.in_flight == 0


def test_cancel_pending_drops_what_has_not_started(disp, tmp_path):
    pidfile = tmp_path / "runs"
    pidfile.touch()
    o = Behaving(pidfile=str(pidfile), slow=0.3)
    with disp.stream(o, max_in_flight=1) as s:
        for i in range(5):
            s.submit(i, [-6.0, 0.0])
        first = next(iter(s.results()))
        assert s.in_flight == 4
        dropped = s.cancel_pending()
        rest = list(s.results())
    assert first.index == 0 and [r.index for r in rest] == [1] and dropped == [2, 3, 4]
    assert len(pidfile.read_text().split()) == 2                 # 2, 3 and 4 never ran


def test_hung_evaluation_times_out_and_its_worker_is_replaced(disp):
    X = np.array([[-3, 0], [1, 0], [2, 0], [3, 0]], dtype=float)
    t0 = time.perf_counter()
    res = {r.index: r for r in disp.evaluate(Behaving(), X, timeout=1.0)}
    assert time.perf_counter() - t0 < 30
    assert res[0].reason.startswith("timeout") and res[0].attempts == 2 and not res[0].ok
    assert res[0].kind == "timeout"
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
        d.ship_timeout = 10.0
        X = np.array([[-7, 0], [1, 0], [2, 0]], dtype=float)
        t0 = time.perf_counter()
        res = {r.index: r for r in d.evaluate(Behaving(), X, timeout=0.5)}
        assert time.perf_counter() - t0 < 40
        assert not res[0].ok and res[0].reason.startswith("timeout: no result") and res[0].attempts == 1
        assert res[0].kind == "timeout" and res[0].worker.startswith("worker-")
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
    assert res[0].y[0] == -6 and res[0].attempts == 2  # the death was its first attempt
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
    with disp.stream(Behaving()) as s, pytest.raises(ValueError, match=r"x must have shape \(2,\)"):
        s.submit(0, [1.0, 2.0, 3.0])
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
        X = np.array([[1, 1], [-1, 0], [-2, 0], [-3, 0], [-4, 0]], dtype=float)
        res = {r.index: r for r in d.evaluate(Behaving(), X)}
        with d.stream(Behaving()) as s:
            assert s.capacity == 1
            s.submit(5, [1.0, 2.0])
            s.submit(6, [-1.0, 0.0])
            assert s.in_flight == 2
            streamed = {r.index: r for r in s.results()}
    assert res[0].ok and res[0].worker == "local" and res[0].y[0] == 2 and res[0].kind == "ok"
    assert res[1].reason.startswith("exception") and res[1].attempts == 3 and res[1].kind == "error"
    assert res[2].reason.startswith("non-finite") and res[3].reason.startswith("timeout")
    assert res[3].kind == "timeout" and res[4].kind == "setup" and res[4].attempts == 1
    assert streamed[5].y[0] == 3.0 and streamed[6].kind == "error" and streamed[6].attempts == 3


def _needs_missing_module(x):
    import alflow_no_such_module  # noqa: F401

    return 0.0


def _raises_type_error_inside(x):
    return len(5)  # a TypeError from the function's own body: a property of x, not the set-up


@pytest.mark.parametrize("make, kind, text", [
    (lambda: FunctionOracle(_needs_missing_module, bounds=[[0, 1]]), "setup", "ModuleNotFoundError"),
    (lambda: FunctionOracle(_raises_type_error_inside, bounds=[[0, 1]]), "error", "TypeError"),
])
def test_classification_of_raised_errors(make, kind, text):
    with Dispatcher(workers=0, retries=2) as d:
        (r,) = list(d.evaluate(make(), [[0.5]]))
    assert r.kind == kind and text in r.reason
    assert r.attempts == (1 if kind == "setup" else 3)


def test_a_call_that_cannot_bind_is_a_setup_error():
    o = FunctionOracle(lambda x, scale=1.0: scale * x[0], bounds=[[0, 1]], scale=2.0)
    o.fn_kwargs = {"scal": 2.0}  # what a misspelt parameter would do (resolve refuses it up front)
    with Dispatcher(workers=0, retries=2) as d:
        (r,) = list(d.evaluate(o, [[0.5]]))
    assert r.kind == "setup" and r.attempts == 1
    assert "cannot be called as f(x, **params)" in r.reason and "scal" in r.reason


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


def test_dashboard_link_is_a_usable_url():
    """Issue 13's `[dask] dashboard = true`: the link printed must open the Dask dashboard."""
    pytest.importorskip("bokeh", reason="Dask serves its dashboard only with bokeh (alflow[dashboard])")
    import urllib.request

    with Dispatcher(workers=1, dashboard=True) as d:
        link = d.dashboard_link
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/status", link or ""), link
        with urllib.request.urlopen(link, timeout=60) as page:
            assert page.status == 200 and b"Dask" in page.read()
    with Dispatcher(workers=1) as d:
        assert d.dashboard_link is None  # not asked for: none started, none claimed


class Unpicklable(Behaving):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()  # an open handle kept on the instance


def test_an_oracle_that_cannot_travel_is_refused_before_any_evaluation(disp):
    from oracles import OracleSetupError

    with pytest.raises(OracleSetupError, match="cannot be sent to the Dask workers: it must be picklable"):
        list(disp.evaluate(Unpicklable(), good_points(2)))
