"""The NNGP core: one home for the math every NNGP acquisition strategy builds on.

Modules, one job each:

* :mod:`.features` — samples → features Φ (K = ΦΦᵀ), the T×T systems M = Φ_Aᵀ Φ_A + reg·I
  and their rank-1 (Sherman–Morrison) updates (:class:`FeatureSystem`);
* :mod:`.posterior` — the posterior variance, :func:`prepare` (validated samples → features
  and system, what every strategy starts from) and the greedy variance engine
  (:class:`GreedyVariance`, :func:`greedy_batch`, :func:`select_batch`);
* :mod:`.screening` — float32 screening with float64 decisions, the one rounding-error model
  of the greedy strategies (:class:`Float32Screen`).

The strategies themselves (registry records, how samples are drawn) live in
:mod:`alcore.strategies`; this package knows nothing of models or contexts.

Public API (docs/architecture.md)::

    posterior_variance(train (n, T[, k]), pool (P, T[, k]), reg) -> (P,)
    select_batch(train, pool, batch_size, reg) -> int array (batch_size,)
    greedy_batch(train, pool, batch_size, reg) -> (indices, scores)
"""

from alcore.nngp.features import (
    DEFAULT_CHUNK,
    FeatureSystem,
    as_samples,
    check_reg,
    features,
    row_features,
    row_quadratic,
)
from alcore.nngp.posterior import (
    GreedyVariance,
    Prepared,
    greedy_batch,
    posterior_variance,
    prepare,
    select_batch,
)
from alcore.nngp.screening import Float32Screen

__all__ = [
    "DEFAULT_CHUNK",
    "FeatureSystem",
    "Float32Screen",
    "GreedyVariance",
    "Prepared",
    "as_samples",
    "check_reg",
    "features",
    "greedy_batch",
    "posterior_variance",
    "prepare",
    "row_features",
    "row_quadratic",
    "select_batch",
]
