"""Fan-out benchmark of oracles.dispatch: parallel efficiency, dispatch overhead, heat2d rate.

Prints one JSON object:

* ``sleep``: a 0.5 s sleeping oracle, 40 points on 2 local worker processes, timed after the
  cluster is up and warm. efficiency = ideal (40 * 0.5 / 2) / wall; target >= 0.9.
* ``overhead``: many trivial evaluations; the dispatch path's cost per evaluation in worker
  time, (wall * workers - sum of oracle time) / n, and the latency per result, wall / n;
  target < 10 ms.
* ``heat2d``: heat2d at n = 128, evaluations per second in-process (serial) and through the
  dispatcher on the same workers.

Usage: python benchmarks/fanout.py [--quick] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from oracles import Dispatcher, Oracle, resolve


class Sleeper(Oracle):
    """Sleeps ``seconds`` (a stand-in for a simulator that waits on something)."""

    name = "sleeper"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._setup([[0.0, 1.0]], ["y"], params={"seconds": seconds})

    def _evaluate(self, x: np.ndarray) -> np.ndarray:
        if self.seconds:
            time.sleep(self.seconds)
        return x


def timed(d: Dispatcher, oracle: Oracle, X: np.ndarray) -> tuple[float, list]:
    t = time.perf_counter()
    res = list(d.evaluate(oracle, X))
    wall = time.perf_counter() - t
    assert all(r.ok for r in res), [r.reason for r in res if not r.ok][:3]
    return wall, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer trivial/heat2d evaluations")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--points", type=int, default=40)
    ap.add_argument("--sleep", type=float, default=0.5)
    args = ap.parse_args()
    W = args.workers
    n_trivial = 200 if args.quick else 1000
    n_heat = 10 if args.quick else 40
    out: dict = {"host": platform.node(), "cpus": os.cpu_count(), "workers": W,
                 "load_avg_1min_before": os.getloadavg()[0]}

    t0 = time.perf_counter()
    with Dispatcher(workers=W, retries=0) as d:
        out["cluster_start_s"] = round(time.perf_counter() - t0, 3)
        timed(d, Sleeper(0.0), np.zeros((4 * W, 1)))  # warm-up: imports, connections

        # 1. parallel efficiency on sleeping oracles
        X = np.random.default_rng(0).uniform(size=(args.points, 1))
        wall, res = timed(d, Sleeper(args.sleep), X)
        ideal = args.points * args.sleep / W
        out["sleep"] = {"points": args.points, "sleep_s": args.sleep, "wall_s": round(wall, 4),
                        "ideal_s": ideal, "efficiency": round(ideal / wall, 4),
                        "overhead_ms_per_eval": round(1e3 * (wall * W - args.points * args.sleep) / args.points, 3),
                        "workers_used": len({r.worker for r in res})}

        # 2. dispatch overhead on trivial evaluations
        wall, res = timed(d, Sleeper(0.0), np.zeros((n_trivial, 1)))
        busy = sum(r.wall_time for r in res)
        out["overhead"] = {"evaluations": n_trivial, "wall_s": round(wall, 4),
                           "per_eval_worker_ms": round(1e3 * (wall * W - busy) / n_trivial, 3),
                           "latency_ms_per_result": round(1e3 * wall / n_trivial, 3),
                           "throughput_per_s": round(n_trivial / wall, 1)}

        # 3. heat2d n=128 through the dispatcher vs in-process
        heat = resolve("heat2d", n=128)
        Xh = np.random.default_rng(1).uniform(-1, 1, (n_heat, heat.input_dim))
        heat(Xh[0])
        t = time.perf_counter()
        for x in Xh:
            heat(x)
        serial = time.perf_counter() - t
        timed(d, heat, Xh[:W])  # warm the workers' imports of scipy
        wall, res = timed(d, heat, Xh)
        out["heat2d_n128"] = {"evaluations": n_heat, "in_process_per_s": round(n_heat / serial, 2),
                              "in_process_ms_per_eval": round(1e3 * serial / n_heat, 2),
                              "dispatcher_per_s": round(n_heat / wall, 2),
                              "worker_ms_per_eval": round(1e3 * np.mean([r.wall_time for r in res]), 2),
                              "speedup": round(serial / wall, 3)}
    out["load_avg_1min_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
