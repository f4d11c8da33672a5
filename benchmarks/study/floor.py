"""The model's error floor on each problem: train on the WHOLE labelled pool.

Why: active learning can only remove the part of the test error that is due to *where* the
labels are.  If the surrogate trained on every pool point (3-30x the study's budget) is barely
better than at the end of the study, the learning curve is flat, the error is set by the
model/training (capacity, dropout, optimisation), and no acquisition rule can win much — while
"labels to reach random's final RMSE" becomes ill-conditioned (a 2% RMSE gain can be worth
half the labels on a flat curve).  Prints JSON: score at n = the study's final budget (random
subset) and at n = the whole pool, for a few dropout rates.

    python -m benchmarks.study.floor [--problems heat2d,burgers1d,california] [--seeds 2]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from benchmarks.study.problems import load_problem


def score(problem, idx: np.ndarray, seed: int, model_kwargs: dict, single: bool) -> float:
    from alcore.model import DropoutMLP  # noqa: PLC0415

    m = DropoutMLP(**{**model_kwargs, "seed": seed, "device": "cpu"})
    m.fit(problem.pool_X[idx], problem.pool_y[idx])
    err = m.predict(problem.test_X) - problem.test_y
    rmse = np.sqrt(np.mean(err ** 2, axis=0))
    return float(rmse[0]) if single else float(np.mean(rmse / problem.test_y.std(axis=0)))


def main(argv: list[str] | None = None) -> int:
    from benchmarks.study.__main__ import DEFAULTS, METRIC  # noqa: PLC0415

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", default="heat2d,burgers1d,california")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--dropouts", default="0.1,0.05,0.02")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = {}
    for name in a.problems.split(","):
        p = load_problem(name, verbose=False)
        init, batch, iters, _ = DEFAULTS[name]
        budget = init + batch * iters
        single = METRIC[name] == "rmse"
        res = {"budget": budget, "pool": int(p.pool_X.shape[0]), "metric": METRIC[name], "by_dropout": {}}
        for dr in (float(v) for v in a.dropouts.split(",")):
            t0 = time.perf_counter()
            row = {"at_budget": [], "whole_pool": []}
            for s in range(a.seeds):
                sub = np.random.default_rng([s, 1]).choice(p.pool_X.shape[0], budget, replace=False)
                row["at_budget"].append(score(p, sub, s, {"dropout": dr}, single))
                row["whole_pool"].append(score(p, np.arange(p.pool_X.shape[0]), s, {"dropout": dr}, single))
            row["seconds"] = time.perf_counter() - t0
            res["by_dropout"][str(dr)] = row
            print(name, dr, {k: np.round(v, 4).tolist() if isinstance(v, list) else round(v, 1)
                             for k, v in row.items()}, flush=True)
        out[name] = res
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
