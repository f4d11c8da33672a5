"""``nngp_pointwise`` — ``nngp`` on samples with independent per-point dropout masks.

The ablation kept because public implementations sample this way.  With a fresh mask per
point the samples of two different points are independent, so the empirical cross
covariance K_pq (p ≠ q) is pure noise of size O(1/√T): conditioning on the training set
and on earlier picks barely moves the variances, and the strategy behaves much like
``mc_variance``.  Everything else (reg, greedy updates) is exactly ``nngp``.
"""

from __future__ import annotations

from alcore.strategies.base import AcquisitionContext, Selection, Strategy, check_bool
from alcore.strategies.nngp import run_nngp

__all__ = ["STRATEGY"]


def _run(ctx: AcquisitionContext, greedy: bool) -> Selection:
    return run_nngp(ctx, greedy=greedy, shared_masks=False)


STRATEGY = Strategy(
    name="nngp_pointwise",
    description="nngp with independent per-point dropout masks (ablation, ~mc_variance)",
    fn=_run,
    defaults={"greedy": True},
    validators={"greedy": check_bool},
)
