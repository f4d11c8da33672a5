"""Benchmark (issue 8, "Training noise"): how much does the fitted surrogate vary by training alone?

Two measurements on small analytic targets (defined inline; no oracle package needed):

1. **Seed-to-seed noise**: same data, different model seeds; the coefficient of variation
   (std/mean) of test RMSE, per training setting (early stopping with best-weights restore on/off,
   cosine schedule on/off, a few epochs/lr/batch/dropout variants, a 3-member ensemble).
2. **Iteration-to-iteration noise**: an active-learning-like sequence where the labelled set grows
   by random batches; the model is either retrained from scratch each iteration (new seed, as a
   campaign does) or warm-started from the previous iteration's weights.  Reported: the mean
   absolute change of log RMSE between neighbouring iterations and how often RMSE went *up*
   although data was added.

Prints JSON.  ``--quick`` runs in seconds (few seeds, small data).

    python benchmarks/training_noise.py [--quick] [--seeds S] [--threads K]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch

from alcore.model import DropoutMLP


def branin01(X: np.ndarray) -> np.ndarray:
    """Branin on [0, 1]^2 (rescaled to its usual box), divided by its std scale."""
    x1 = 15.0 * X[:, 0] - 5.0
    x2 = 15.0 * X[:, 1]
    a, b, c, r, s, t = 1.0, 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return (a * (x2 - b * x1 ** 2 + c * x1 - r) ** 2 + s * (1 - t) * np.cos(x1) + s) / 50.0


def smooth9(X: np.ndarray) -> np.ndarray:
    """A smooth 9-d target with interactions and varying length scales (heat2d-like size)."""
    c = X - 0.5
    return (np.sin(math.pi * X[:, 0] * X[:, 1]) + 2.0 * c[:, 2] ** 2 + np.exp(-3.0 * np.sum(c[:, 3:6] ** 2, axis=1))
            + 0.5 * np.sin(2 * math.pi * X[:, 6]) * X[:, 7] + 0.3 * X[:, 8] + 0.5 * c[:, 0] * c[:, 8])


TARGETS = {"branin": (branin01, 2), "smooth9": (smooth9, 9)}

# Every setting is spelled out (not "the model's defaults"), so results stay comparable when
# the defaults change.  PROTO = the prototype's training: fixed epochs, constant lr, last weights.
PROTO = dict(early_stopping=False, lr_schedule="none", epochs=300, lr=1e-3, min_steps=0)
ES_COS = dict(early_stopping=True, patience=30, lr_schedule="cosine", epochs=300, lr=1e-3, min_steps=0)
COS = dict(early_stopping=False, lr_schedule="cosine", epochs=300, lr=1e-3, min_steps=0)
SETTINGS: dict[str, dict] = {
    "prototype_const_lr": PROTO,
    "es_only_const_lr": PROTO | dict(early_stopping=True, patience=30),
    "es30_cosine": ES_COS,
    "es30_cosine_lr3e-3": ES_COS | dict(lr=3e-3),
    "es60_cosine_epochs600": ES_COS | dict(epochs=600, patience=60),
    "es_restore_only_cosine": ES_COS | dict(patience=10**6),
    "cosine": COS,
    "cosine_lr3e-3": COS | dict(lr=3e-3),
    "cosine_min_steps2000": COS | dict(min_steps=2000),
    "cosine_min_steps5000": COS | dict(min_steps=5000),
    "cosine_lr3e-3_min_steps2000": COS | dict(lr=3e-3, min_steps=2000),
    "cosine_batch32": COS | dict(batch_size=32),
    "cosine_dropout0.05": COS | dict(dropout=0.05),
    "cosine_ensemble3": COS | dict(n_members=3),
    "defaults_ensemble3": dict(n_members=3),
    "defaults": {},
}
#: the default run (under ~5 minutes on a quiet 2-core machine); --all runs every setting
CORE_SETTINGS = ("prototype_const_lr", "es30_cosine", "cosine", "defaults")
CORE_ITER_SETTINGS = ("fresh_prototype", "fresh_es30_cosine", "fresh_defaults", "warm_defaults")
ITER_SETTINGS: dict[str, tuple[dict, bool]] = {
    "fresh_prototype": (PROTO, False),
    "fresh_es30_cosine": (ES_COS, False),
    "fresh_cosine": (COS, False),
    "warm_es30_cosine": (ES_COS, True),
    "warm_cosine": (COS, True),
    "warm_cosine_lr3e-4": (COS | dict(lr=3e-4), True),
    "fresh_defaults": ({}, False),
    "warm_defaults": ({}, True),
}


def _rmse(model: DropoutMLP, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((model.predict(X)[:, 0] - y) ** 2)))


def seed_noise(fn, d: int, n_train: int, n_test: int, seeds: int, settings: dict[str, dict],
               base: dict) -> dict:
    rng = np.random.default_rng(123)
    X, Xt = rng.uniform(size=(n_train, d)), rng.uniform(size=(n_test, d))
    y, yt = fn(X), fn(Xt)
    out = {}
    for name, kw in settings.items():
        rm, secs, eps = [], [], []
        for s in range(seeds):
            m = DropoutMLP(**(kw | base), seed=s, device="cpu")
            rep = m.fit(X, y)
            rm.append(_rmse(m, Xt, yt))
            secs.append(rep.train_time_s)
            eps.append(rep.epochs_run)
        rm = np.array(rm)
        out[name] = {"rmse_mean": float(rm.mean()), "rmse_cv": float(rm.std(ddof=1) / rm.mean()),
                     "rmse_min": float(rm.min()), "rmse_max": float(rm.max()),
                     "fit_s_mean": float(np.mean(secs)), "epochs_mean": float(np.mean(eps))}
    return out


def iteration_noise(fn, d: int, n0: int, step: int, iters: int, n_test: int, seeds: int,
                    settings: dict[str, dict], base: dict) -> dict:
    """AL-like growth with random batches; fresh (new seed each iteration) vs warm start."""
    out = {}
    for name, (kw, warm) in settings.items():
        jumps, ups, finals, secs, resid = [], 0, [], [], []
        for s in range(seeds):
            rng = np.random.default_rng(1000 + s)
            X = rng.uniform(size=(n0 + step * iters, d))
            y = fn(X)
            Xt = rng.uniform(size=(n_test, d))
            yt = fn(Xt)
            model = None
            r = []
            for it in range(iters + 1):
                n = n0 + step * it
                if model is None or not warm:
                    model = DropoutMLP(**(kw | base), seed=1000 * s + it, device="cpu")
                rep = model.fit(X[:n], y[:n], warm_start=warm)
                secs.append(rep.train_time_s)
                r.append(_rmse(model, Xt, yt))
            lr_ = np.log(r)
            # noise around the learning curve: residual std of log RMSE about a power law in n
            ln = np.log(n0 + step * np.arange(iters + 1))
            coef = np.polyfit(ln, lr_, 1)
            resid.append(float(np.sqrt(np.sum((lr_ - np.polyval(coef, ln)) ** 2) / max(1, len(lr_) - 2))))
            jumps.extend(np.abs(np.diff(lr_)).tolist())
            ups += int(np.sum(np.diff(lr_) > 0))
            finals.append(r[-1])
        out[name] = {"trend_residual_log_rmse": float(np.mean(resid)),
                     "mean_abs_dlog_rmse": float(np.mean(jumps)), "n_rmse_increases": ups,
                     "n_steps": len(jumps), "final_rmse_mean": float(np.mean(finals)),
                     "fit_s_mean": float(np.mean(secs))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="training-noise study for DropoutMLP defaults")
    ap.add_argument("--quick", action="store_true", help="seconds: 3 seeds, 150 points, 3 settings")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--n-train", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a study runs 1 per model)")
    ap.add_argument("--targets", default="smooth9,branin")
    ap.add_argument("--settings", default=None, help="comma list of setting names (default: all)")
    ap.add_argument("--iter-settings", default=None, help="comma list of iteration setting names")
    ap.add_argument("--no-iterations", action="store_true", help="skip the iteration-to-iteration part")
    ap.add_argument("--all", action="store_true", help="every setting (tens of minutes), not the core ones")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    if a.settings is not None:
        settings = {k: SETTINGS[k] for k in a.settings.split(",") if k}
    else:
        settings = SETTINGS if a.all else {k: SETTINGS[k] for k in CORE_SETTINGS}
    if a.iter_settings is not None:
        iter_settings = {k: ITER_SETTINGS[k] for k in a.iter_settings.split(",") if k}
    else:
        iter_settings = ITER_SETTINGS if a.all else {k: ITER_SETTINGS[k] for k in CORE_ITER_SETTINGS}
    if a.no_iterations:
        iter_settings = {}
    base: dict = {}
    seeds, n_train, n_test = a.seeds, a.n_train, 2000
    n0, step, iters, it_seeds = 300, 50, 4, max(2, a.seeds // 2)
    if a.quick:
        settings = {k: SETTINGS[k] for k in ("prototype_const_lr", "es30_cosine", "cosine")}
        iter_settings = {k: ITER_SETTINGS[k] for k in ("fresh_prototype", "fresh_defaults", "warm_defaults")}
        seeds, n_train, n_test, n0, step, iters, it_seeds = 3, 150, 500, 100, 25, 2, 2
        base = dict(epochs=60, patience=15, min_steps=0)
    result = {"settings": {k: v for k, v in settings.items()}, "seeds": seeds, "n_train": n_train,
              "threads": a.threads, "defaults": {k: getattr(DropoutMLP(), k) for k in (
                  "hidden", "activation", "dropout", "weight_decay", "lr", "epochs", "batch_size",
                  "early_stopping", "val_fraction", "patience", "lr_schedule", "min_steps")},
              "iteration_settings": {k: {"kwargs": v[0], "warm_start": v[1]} for k, v in iter_settings.items()},
              "targets": {}}
    for tname in a.targets.split(","):
        fn, d = TARGETS[tname]
        result["targets"][tname] = {
            "seed_to_seed": seed_noise(fn, d, n_train, n_test, seeds, settings, base),
            "iteration_to_iteration": iteration_noise(
                fn, d, n0, step, iters, n_test, it_seeds,
                iter_settings, base),
        }
    result["wall_s"] = time.perf_counter() - t0
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
