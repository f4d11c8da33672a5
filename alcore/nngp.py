"""NNGP posterior variance from MC-dropout samples, and greedy batch selection on it.

Public API (docs/architecture.md)::

    posterior_variance(train (n, T[, k]), pool (P, T[, k]), reg) -> (P,)
    select_batch(train, pool, batch_size, reg) -> int array (batch_size,), in pick order

The kernel is the empirical covariance of the T samples (centred per point, divided by T),
``reg`` the absolute noise variance on the training block.  With Φ the features of
:mod:`alcore.features` and M = Φ_Aᵀ Φ_A + reg·I,

    var_p = K_pp - K_pA (K_AA + reg·I)⁻¹ K_Ap = reg · φ_pᵀ M⁻¹ φ_p ,

computed in O((n + P)·T²).  Greedy selection picks argmax var_p, adds that point to the
conditioning set with the same reg, and corrects every pool variance by the rank-1 term

    var_p ← var_p - reg · (φ_pᵀ u)² / (1 + a),     u = M⁻¹ φ_q,  a = φ_qᵀ u,

one matrix-vector product Φ_pool·u per pick: O(P·T·B) time, O(P·T) memory, never P×P.
For k outputs every output has its own M and the variances are summed.
"""

from __future__ import annotations

import numpy as np

from alcore.features import FeatureSystem, as_samples, check_reg, features, row_features

__all__ = ["posterior_variance", "select_batch", "GreedyVariance", "prepare", "check_batch_size"]


def check_batch_size(batch_size: int, n_pool: int) -> int:
    """Validate a batch size against the pool: an int in [1, P]."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be an int, got {batch_size!r}")
    if not 1 <= int(batch_size) <= n_pool:
        raise ValueError(f"batch_size must be between 1 and the pool size {n_pool}, got {batch_size}")
    return int(batch_size)


def prepare(
    train: np.ndarray,
    pool: np.ndarray,
    reg: float,
    pool_dtype: np.dtype | type = np.float64,
    return_samples: bool = False,
) -> tuple[np.ndarray, FeatureSystem] | tuple[np.ndarray, FeatureSystem, np.ndarray]:
    """Validate train/pool samples and return (pool features (k, P, T), FeatureSystem).

    With ``return_samples`` also the pool samples as (P, T, k) (a view, no copy), from which
    exact float64 features of single rows can be rebuilt when ``pool_dtype`` is float32.
    """
    reg = check_reg(reg)
    tr = as_samples(train, "train")
    po = as_samples(pool, "pool")
    if tr.shape[1] != po.shape[1]:
        raise ValueError(f"train has T={tr.shape[1]} samples per point but pool has T={po.shape[1]}")
    if tr.shape[2] != po.shape[2]:
        raise ValueError(f"train has k={tr.shape[2]} outputs but pool has k={po.shape[2]}")
    if po.shape[0] == 0:
        raise ValueError("pool is empty")
    system = FeatureSystem(features(tr, np.float64, "train"), reg)
    phi = features(po, pool_dtype, "pool")
    return (phi, system, po) if return_samples else (phi, system)


def posterior_variance(train: np.ndarray, pool: np.ndarray, reg: float) -> np.ndarray:
    """Exact NNGP posterior variance of each pool point given the training points.

    ``train`` (n, T) or (n, T, k), ``pool`` (P, T) or (P, T, k) MC samples (same T, k; n may
    be 0); ``reg`` > 0 the absolute noise variance on the training block.  Returns (P,)
    float64, summed over outputs.  Equal to the dense ``K_pp - K_pA (K_AA + reg I)⁻¹ K_Ap``.
    """
    phi_pool, system = prepare(train, pool, reg)
    return system.reg * system.quadratic(phi_pool).sum(axis=0)


class GreedyVariance:
    """Pool posterior variances that stay exact as points join the conditioning set.

    The engine behind greedy ``select_batch`` and the greedy mode of ``nngp_sample``:
    :meth:`condition_on` adds pool point q (O(T²) + one O(P·T) mat-vec per output).

    float32 screening, float64 decisions.  With the (P, T) features stored in float32, each
    tracked variance carries a rounding error.  A per-point bound e_p is kept (O(P) per
    pick): the initial quadratic form errs by at most ~4ε·‖φ_p‖², and every update
    reg·c_p²/(1+a), c_p = φ_pᵀu, by at most 2·γ·|c_p|·‖φ_p‖·‖u‖·reg/(1+a) with
    γ = 2·T·ε (a deterministic dot-product bound, ε the float32 unit roundoff).  Given the
    original ``samples``, :meth:`argmax` re-evaluates exactly (float64 features rebuilt from
    the samples, the float64 M⁻¹) every untaken point whose upper bound v_p + e_p reaches the
    best lower bound max(v_q - e_q), resets their bounds, and picks the exact maximum — the
    pick of the all-float64 greedy.  The pick's float64 features are what joins M.
    """

    def __init__(self, phi_pool: np.ndarray, system: FeatureSystem, samples: np.ndarray | None = None):
        self.phi = phi_pool
        self.system = system
        self.samples = samples if phi_pool.dtype != np.float64 else None
        self.per_output = system.reg * system.quadratic(phi_pool)  # (k, P) float64
        self.variance = self.per_output.sum(axis=0)
        if self.samples is not None:
            eps = float(np.finfo(phi_pool.dtype).eps)
            self.gamma = 2.0 * phi_pool.shape[2] * eps
            sq = np.stack([np.einsum("ij,ij->i", phi_pool[j], phi_pool[j], dtype=np.float64)
                           for j in range(phi_pool.shape[0])])  # ‖φ_p‖² per output
            self.norms = np.sqrt(sq)
            self.err = 4.0 * eps * sq.sum(axis=0)
            self.n_exact = 0  # exact re-evaluations made (diagnostics)

    def exact_features(self, idx: np.ndarray) -> np.ndarray:
        """float64 features (k, m, T) of pool rows ``idx``."""
        if self.samples is None:
            return np.asarray(self.phi[:, idx], dtype=np.float64)
        return row_features(self.samples, idx)

    def argmax(self, taken: np.ndarray) -> int:
        """The untaken point of largest posterior variance (decided in float64)."""
        v = np.where(taken, -np.inf, self.variance)
        if self.samples is None:
            return int(np.argmax(v))
        lower = float(np.max(v - self.err))
        cand = np.flatnonzero(v + self.err >= lower)
        if cand.size > 1:
            phi = self.exact_features(cand)
            exact = self.system.reg * np.stack(
                [np.einsum("ij,ij->i", phi[j] @ self.system.minv[j], phi[j]) for j in range(self.system.k)]
            )
            self.per_output[:, cand] = exact
            self.variance[cand] = exact.sum(axis=0)
            self.err[cand] = 0.0
            self.n_exact += cand.size
            return int(cand[np.argmax(self.variance[cand])])
        return int(cand[0])

    def condition_on(self, q: int) -> None:
        """Condition every pool variance on pool point q (noise reg)."""
        reg = self.system.reg
        phi_q = self.exact_features(np.array([q]))[:, 0]
        for j in range(self.system.k):
            u, a = self.system.add(j, phi_q[j])
            c = (self.phi[j] @ u.astype(self.phi.dtype, copy=False)).astype(np.float64)
            if self.samples is not None:
                scale = 2.0 * self.gamma * float(np.linalg.norm(u)) * reg / (1.0 + a)
                self.err += scale * np.abs(c) * self.norms[j]
            c *= c
            c *= reg / (1.0 + a)
            self.per_output[j] -= c
        np.maximum(self.per_output, 0.0, out=self.per_output)
        np.sum(self.per_output, axis=0, out=self.variance)


def select_batch(
    train: np.ndarray,
    pool: np.ndarray,
    batch_size: int,
    reg: float,
    *,
    pool_dtype: np.dtype | type = np.float32,
    return_scores: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Greedy maximum-posterior-variance batch, in pick order (indices into ``pool``).

    After each pick the point joins the conditioning set with noise ``reg``; a point is
    never picked twice.  ``pool_dtype`` is the storage of the (P, T) features used in the
    O(P·T) products (float32 halves the memory traffic; the T×T algebra and the variance
    bookkeeping are float64 either way, and near-ties are decided in float64 — see
    :class:`GreedyVariance` — so the picks are those of the all-float64 greedy).  With ``return_scores`` also returns the posterior
    variance of each pick at the time it was picked.
    """
    phi_pool, system, samples = prepare(train, pool, reg, pool_dtype, return_samples=True)
    b = check_batch_size(batch_size, phi_pool.shape[1])
    state = GreedyVariance(phi_pool, system, samples)
    taken = np.zeros(phi_pool.shape[1], dtype=bool)
    idx = np.empty(b, dtype=np.int64)
    scores = np.empty(b, dtype=np.float64)
    for i in range(b):
        q = state.argmax(taken)
        idx[i], scores[i] = q, state.variance[q]
        taken[q] = True
        if i + 1 < b:
            state.condition_on(q)
    return (idx, scores) if return_scores else idx
