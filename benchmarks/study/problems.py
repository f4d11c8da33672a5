"""Problems of the study: a labelled candidate pool and an independent labelled test set.

Why pool-based: labelling every candidate once and replaying campaigns as look-ups is what
makes 10 seeds x 7 strategies affordable on 2 cores, and it makes the comparison exact — every
strategy chooses from the same candidates and is scored on the same test points.

Label caches live in ``benchmarks/out/cache/<name>_<hash>.npz``; the hash covers everything
that defines the labels (oracle parameters, designs, sizes, seeds, transform), so a changed
setting builds a new cache instead of silently reusing a stale one.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "out"
CACHE = OUT / "cache"

# California columns with long right tails (sklearn's derived features): log1p'd by the
# "california_log" problem, the remedy tested for the seed's study.
CAL_HEAVY = ("AveRooms", "AveBedrms", "Population", "AveOccup")


@dataclass
class Problem:
    """Labelled pool and test set of one problem (arrays in original units)."""

    name: str
    pool_X: np.ndarray
    pool_y: np.ndarray
    test_X: np.ndarray
    test_y: np.ndarray
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pool_y = self.pool_y.reshape(len(self.pool_y), -1)
        self.test_y = self.test_y.reshape(len(self.test_y), -1)
        if self.pool_X.ndim != 2 or self.pool_X.shape[0] != self.pool_y.shape[0]:
            raise ValueError(f"{self.name}: pool_X {self.pool_X.shape} and pool_y {self.pool_y.shape} disagree")
        if self.test_X.ndim != 2 or self.test_X.shape[0] != self.test_y.shape[0]:
            raise ValueError(f"{self.name}: test_X {self.test_X.shape} and test_y {self.test_y.shape} disagree")
        if self.pool_X.shape[1] != self.test_X.shape[1] or self.pool_y.shape[1] != self.test_y.shape[1]:
            raise ValueError(f"{self.name}: pool and test sets have different widths")
        for nm, a in (("pool_X", self.pool_X), ("pool_y", self.pool_y), ("test_X", self.test_X),
                      ("test_y", self.test_y)):
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{self.name}: {nm} has NaN or infinite values (failed labels?)")


# name -> spec.  sizes: (pool, test).  "quick" sizes are for --quick checks only.
SPECS: dict[str, dict[str, Any]] = {
    "california": {"kind": "table", "test": 5000, "split_seed": 0, "transform": None},
    "california_log": {"kind": "table", "test": 5000, "split_seed": 0, "transform": "log1p_heavy"},
    "heat2d": {"kind": "oracle", "oracle": "heat2d", "params": {}, "pool": 5000, "test": 2000,
               "pool_design": "sobol", "test_design": "random", "pool_seed": 0, "test_seed": 7919,
               "quick": (1000, 500)},
    "burgers1d": {"kind": "oracle", "oracle": "burgers1d", "params": {}, "pool": 2000, "test": 1000,
                  "pool_design": "sobol", "test_design": "random", "pool_seed": 0, "test_seed": 7919,
                  "quick": (300, 200)},
    # not tuned on (issue 15): an analytic oracle, labels in milliseconds
    "ishigami": {"kind": "oracle", "oracle": "ishigami", "params": {}, "pool": 2000, "test": 1000,
                 "pool_design": "sobol", "test_design": "random", "pool_seed": 0, "test_seed": 7919,
                 "quick": (300, 200)},
}


def _key(spec: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _label_chunk(args: tuple[str, dict, np.ndarray]) -> np.ndarray:
    """Worker: label a chunk of points (runs in a spawned process, one thread)."""
    name, params, X = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from oracles import resolve  # noqa: PLC0415

    return resolve(name, **params).evaluate_batch(X)


def label_points(oracle: str, params: dict, X: np.ndarray, workers: int = 2, chunk: int = 50) -> np.ndarray:
    """Label ``X`` with ``oracle`` in ``workers`` processes (plain loop; no Dask needed here)."""
    chunks = [X[i:i + chunk] for i in range(0, len(X), chunk)]
    if workers <= 1:
        return np.concatenate([_label_chunk((oracle, params, c)) for c in chunks])
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as ex:
        return np.concatenate(list(ex.map(_label_chunk, [(oracle, params, c) for c in chunks])))


def _california(spec: dict[str, Any]) -> Problem:
    from oracles.datasets import FEATURES, TARGET, load_california  # noqa: PLC0415

    X, y, source = load_california()
    X = X.copy()
    if spec["transform"] == "log1p_heavy":
        for c in CAL_HEAVY:
            j = FEATURES.index(c)
            X[:, j] = np.log1p(X[:, j])
    perm = np.random.default_rng(spec["split_seed"]).permutation(len(X))
    te, po = perm[:spec["test"]], perm[spec["test"]:]
    return Problem("", X[po], y[po], X[te], y[te], tuple(FEATURES), tuple(TARGET), {"source": source})


def _oracle_problem(spec: dict[str, Any], workers: int) -> Problem:
    from alcore.design import make_design  # noqa: PLC0415
    from oracles import resolve  # noqa: PLC0415

    o = resolve(spec["oracle"], **spec["params"])
    pX = make_design(spec["pool_design"], spec["pool"], o.bounds, spec["pool_seed"])
    tX = make_design(spec["test_design"], spec["test"], o.bounds, spec["test_seed"])
    t0 = time.perf_counter()
    Y = label_points(spec["oracle"], spec["params"], np.concatenate([pX, tX]), workers)
    meta = {"oracle": o.info(), "label_seconds": time.perf_counter() - t0, "label_workers": workers}
    return Problem("", pX, Y[:len(pX)], tX, Y[len(pX):], tuple(o.input_names), tuple(o.output_names), meta)


def problem_spec(name: str, quick: bool = False) -> dict[str, Any]:
    """The full spec of problem ``name`` (with --quick sizes applied)."""
    if name not in SPECS:
        raise ValueError(f"unknown problem {name!r}; available: {', '.join(SPECS)}")
    spec = dict(SPECS[name])
    q = spec.pop("quick", None)
    if quick and q is not None:
        spec["pool"], spec["test"] = q
    return spec


def load_problem(name: str, quick: bool = False, workers: int = 2, cache_dir: Path = CACHE,
                 verbose: bool = True) -> Problem:
    """The labelled problem, from its cache (built on first use)."""
    spec = problem_spec(name, quick)
    path = Path(cache_dir) / f"{name}_{_key(spec)}.npz"
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        return Problem(name, z["pool_X"], z["pool_y"], z["test_X"], z["test_y"],
                       tuple(meta.pop("input_names")), tuple(meta.pop("output_names")), meta)
    if verbose:
        print(f"[study] building label cache {path.name} ...", flush=True)
    p = _california(spec) if spec["kind"] == "table" else _oracle_problem(spec, workers)
    p.name = name
    meta = {**p.meta, "spec": spec, "input_names": list(p.input_names), "output_names": list(p.output_names)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, pool_X=p.pool_X, pool_y=p.pool_y, test_X=p.test_X, test_y=p.test_y,
             meta=np.array(json.dumps(meta, default=str)))
    os.replace(tmp, path)
    if verbose:
        print(f"[study] {path.name}: pool {p.pool_X.shape}, test {p.test_X.shape}, "
              f"{meta.get('label_seconds', 0):.0f} s", flush=True)
    return p
