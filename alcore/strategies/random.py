"""``random`` — uniformly random pool points, without replacement (the control arm).

Every active-learning claim is a claim against this baseline, so it is seeded by
``ctx.seed`` and draws no model samples at all.  Scores are 0 (no acquisition value).
With ``ctx.success_prob`` the draw is ∝ p (successive draws without replacement).
"""

from __future__ import annotations

import numpy as np

from alcore.strategies.base import AcquisitionContext, Selection, Strategy

__all__ = ["select_random", "STRATEGY"]


def select_random(n_pool: int, batch_size: int, seed: int,
                  weights: np.ndarray | None = None) -> Selection:
    """``batch_size`` distinct positions in ``range(n_pool)``, reproducible from ``seed``;
    drawn ∝ ``weights`` (e.g. P(success)) when given."""
    rng = np.random.default_rng(seed)
    if weights is None:
        idx = rng.choice(n_pool, size=batch_size, replace=False)
    else:
        w = np.asarray(weights, dtype=np.float64) + 1e-12  # a zero weight is still drawable last
        idx = rng.choice(n_pool, size=batch_size, replace=False, p=w / w.sum())
    return Selection(indices=idx, scores=np.zeros(batch_size))


def _run(ctx: AcquisitionContext) -> Selection:
    return select_random(np.asarray(ctx.X_pool).shape[0], int(ctx.batch_size), int(ctx.seed),
                         ctx.success_prob)


STRATEGY = Strategy(
    name="random",
    description="uniformly random pool points (seeded baseline)",
    fn=_run,
)
