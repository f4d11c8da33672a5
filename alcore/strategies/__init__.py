"""Registry of acquisition strategies, selectable by name from the campaign config.

    select(name, ctx, **params) -> Selection      # indices into ctx.X_pool, in pick order
    available() -> dict[str, str]                  # name -> one-line description

One module per strategy, with its math in the module docstring (like BoTorch's
``acquisition/``); each exposes an array-level ``select_*`` function (samples in, indices
out — what the tests and benchmarks/selection.py call) and a ``STRATEGY`` record that the
registry below collects.  The NNGP strategies share the feature core of
:mod:`alcore.nngp` (features, the T×T system, the greedy posterior, float32 screening).  ``ctx.reg`` is relative to the mean prior variance by default
(see :mod:`alcore.strategies.base`).
"""

from __future__ import annotations

import difflib
from typing import Any

from alcore.strategies import mc_variance, nngp_ivr, nngp_lcmd, nngp_pointwise, nngp_sample, nngp_variance
from alcore.strategies import random as _random
from alcore.strategies.base import AcquisitionContext, Selection, Strategy

__all__ = ["AcquisitionContext", "Selection", "Strategy", "select", "available", "get", "REGISTRY"]

REGISTRY: dict[str, Strategy] = {
    m.STRATEGY.name: m.STRATEGY
    for m in (_random, mc_variance, nngp_variance, nngp_pointwise, nngp_ivr, nngp_lcmd, nngp_sample)
}


def available() -> dict[str, str]:
    """Registered strategy names with their one-line descriptions."""
    return {name: s.description for name, s in REGISTRY.items()}


def get(name: str) -> Strategy:
    """The strategy record for ``name``; unknown names list the available ones and close matches."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(REGISTRY), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise ValueError(
            f"unknown acquisition strategy {name!r}{hint}; available: {', '.join(REGISTRY)}"
        ) from None


def select(name: str, ctx: AcquisitionContext, **params: Any) -> Selection:
    """Run strategy ``name`` on ``ctx`` with its ``params`` (validated; unknown ones rejected)."""
    return get(name)(ctx, **params)
