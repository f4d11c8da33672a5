"""Is the MC-dropout uncertainty informative?  Rank correlation of predicted std and |error|.

Why: every variance-based strategy (mc_variance, nngp, nngp_ivr, nngp_sample, and LCMD's
kernel) assumes that where the MC-dropout samples disagree, the surrogate is wrong.  If the
Spearman correlation between the MC std and the actual test error is weak, picking by
variance is close to picking arbitrary points biased towards wherever dropout noise is large
(the box edges, heavy tails), and it cannot beat random sampling.

Fits the product-default DropoutMLP on a random subset of the pool of the size of the study's
mid budget, draws T = 100 shared-mask samples on the test set, and reports per output the
Spearman rho of (std, |error|) and the ratio of mean std to RMSE (calibration of the scale).

    python -m benchmarks.study.calibration [--problems heat2d,burgers1d,california] [--seeds 2]
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from scipy import stats

from benchmarks.study.problems import load_problem


def main(argv: list[str] | None = None) -> int:
    from alcore.model import DropoutMLP  # noqa: PLC0415
    from benchmarks.study.__main__ import DEFAULTS  # noqa: PLC0415

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", default="heat2d,burgers1d,california")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--dropouts", default="0.1,0.02")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    out: dict = {}
    for name in a.problems.split(","):
        p = load_problem(name, verbose=False)
        init, batch, iters, _ = DEFAULTS[name]
        n = init + batch * iters // 2
        out[name] = {"n_train": n}
        for dr in (float(v) for v in a.dropouts.split(",")):
            rho, scale = [], []
            for s in range(a.seeds):
                idx = np.random.default_rng([s, 1]).choice(p.pool_X.shape[0], n, replace=False)
                m = DropoutMLP(dropout=dr, seed=s, device="cpu")
                m.fit(p.pool_X[idx], p.pool_y[idx])
                err = np.abs(m.predict(p.test_X) - p.test_y)
                std = m.sample(p.test_X, 100, seed=s).std(axis=1)
                rho.append([float(stats.spearmanr(std[:, j], err[:, j])[0]) for j in range(err.shape[1])])
                scale.append([float(std[:, j].mean() / np.sqrt(np.mean(err[:, j] ** 2))) for j in range(err.shape[1])])
            out[name][str(dr)] = {"spearman_std_abs_err": np.mean(rho, axis=0).round(3).tolist(),
                                  "mean_std_over_rmse": np.mean(scale, axis=0).round(3).tolist()}
            print(name, dr, out[name][str(dr)], flush=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
