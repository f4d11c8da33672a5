"""``nngp_pointwise`` — ``nngp`` on samples with independent per-point dropout masks.

The ablation kept because public implementations sample this way.  With a fresh mask per
point the samples of two different points are independent, so the empirical cross
covariance K_pq (p ≠ q) is pure noise of size O(1/√T): conditioning on the training set
and on earlier picks barely moves the variances, and the strategy behaves much like
``mc_variance``.  Everything else (reg, greedy updates) is exactly ``nngp``.
"""

from __future__ import annotations

from alcore.strategies.nngp_variance import nngp_strategy

__all__ = ["STRATEGY"]

STRATEGY = nngp_strategy(
    "nngp_pointwise",
    "nngp with independent per-point dropout masks (ablation, ~mc_variance)",
    shared_masks=False,
)
