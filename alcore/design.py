"""Space-filling candidate designs on a box: Sobol (scrambled), Latin hypercube, uniform random.

Pools and test sets are drawn with these.  Sobol is the default for pools because its
low-discrepancy coverage makes pool-based acquisition (and pool-integrated variance) less
sensitive to clumps; LHS and random are there for comparison and for studies.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import qmc

KINDS: tuple[str, ...] = ("sobol", "lhs", "random")


def check_bounds(bounds) -> np.ndarray:
    """Validate ``bounds`` (d, 2) with finite ``lo < hi`` per row; returns a float64 copy."""
    try:
        b = np.array(bounds, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bounds must be a numeric (d, 2) array; got {bounds!r}") from exc
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] < 1:
        raise ValueError(f"bounds must have shape (d, 2) with d >= 1; got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError("bounds must be finite")
    bad = np.nonzero(b[:, 0] >= b[:, 1])[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"bounds row {i}: lower {b[i, 0]} must be < upper {b[i, 1]}")
    return b


def make_design(kind: str, n: int, bounds, seed: int) -> np.ndarray:
    """``n`` points (n, d) in the box ``bounds`` (d, 2); reproducible for a given ``seed``.

    Sobol with an ``n`` that is not a power of two takes the first ``n`` points of the
    scrambled sequence (its balance warning is silenced on purpose: the first n points of a
    scrambled Sobol sequence are still a good, reproducible design).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    b = check_bounds(bounds)
    d = b.shape[0]
    rng = np.random.default_rng(int(seed))
    if kind == "sobol":
        sampler = qmc.Sobol(d=d, scramble=True, seed=rng)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*balance properties.*")
            u = sampler.random(int(n))
    elif kind == "lhs":
        u = qmc.LatinHypercube(d=d, seed=rng).random(int(n))
    else:
        u = rng.random((int(n), d))
    return qmc.scale(u, b[:, 0], b[:, 1])
