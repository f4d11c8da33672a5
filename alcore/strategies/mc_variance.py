"""``mc_variance`` — top-B Monte-Carlo dropout variance (MCDUE, Tsymbalov et al. 2018).

    score_p = Σ_j Var_t[ f_t(x_p)_j ]      (population variance over the T samples,
                                            summed over standardised outputs)

Picks the B largest scores at once, with no interaction between picks: the baseline that the
NNGP strategies improve on (neighbouring high-variance points are all picked together).
The marginal variance of a point does not depend on whether masks are shared, so shared
masks (one thinned network per sample, the cheaper path) are used.
"""

from __future__ import annotations

import numpy as np

from alcore._util import check_batch_size
from alcore.nngp import DEFAULT_CHUNK, as_samples
from alcore.strategies.base import AcquisitionContext, Selection, Strategy, draw_samples, top_b, weighted

__all__ = ["mc_variance_scores", "select_mc_variance", "STRATEGY"]


def mc_variance_scores(pool: np.ndarray) -> np.ndarray:
    """Per-point MC variance summed over outputs; ``pool`` is (P, T) or (P, T, k)."""
    s = as_samples(pool, "pool")
    out = np.empty(s.shape[0])
    for start in range(0, s.shape[0], DEFAULT_CHUNK):  # bounded temporaries for 10^6 points
        blk = np.asarray(s[start : start + DEFAULT_CHUNK], dtype=np.float64)
        out[start : start + DEFAULT_CHUNK] = np.var(blk, axis=1).sum(axis=1)
    return out


def select_mc_variance(pool: np.ndarray, batch_size: int, weights: np.ndarray | None = None) -> Selection:
    """The ``batch_size`` points of largest MC variance (× ``weights`` if given), largest first."""
    v = weighted(mc_variance_scores(pool), weights)
    idx = top_b(v, check_batch_size(batch_size, v.shape[0]))
    return Selection(indices=idx, scores=v[idx])


def _run(ctx: AcquisitionContext) -> Selection:
    s = draw_samples(ctx, shared_masks=True, with_train=False)
    return select_mc_variance(s.pool, int(ctx.batch_size), ctx.success_prob)


STRATEGY = Strategy(
    name="mc_variance",
    description="top-B MC-dropout variance, no batch diversity (MCDUE baseline)",
    fn=_run,
)
