"""``nngp`` (this module: ``nngp_variance``) — greedy maximum NNGP posterior variance (Tsymbalov et al., arXiv 1902.10350).

With features Φ of shared-mask MC samples (K = ΦΦᵀ) and M = Φ_Aᵀ Φ_A + reg·I over the
training set A,

    var_p = reg · φ_pᵀ M⁻¹ φ_p = K_pp - K_pA (K_AA + reg I)⁻¹ K_Ap .

Greedy: pick argmax var_p, add it to A with the same reg (Sherman–Morrison), repeat; the
variance of every point correlated with a pick drops, which spreads the batch out.  This
is greedy MaxDet on the NNGP kernel (Holzmüller et al., JMLR 2023).  ``greedy=False`` takes
the top-B posterior variances without batch updates (the ablation).

Train and pool are sampled in ONE model call with shared masks: sample t is the same
thinned network on every point, so K_pA carries the network's correlation structure.
"""

from __future__ import annotations

import numpy as np

from alcore._util import check_batch_size
from alcore.nngp import GreedyVariance, greedy_batch, posterior_variance, prepare
from alcore.strategies.base import (
    AcquisitionContext,
    Selection,
    Strategy,
    absolute_reg,
    check_bool,
    draw_samples,
    top_b,
    weighted,
)

__all__ = ["select_nngp", "STRATEGY"]


def select_nngp(
    train: np.ndarray, pool: np.ndarray, batch_size: int, reg: float, greedy: bool = True,
    weights: np.ndarray | None = None,
) -> Selection:
    """Greedy (or, with ``greedy=False``, top-B) posterior-variance batch from samples.

    ``reg`` is absolute here; scores are the posterior variance of each pick when picked
    (× ``weights``, e.g. P(success), when given: then that product is what is maximised).
    """
    if weights is not None and greedy:
        return _weighted_greedy(train, pool, batch_size, reg, np.asarray(weights, dtype=np.float64))
    if greedy:
        idx, scores = greedy_batch(train, pool, batch_size, reg)
        return Selection(indices=idx, scores=scores)
    v = weighted(posterior_variance(train, pool, reg), weights)
    idx = top_b(v, check_batch_size(batch_size, v.shape[0]))
    return Selection(indices=idx, scores=v[idx])


def _weighted_greedy(train: np.ndarray, pool: np.ndarray, batch_size: int, reg: float,
                     weights: np.ndarray) -> Selection:
    """Greedy argmax of weight × posterior variance, conditioning on each pick.

    float64 features throughout: the float32 screening of :class:`GreedyVariance` bounds the
    error of the variance alone, and the weights are estimates anyway.
    """
    prepared = prepare(train, pool, reg, np.float64)
    n_pool = prepared.phi_pool.shape[1]
    b = check_batch_size(batch_size, n_pool)
    state = GreedyVariance(prepared)
    taken = np.zeros(n_pool, dtype=bool)
    idx = np.empty(b, dtype=np.int64)
    scores = np.empty(b)
    for i in range(b):
        key = np.where(taken, -np.inf, weighted(state.variance, weights))
        q = int(np.argmax(key))
        idx[i], scores[i] = q, key[q]
        taken[q] = True
        if i + 1 < b:
            state.condition_on(q)
    return Selection(indices=idx, scores=scores)


def run_nngp(ctx: AcquisitionContext, greedy: bool, shared_masks: bool) -> Selection:
    """Sample train + pool in one call, then :func:`select_nngp` (shared by nngp_pointwise)."""
    s = draw_samples(ctx, shared_masks=shared_masks)
    return select_nngp(s.train, s.pool, int(ctx.batch_size), absolute_reg(ctx, s), greedy,
                       ctx.success_prob)


def nngp_strategy(name: str, description: str, shared_masks: bool) -> Strategy:
    """The registry record of an nngp variant; the variants differ only in how masks are drawn."""

    def _run(ctx: AcquisitionContext, greedy: bool) -> Selection:
        return run_nngp(ctx, greedy=greedy, shared_masks=shared_masks)

    return Strategy(
        name=name,
        description=description,
        fn=_run,
        defaults={"greedy": True},
        validators={"greedy": check_bool},
    )


STRATEGY = nngp_strategy(
    "nngp",
    "greedy max NNGP posterior variance from shared-mask MC dropout (batch-aware)",
    shared_masks=True,
)
