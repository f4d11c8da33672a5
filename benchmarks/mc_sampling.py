"""Benchmark: MC-dropout sampling vs one plain batched forward pass of the same FLOPs.

Issue 2 target: ``model.sample`` with T=100 on 20,000 points (2x100 MLP, d=8) within 2x of a
dropout-off forward pass on a batch of 20,000*T rows (float32).  Prints JSON.

    python benchmarks/mc_sampling.py [--quick] [--n-points N] [--T T] [--threads K]

``measure_mc_sampling`` is imported by ``benchmarks/selection.py``; keep its name and signature.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from alcore import mc
from alcore.model import DropoutMLP


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_mc_sampling(n_points: int = 20000, T: int = 100, hidden: tuple[int, ...] = (100, 100),
                        repeats: int = 3, d: int = 8, threads: int | None = None,
                        include_pointwise: bool = False) -> dict:
    """Time ``DropoutMLP.sample`` (shared masks) against a plain forward on n_points*T rows.

    The model is a freshly initialised-and-briefly-trained network (the weights do not change
    the cost).  Times are the best of ``repeats``.  Returns a JSON-serialisable dict.
    """
    if threads is None:
        threads = os.cpu_count() or 1
    torch.set_num_threads(int(threads))
    rng = np.random.default_rng(0)
    X_train = rng.uniform(-1, 1, (64, d))
    y_train = np.sin(X_train).sum(axis=1)
    model = DropoutMLP(hidden=hidden, epochs=2, early_stopping=False, seed=0, device="cpu")
    model.fit(X_train, y_train)
    X = rng.uniform(-1, 1, (n_points, d))

    t_sample = _best_time(lambda: model.sample(X, T, seed=1), repeats)
    t_sample_std32 = _best_time(lambda: model.sample(X, T, seed=1, standardised=True, dtype=np.float32), repeats)

    # Reference: one dropout-off forward on n_points*T rows, chunked with the same memory budget
    # (an unchunked 2e6 x 100 float32 pass would need ~0.8 GB per activation and be slower).
    layers = model._nets[0].layers()
    Xbig = torch.as_tensor(rng.uniform(-1, 1, (n_points * T, d)), dtype=torch.float32)
    chunk_rows = mc.auto_chunk_size(T, hidden) * T
    t_plain = _best_time(lambda: mc.plain_forward(layers, model.activation, Xbig, chunk_rows), repeats)
    del Xbig
    out = {
        "n_points": n_points, "T": T, "hidden": list(hidden), "d": d, "threads": int(threads),
        "repeats": repeats,
        "sample_s": t_sample,
        "sample_standardised_float32_s": t_sample_std32,
        "plain_forward_same_flops_s": t_plain,
        "ratio": t_sample / t_plain,
        "ratio_float32": t_sample_std32 / t_plain,
        "target_ratio": 2.0,
        "chunk_points": mc.auto_chunk_size(T, hidden),
    }
    if include_pointwise:
        out["sample_pointwise_s"] = _best_time(lambda: model.sample(X, T, seed=1, shared_masks=False),
                                               max(1, repeats // 2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--quick", action="store_true", help="2,000 points, 1 repeat")
    ap.add_argument("--n-points", type=int, default=20000)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--pointwise", action="store_true", help="also time shared_masks=False")
    a = ap.parse_args()
    n, reps = (2000, 1) if a.quick else (a.n_points, a.repeats)
    print(json.dumps(measure_mc_sampling(n_points=n, T=a.T, repeats=reps, threads=a.threads,
                                         include_pointwise=a.pointwise), indent=2))


if __name__ == "__main__":
    main()
