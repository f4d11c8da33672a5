"""Benchmark (issue 15): the cost of the campaign's train step, and the choices behind it.

Prints JSON with three parts, all measured side by side in one run (the machine is shared):

* ``train_step``: `fit_surrogate` with the product defaults on a smooth 9-input, 2-output
  function at 1,000, 5,000 and 20,000 labels — the first call (model selection by
  cross-validation + calibration + the final fit: what the train step costs on the initial
  design and after each doubling) and a second, warm-started call on 2% more labels (what
  every other iteration costs).  Target: the first call under 60 s at 5,000 labels on 2 cores.
* ``library_vs_manual``: seconds per optimiser step of (a) the product's trainer (torch
  autograd + fused Adam on the stacked networks), (b) the same network trained by a loop over
  folds instead of one stack, and (c) a hand-written forward/backward pass with AdamW on a flat
  parameter vector (the pre-issue-15 design), at the campaign's sizes.  The issue's rule: keep
  a hand-written version only if the library is > 1.5x slower; ``ratio_library_over_manual``.
* ``threads``: the same step with 1 and with 2 torch threads (the default is 1, see
  :mod:`alcore.model.threads`).
* ``polish_sharing``: model selection's hold-out score of the "polished" candidate (3 x 128 +
  1,000 L-BFGS iterations) trained from scratch beside continued from the "deeper" candidate's
  fold networks (what `select_model` does): seconds of each, the saving, and whether the two
  predictions are identical (they must be).

    python benchmarks/training.py [--quick] [--sizes 1000,5000,20000] [--parts train_step,polish_sharing,...]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from alcore.model.fit import SurrogateSettings, fit_surrogate  # noqa: E402
from alcore.model.network import StackedMLP, TrainSettings, train_stacked  # noqa: E402


def smooth9(X: np.ndarray) -> np.ndarray:
    """Two smooth outputs of 9 inputs in [0, 1] (heat2d-like size)."""
    c = X - 0.5
    a = np.sin(np.pi * X[:, 0] * X[:, 1]) + 2.0 * c[:, 2] ** 2 + np.exp(-3.0 * np.sum(c[:, 3:6] ** 2, axis=1))
    b = 0.5 * np.sin(2 * np.pi * X[:, 6]) * X[:, 7] + 0.3 * X[:, 8] + np.tanh(2 * c[:, 0] + c[:, 4])
    return np.column_stack([a, b])


def train_step(sizes: list[int], seed: int = 0) -> dict:
    out = {}
    rng = np.random.default_rng(seed)
    settings = SurrogateSettings()
    for n in sizes:
        X = rng.uniform(size=(int(n * 1.02) + 1, 9))
        y = smooth9(X)
        t0 = time.perf_counter()
        first = fit_surrogate(X[:n], y[:n], settings, seed=seed)
        t1 = time.perf_counter()
        second = fit_surrogate(X, y, settings, previous_state=first.model.get_state(),
                               previous_choice=first.choice, seed=seed + 1)
        t2 = time.perf_counter()
        Xt = rng.uniform(size=(2000, 9))
        err = second.model.predict(Xt) - smooth9(Xt)
        out[str(n)] = {"first_call_s": t1 - t0, "selection_s": first.seconds["select"],
                       "final_fit_s": first.seconds["fit"], "warm_call_s": t2 - t1,
                       "chosen": first.choice["name"],
                       "cv": {c["name"]: {"score": c["score"], "seconds": c["seconds"], "skipped": c["skipped"]}
                              for c in first.cv["candidates"]},
                       "trained_folds": first.cv["trained_folds"],
                       "steps_first": first.report.steps, "steps_warm": second.report.steps,
                       "test_nrmse": float(np.mean(np.sqrt(np.mean(err ** 2, axis=0)) / smooth9(Xt).std(axis=0)))}
        print(f"[training] n={n}: first {t1 - t0:.1f} s (selection {first.seconds['select']:.1f} s), "
              f"warm {t2 - t1:.1f} s", file=sys.stderr, flush=True)
    return out


# ---------------------------------------------------------------- the hand-written reference
class _ManualMLP:
    """A flat-parameter MLP with a hand-written backward pass and AdamW (the pre-issue-15 trainer)."""

    def __init__(self, sizes: list[int], seed: int):
        self.sizes = sizes
        n = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        g = torch.Generator().manual_seed(seed)
        self.theta = (torch.rand(n, generator=g) * 2 - 1) * 0.1
        self.grad = torch.zeros_like(self.theta)
        self.m = torch.zeros_like(self.theta)
        self.v = torch.zeros_like(self.theta)
        self.W, self.b = self._views(self.theta)
        self.gW, self.gb = self._views(self.grad)
        self.t = 0

    def _views(self, flat):
        Ws, bs, o = [], [], 0
        for a, b in zip(self.sizes[:-1], self.sizes[1:]):
            Ws.append(flat[o:o + a * b].view(b, a))
            o += a * b
            bs.append(flat[o:o + b])
            o += b
        return Ws, bs

    def step(self, x, y, mask, lr=1e-2, wd=1e-4):
        L = len(self.W)
        hs, zs = [x], []
        h = x
        for li in range(L - 1):
            z = torch.addmm(self.b[li], h, self.W[li].t())
            a = torch.nn.functional.silu(z)
            if li == L - 2 and mask is not None:
                a = a * mask
            zs.append(z)
            hs.append(a)
            h = a
        out = torch.addmm(self.b[-1], h, self.W[-1].t())
        g = (out - y) * (2.0 / y.numel())
        for li in range(L - 1, -1, -1):
            torch.mm(g.t(), hs[li], out=self.gW[li])
            torch.sum(g, 0, out=self.gb[li])
            if li > 0:
                g = g @ self.W[li]
                if li == L - 1 and mask is not None:
                    g = g * mask
                s = torch.sigmoid(zs[li - 1])
                g = g * (s * (1.0 + zs[li - 1] * (1.0 - s)))
        self.t += 1
        self.theta.mul_(1 - lr * wd)
        self.m.lerp_(self.grad, 0.1)
        self.v.mul_(0.999).addcmul_(self.grad, self.grad, value=0.001)
        self.theta.addcdiv_(self.m, self.v.sqrt().add_(1e-8),
                            value=-lr * math.sqrt(1 - 0.999 ** self.t) / (1 - 0.9 ** self.t))


def _per_step(fn, steps: int) -> float:
    fn(max(5, steps // 10))                         # warm-up
    t0 = time.perf_counter()
    fn(steps)
    return (time.perf_counter() - t0) / steps


def library_vs_manual(ns: list[int], folds: int = 5, steps: int = 200) -> dict:
    out = {}
    sizes = [9, 128, 128, 2]
    for n in ns:
        g = torch.Generator().manual_seed(0)
        X, Y = torch.randn(n, 9, generator=g), torch.randn(n, 2, generator=g)
        w = torch.ones(folds, n)
        for f in range(folds):
            w[f, f::folds] = 0.0

        def stacked(k):
            net = StackedMLP(sizes, folds, "silu", (0.0, 0.05))
            net.init([torch.Generator().manual_seed(i) for i in range(folds)])
            train_stacked(net, X, Y, TrainSettings(steps=k), w)

        def looped(k):
            for f in range(folds):
                net = StackedMLP(sizes, 1, "silu", (0.0, 0.05))
                net.init([torch.Generator().manual_seed(f)])
                keep = w[f] > 0
                train_stacked(net, X[keep], Y[keep], TrainSettings(steps=k))

        def manual(k):
            for f in range(folds):
                net = _ManualMLP(sizes, f)
                keep = w[f] > 0
                xf, yf = X[keep], Y[keep]
                for _ in range(k):
                    mask = (torch.rand(xf.shape[0], 128, generator=g) >= 0.05).float() / 0.95
                    net.step(xf, yf, mask)

        t_s, t_l, t_m = _per_step(stacked, steps), _per_step(looped, steps), _per_step(manual, steps)
        out[str(n)] = {"folds": folds, "library_stacked_s_per_step": t_s, "library_loop_s_per_step": t_l,
                       "manual_loop_s_per_step": t_m, "ratio_library_over_manual": t_s / t_m,
                       "ratio_loop_over_stacked": t_l / t_s}
        print(f"[training] step n={n}: stacked {1e3 * t_s:.2f} ms, loop {1e3 * t_l:.2f} ms, "
              f"manual {1e3 * t_m:.2f} ms", file=sys.stderr, flush=True)
    return out


def threads(ns: list[int], steps: int = 100) -> dict:
    out = {}
    before = torch.get_num_threads()
    for n in ns:
        g = torch.Generator().manual_seed(0)
        X, Y = torch.randn(n, 9, generator=g), torch.randn(n, 2, generator=g)
        row = {}
        for k in (1, 2):
            torch.set_num_threads(k)

            def run(s):
                net = StackedMLP([9, 128, 128, 2], 1, "silu", (0.0, 0.05))
                net.init([torch.Generator().manual_seed(0)])
                train_stacked(net, X, Y, TrainSettings(steps=s, batch_size=1024))
            row[f"threads_{k}_s_per_step"] = _per_step(run, steps)
        row["speedup_2_over_1"] = row["threads_1_s_per_step"] / row["threads_2_s_per_step"]
        out[str(n)] = row
    torch.set_num_threads(before)
    return out


def polish_sharing(sizes: list[int], seed: int = 0) -> dict:
    """Seconds of the polished candidate's hold-out CV from scratch vs continued from "deeper"."""
    from alcore.model import DropoutMLP  # noqa: PLC0415
    from alcore.model.selection import DEFAULT_SEARCH_SPACE, kfold_ids  # noqa: PLC0415

    space = {c.name: dict(c.params) for c in DEFAULT_SEARCH_SPACE}
    base = SurrogateSettings().model
    out = {}
    rng = np.random.default_rng(seed)
    for n in sizes:
        X = rng.uniform(size=(n, 9))
        y = smooth9(X)
        ids = kfold_ids(n, 5, seed)
        make = lambda name: DropoutMLP(**{**base, **space[name], "seed": seed, "device": "cpu"})  # noqa: E731
        t0 = time.perf_counter()
        deeper = make("deeper").cross_validate(X, y, ids, seed=seed, only_folds=[0])
        t1 = time.perf_counter()
        scratch = make("polished").cross_validate(X, y, ids, seed=seed, only_folds=[0])
        t2 = time.perf_counter()
        continued = make("polished").cross_validate(X, y, ids, seed=seed, only_folds=[0], continue_from=deeper)
        t3 = time.perf_counter()
        out[str(n)] = {"deeper_s": t1 - t0, "polished_from_scratch_s": t2 - t1, "polished_continued_s": t3 - t2,
                       "saving_s": (t2 - t1) - (t3 - t2),
                       "identical": bool(np.array_equal(scratch.pred, continued.pred)
                                         and np.array_equal(scratch.mc_std, continued.mc_std))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, seconds")
    ap.add_argument("--sizes", default="1000,5000,20000")
    ap.add_argument("--parts", default="train_step,library_vs_manual,threads")
    a = ap.parse_args()
    sizes = [200, 500] if a.quick else [int(v) for v in a.sizes.split(",")]
    step_ns = [100, 1000] if a.quick else [100, 1000, 5000]
    parts = a.parts.split(",")
    t0 = time.perf_counter()
    res: dict = {"torch": torch.__version__, "threads_at_start": torch.get_num_threads()}
    if "library_vs_manual" in parts:
        torch.set_num_threads(1)
        res["library_vs_manual"] = library_vs_manual(step_ns, steps=30 if a.quick else 200)
    if "threads" in parts:
        res["threads"] = threads(step_ns, steps=20 if a.quick else 100)
    if "train_step" in parts:
        res["train_step"] = train_step(sizes)
    if "polish_sharing" in parts:
        torch.set_num_threads(1)
        res["polish_sharing"] = polish_sharing(sizes)
    res["wall_s"] = time.perf_counter() - t0
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
