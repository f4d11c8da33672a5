"""``nngp_sample`` — stochastic batch: sample ∝ (NNGP posterior variance)^β, no replacement.

Deterministic top-B rules put the whole batch on the few highest-scoring points; drawing the
batch at random with probabilities ∝ score^β trades a little exploitation for diversity and
is robust across problems (power sampling: Kirsch et al. 2023, BaaL; AL4PDE's studies).
β = 0 is uniform random, β → ∞ is top-B.

Sampling without replacement uses the Gumbel-top-k trick: with g_p i.i.d. Gumbel(0, 1),
the indices of the B largest β·log v_p + g_p are distributed exactly as B successive draws
without replacement with probabilities ∝ v_p^β.  O(P) for the whole batch.

``greedy=True`` conditions the NNGP posterior on each pick before the next draw (one draw
per pick with fresh Gumbel noise, variance updates as in ``nngp``: O(P·T) per pick).
Scores are the posterior variance of each pick at the time it was drawn.  Seeded by
``ctx.seed`` (a stream independent of the model's sampling seed).
"""

from __future__ import annotations

import numpy as np

from alcore._util import check_batch_size
from alcore.nngp import GreedyVariance, prepare
from alcore.strategies.base import (
    AcquisitionContext,
    Selection,
    Strategy,
    absolute_reg,
    check_bool,
    check_nonneg_float,
    draw_samples,
    top_b,
)
from alcore.strategies.base import weighted as _weighted

__all__ = ["select_sample", "sampling_keys", "STRATEGY"]

_STREAM = 0x5A4D  # separates this strategy's random stream from other uses of ctx.seed


def sampling_keys(variance: np.ndarray, beta: float, gumbel: np.ndarray) -> np.ndarray:
    """Perturbed log-weights β·log v + g; v = 0 gets -inf (never drawn while v > 0 remain)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logw = np.log(np.power(np.maximum(variance, 0.0), beta))
    return logw + gumbel


def select_sample(
    train: np.ndarray,
    pool: np.ndarray,
    batch_size: int,
    reg: float,
    beta: float = 1.0,
    greedy: bool = False,
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> Selection:
    """Draw a batch ∝ posterior variance^β (× ``weights``, e.g. P(success)) from MC samples;
    ``reg`` absolute."""
    prepared = prepare(train, pool, reg, np.float32)
    n_pool = prepared.phi_pool.shape[1]
    b = check_batch_size(batch_size, n_pool)
    beta = check_nonneg_float(beta, "beta")
    rng = np.random.default_rng([int(seed), _STREAM])
    state = GreedyVariance(prepared)
    with np.errstate(divide="ignore"):  # log of the weights: draws ∝ weight × variance^β
        logw = None if weights is None else np.log(_weighted(np.ones(n_pool), weights))
    if not greedy:
        v = state.variance
        idx = top_b(_plus(sampling_keys(v, beta, rng.gumbel(size=n_pool)), logw), b)
        return Selection(indices=idx, scores=v[idx])
    taken = np.zeros(n_pool, dtype=bool)
    idx = np.empty(b, dtype=np.int64)
    scores = np.empty(b)
    for i in range(b):
        keys = _plus(sampling_keys(state.variance, beta, rng.gumbel(size=n_pool)), logw)
        keys[taken] = -np.inf
        q = int(np.argmax(keys))
        if taken[q]:  # every remaining variance is 0: take the first untaken point
            q = int(np.flatnonzero(~taken)[0])
        idx[i], scores[i] = q, state.variance[q]
        taken[q] = True
        if i + 1 < b:
            state.condition_on(q)
    return Selection(indices=idx, scores=scores)


def _plus(keys: np.ndarray, logw: np.ndarray | None) -> np.ndarray:
    return keys if logw is None else keys + logw


def _run(ctx: AcquisitionContext, beta: float, greedy: bool) -> Selection:
    s = draw_samples(ctx, shared_masks=True)
    return select_sample(
        s.train, s.pool, int(ctx.batch_size), absolute_reg(ctx, s), beta, greedy, int(ctx.seed),
        weights=ctx.success_prob,
    )


STRATEGY = Strategy(
    name="nngp_sample",
    description="random batch drawn ∝ NNGP posterior variance^beta (power sampling)",
    fn=_run,
    defaults={"beta": 1.0, "greedy": False},
    validators={"beta": check_nonneg_float, "greedy": check_bool},
)
