"""Choosing the next point(s) of an asynchronous campaign, conditioned on the pending ones.

When a worker frees up, the points still being simulated (requested, not yet labelled) are
part of the design already: picking without them would send the next worker to the same
region. They are conditioned on by passing them, with the labelled points, as the strategy's
``X_train``; candidates are the points never requested. What that means per strategy:

* ``nngp``, ``nngp_pointwise``, ``nngp_sample``: exact. The NNGP posterior variance does not
  depend on the labels, only on where they are, so a pending point reduces the variance around
  it exactly as its label will (this is the batch rule's own greedy update, applied across
  picks made at different times);
* ``nngp_ivr``: exact for the same reason (the variance reduction is conditioned on them);
* ``nngp_lcmd``: pending points are cluster centres, like labelled points and like the points
  picked earlier in a batch; the posterior kernel is also conditioned on them (in a batch, LCMD
  keeps the kernel of the labelled set fixed while it picks);
* ``mc_variance``: it looks at no training set, so pending points are only removed from the
  candidates (as in a batch, no diversity between picks);
* ``random``: pending points are removed from the candidates; each pick is seeded by the number
  of points requested before it, so a campaign is reproducible from its pick order.

Before the first model exists, workers that free up get :func:`space_filling_picks`: greedy
maximin distance (in the pool's box scaled to unit sides) to every labelled and pending point,
so these picks also spread out around the pending ones. (Random picks, like the initial design,
cost test RMSE: measured, 36-124 of 200 labels were handed out before the first model was
ready on the loaded development machine.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["pick", "pick_from", "conditioning_sets", "random_picks", "space_filling_picks"]


def pick(store: Any, model: Any, n: int, *, strategy: str, params: dict[str, Any], samples: int,
         reg: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pool positions and scores of ``n`` new points chosen by ``strategy`` with ``model``,
    conditioned on every labelled and every pending (requested) point of ``store``."""
    known, candidates = conditioning_sets(store)
    return pick_from(np.asarray(store.pool_X), known, candidates, model, n, strategy=strategy, params=params,
                     samples=samples, reg=reg, seed=seed)


def conditioning_sets(store: Any) -> tuple[np.ndarray, np.ndarray]:
    """(labelled and pending points, never-requested candidates) of ``store``, pool positions."""
    known = np.union1d(store.labelled_indices(), store.requested_indices()).astype(np.int64)
    return known, np.asarray(store.unlabelled_indices(), dtype=np.int64)


def pick_from(pool_X: np.ndarray, known: np.ndarray, candidates: np.ndarray, model: Any, n: int, *,
              strategy: str, params: dict[str, Any], samples: int, reg: float,
              seed: int, success_prob: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pick` on arrays: ``known`` are conditioned on, ``candidates`` may be picked;
    ``success_prob`` (one per candidate, or None) weights the acquisition as in batch mode
    (:class:`~alcore.campaign.async_avoid.FailureAvoidance`)."""
    from alcore import strategies  # noqa: PLC0415

    n = min(int(n), int(candidates.size))
    if n <= 0:
        return np.zeros(0, np.int64), np.zeros(0)
    ctx = strategies.AcquisitionContext(
        model=model, X_train=pool_X[known], X_pool=pool_X[candidates], batch_size=n,
        n_samples=samples, reg=reg, seed=int(seed),
        X_target=None,  # the held-out test inputs must not steer what gets labelled
        success_prob=success_prob,
    )
    sel = strategies.select(strategy, ctx, **params)
    return candidates[np.asarray(sel.indices, dtype=np.int64)], np.asarray(sel.scores, dtype=float)


def random_picks(store: Any, n: int, seed: int) -> np.ndarray:
    """``n`` uniformly random never-requested pool positions (no model yet)."""
    candidates = np.asarray(store.unlabelled_indices(), dtype=np.int64)
    n = min(int(n), int(candidates.size))
    if n <= 0:
        return np.zeros(0, np.int64)
    return np.random.default_rng(seed).choice(candidates, size=n, replace=False)


def space_filling_picks(store: Any, n: int, *, failed: np.ndarray | None = None,
                        success_prob: np.ndarray | None = None) -> np.ndarray:
    """``n`` never-requested pool positions, each the farthest (Euclidean, unit-scaled box) from
    every labelled, pending and earlier-picked point: a model-free pick that is conditioned on
    the pending points. Ties go to the lower position (deterministic).

    Avoiding failures as the strategies do: ``failed`` (pool positions) count as known points,
    ``success_prob`` (one per never-requested candidate, or None) drops the candidates below
    ``MIN_SUCCESS_PROB`` and weights the distance (maximin distance alone prefers the box's
    corners, where a failing region often is)."""
    from alcore.strategies.base import feasible_candidates, weighted  # noqa: PLC0415

    known, candidates = conditioning_sets(store)
    if failed is not None:
        known = np.union1d(known, np.asarray(failed, dtype=np.int64))
    p = None
    if success_prob is not None:
        keep = feasible_candidates(success_prob, min(int(n), int(candidates.size)))
        candidates, p = candidates[keep], np.asarray(success_prob, dtype=float)[keep]
    n = min(int(n), int(candidates.size))
    if n <= 0:
        return np.zeros(0, np.int64)
    X = np.asarray(store.pool_X, dtype=float)
    lo, span = X.min(axis=0), np.ptp(X, axis=0)
    Z = (X - lo) / np.where(span > 0, span, 1.0)
    C = Z[candidates]
    d = np.full(candidates.size, np.inf)
    for start in range(0, known.size, 512):  # bounded temporaries
        K = Z[known[start:start + 512]]
        d = np.minimum(d, ((C[:, None, :] - K[None, :, :]) ** 2).sum(axis=2).min(axis=1))
    picks = np.empty(n, dtype=np.int64)
    taken = np.zeros(candidates.size, dtype=bool)
    for j in range(n):
        score = weighted(np.sqrt(d), p)
        score[taken] = -np.inf
        q = int(np.argmax(score))
        picks[j] = candidates[q]
        d = np.minimum(d, ((C - C[q]) ** 2).sum(axis=1))
        taken[q] = True
    return picks
