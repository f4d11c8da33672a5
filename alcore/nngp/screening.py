"""float32 screening, float64 decisions: the one rounding-error model of the greedy strategies.

Why: the O(P·T) products of a greedy pick dominate its cost, and float32 (P, T) features halve
their memory traffic.  The picks must still be those of the all-float64 rule, so every tracked
pool score carries a per-point bound e_p on its float32 error, and before a pick every
untaken point whose upper bound s_p + e_p reaches the best lower bound max(s_q - e_q) is
re-evaluated exactly (float64 features rebuilt from the samples); the pick is the exact best
of those.  ``GreedyVariance`` (``nngp``, greedy ``nngp_sample``) and ``nngp_ivr`` use it.

The bound of one float32 dot product φ_pᵀv of length T is |δ| <= γ·‖φ_p‖·‖v‖ with
γ = 2·T·ε (a deterministic bound, ε the float32 unit roundoff); :meth:`Float32Screen.dot_error`
gives it for every pool point at once.  How a score combines such dot products (and so how
its bound grows per pick) is the caller's formula.
"""

from __future__ import annotations

import numpy as np

from alcore.nngp.features import row_features

__all__ = ["Float32Screen"]


class Float32Screen:
    """Rounding bounds of float32 pool features (k, P, T) and the exact re-evaluation rule.

    ``active`` is False when the features are float64 or no samples are given: then
    :meth:`candidates` is never needed and :meth:`exact_features` just reads the features.
    """

    def __init__(self, phi: np.ndarray, samples: np.ndarray | None):
        self.phi = phi
        self.active = samples is not None and phi.dtype != np.float64
        self.samples = samples if self.active else None
        self.n_exact = 0  # points re-evaluated exactly (diagnostics)
        if self.active:
            self.eps = float(np.finfo(phi.dtype).eps)
            self.gamma = 2.0 * phi.shape[2] * self.eps
            #: ‖φ_p‖² per output (k, P), summed in float64
            self.sq_norms = np.stack([np.einsum("ij,ij->i", phi[j], phi[j], dtype=np.float64)
                                      for j in range(phi.shape[0])])
            self.norms = np.sqrt(self.sq_norms)

    def exact_features(self, idx: np.ndarray) -> np.ndarray:
        """float64 features (k, m, T) of pool rows ``idx`` (rebuilt from the samples if float32)."""
        if self.samples is None:
            return np.asarray(self.phi[:, idx], dtype=np.float64)
        return row_features(self.samples, idx)

    def dot_error(self, j: int, vec: np.ndarray) -> np.ndarray:
        """Bound γ·‖φ_p‖·‖vec‖ on the float32 error of φ_pᵀvec (output j), for every pool point."""
        return self.gamma * float(np.linalg.norm(vec)) * self.norms[j]

    def candidates(self, score: np.ndarray, err: np.ndarray, rtol: float = 0.0) -> np.ndarray:
        """Points that may hold the largest ``score`` given per-point error bounds ``err``.

        Taken points must carry score -inf.  With ``rtol`` also every point within that relative
        distance of the best tracked score (a margin for bounds that are tight in practice).
        """
        lower = float(np.max(score - err))
        if rtol:
            lower = min(lower, float(np.max(score)) * (1.0 - rtol))
        return np.flatnonzero(score + err >= lower)
