"""Fan-out benchmark of oracles.dispatch: parallel efficiency, dispatch overhead, heat2d rate.

Prints one JSON object:

* ``sleep``: a 0.5 s sleeping oracle, 40 points on 2 local worker processes, timed after the
  cluster is up and warm. efficiency = ideal (40 * 0.5 / 2) / wall; target >= 0.9.
* ``overhead``: many trivial evaluations through ``evaluate``; the dispatch path's cost per
  evaluation in worker time, (wall * workers - sum of oracle time) / n, and the latency per
  result, wall / n; target < 10 ms.
* ``stream_one_in_one_out``: the same trivial evaluations through ``Dispatcher.stream`` the way
  an asynchronous campaign drives it: ``capacity`` points in flight, and the next one submitted
  the moment a result arrives (never more than the workers can run).
* ``heat2d``: heat2d at n = 128, evaluations per second in-process (serial) and through the
  dispatcher on the same workers.

With ``--baseline REF`` (a git ref, e.g. ``main``) the same measurements also run on the
``oracles`` package of that commit, interleaved with the current one (A B A B ...) on the same
machine, and the JSON holds both side by side plus their ratios: the machine is shared and noisy,
so only ratios measured in one run mean much.

Usage: python benchmarks/fanout.py [--quick] [--workers 2] [--baseline main] [--rounds 2]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from oracles import Dispatcher, Oracle, resolve

ROOT = Path(__file__).resolve().parent.parent


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


def timed(d: Any, oracle: Oracle, X: np.ndarray) -> tuple[float, list]:
    t = time.perf_counter()
    res = list(d.evaluate(oracle, X))
    wall = time.perf_counter() - t
    assert all(r.ok for r in res), [r.reason for r in res if not r.ok][:3]
    return wall, res


def overhead(wall: float, res: list, workers: int) -> dict[str, float]:
    n = len(res)
    busy = sum(r.wall_time for r in res)
    return {"evaluations": n, "wall_s": round(wall, 4),
            "per_eval_worker_ms": round(1e3 * (wall * workers - busy) / n, 3),
            "latency_ms_per_result": round(1e3 * wall / n, 3),
            "throughput_per_s": round(n / wall, 1)}


def stream_one_in_one_out(d: Dispatcher, oracle: Oracle, n: int) -> tuple[float, list]:
    """Keep ``capacity`` points in flight; submit the next one the moment a result arrives."""
    x = np.zeros(1)
    res = []
    t = time.perf_counter()
    with d.stream(oracle) as s:
        sent = 0
        while sent < min(s.capacity, n):
            s.submit(sent, x)
            sent += 1
        for r in s.results():
            res.append(r)
            if sent < n:
                s.submit(sent, x)
                sent += 1
    wall = time.perf_counter() - t
    assert len(res) == n and all(r.ok for r in res)
    return wall, res


def measure(dispatcher_cls: Any, W: int, args: argparse.Namespace, n_trivial: int, stream: bool) -> dict[str, Any]:
    """Sleep efficiency and dispatch overhead of one dispatcher implementation."""
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    with dispatcher_cls(workers=W, retries=0) as d:
        out["cluster_start_s"] = round(time.perf_counter() - t0, 3)
        timed(d, Sleeper(0.0), np.zeros((4 * W, 1)))  # warm-up: imports, connections
        X = np.random.default_rng(0).uniform(size=(args.points, 1))
        wall, res = timed(d, Sleeper(args.sleep), X)
        ideal = args.points * args.sleep / W
        out["sleep"] = {"points": args.points, "sleep_s": args.sleep, "wall_s": round(wall, 4),
                        "ideal_s": ideal, "efficiency": round(ideal / wall, 4),
                        "overhead_ms_per_eval": round(1e3 * (wall * W - args.points * args.sleep) / args.points, 3),
                        "workers_used": len({r.worker for r in res})}
        wall, res = timed(d, Sleeper(0.0), np.zeros((n_trivial, 1)))
        out["overhead"] = overhead(wall, res, W)
        if stream:
            wall, res = stream_one_in_one_out(d, Sleeper(0.0), n_trivial)
            out["stream_one_in_one_out"] = overhead(wall, res, W)
    return out


def load_baseline(ref: str) -> Any:
    """The Dispatcher class of ``oracles`` at git ``ref``, importable by the worker processes
    too (its package directory goes on sys.path, which spawned workers inherit)."""
    tmp = Path(tempfile.mkdtemp(prefix="alflow-fanout-baseline-"))
    pkg = tmp / "alflow_baseline_oracles"
    pkg.mkdir()
    files = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", f"{ref}:oracles"],
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if name.endswith(".py"):
            text = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:oracles/{name}"],
                                  capture_output=True, text=True, check=True).stdout
            (pkg / name).write_text(text)
    sys.path.insert(0, str(tmp))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(tmp), os.environ.get("PYTHONPATH", "")])
    return importlib.import_module("alflow_baseline_oracles.dispatch").Dispatcher


def ratios(base: dict[str, Any], new: dict[str, Any]) -> dict[str, float]:
    """new / baseline for the headline figures (< 1: the new code costs less)."""
    out = {}
    for sect, key in (("overhead", "per_eval_worker_ms"), ("overhead", "latency_ms_per_result"),
                      ("sleep", "wall_s")):
        b, n = base[sect][key], new[sect][key]
        out[f"{sect}.{key}"] = round(n / b, 3) if b else float("nan")
    if "stream_one_in_one_out" in new:
        out["stream_one_in_one_out.latency_ms_per_result vs baseline overhead"] = round(
            new["stream_one_in_one_out"]["latency_ms_per_result"] / base["overhead"]["latency_ms_per_result"], 3)
    return out


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-figure medians over rounds (the rounds themselves are kept too)."""
    out: dict[str, Any] = {}
    for sect in runs[0]:
        if isinstance(runs[0][sect], dict):
            out[sect] = {k: float(np.median([r[sect][k] for r in runs])) for k in runs[0][sect]}
        else:
            out[sect] = float(np.median([r[sect] for r in runs]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer trivial/heat2d evaluations")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--points", type=int, default=40)
    ap.add_argument("--sleep", type=float, default=0.5)
    ap.add_argument("--baseline", help="git ref whose oracles/ to measure side by side (e.g. main)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds with --baseline")
    args = ap.parse_args()
    W = args.workers
    n_trivial = 200 if args.quick else 1000
    n_heat = 10 if args.quick else 40
    out: dict = {"host": platform.node(), "cpus": os.cpu_count(), "workers": W,
                 "load_avg_1min_before": os.getloadavg()[0]}

    if args.baseline:
        base_cls = load_baseline(args.baseline)
        runs: dict[str, list] = {"baseline": [], "current": []}
        for _ in range(args.rounds):
            runs["baseline"].append(measure(base_cls, W, args, n_trivial, stream=False))
            runs["current"].append(measure(Dispatcher, W, args, n_trivial, stream=True))
        out["baseline_ref"] = args.baseline
        out["baseline"], out["current"] = median_of(runs["baseline"]), median_of(runs["current"])
        out["current_over_baseline"] = ratios(out["baseline"], out["current"])
        out["rounds"] = runs
    else:
        out.update(measure(Dispatcher, W, args, n_trivial, stream=True))

    # heat2d n=128 through the dispatcher vs in-process
    with Dispatcher(workers=W, retries=0) as d:
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
