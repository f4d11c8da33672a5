"""NNGP posterior variance from MC-dropout samples, and greedy batch selection on it.

Public API (docs/architecture.md)::

    posterior_variance(train (n, T[, k]), pool (P, T[, k]), reg) -> (P,)
    select_batch(train, pool, batch_size, reg) -> int array (batch_size,), in pick order
    greedy_batch(train, pool, batch_size, reg) -> (indices, scores): the same picks and the
        posterior variance of each pick when it was picked

The kernel is the empirical covariance of the T samples (centred per point, divided by T),
``reg`` the absolute noise variance on the training block.  With Φ the features of
:mod:`alcore.nngp.features` and M = Φ_Aᵀ Φ_A + reg·I,

    var_p = K_pp - K_pA (K_AA + reg·I)⁻¹ K_Ap = reg · φ_pᵀ M⁻¹ φ_p ,

computed in O((n + P)·T²).  Greedy selection picks argmax var_p, adds that point to the
conditioning set with the same reg, and corrects every pool variance by the rank-1 term

    var_p ← var_p - reg · (φ_pᵀ u)² / (1 + a),     u = M⁻¹ φ_q,  a = φ_qᵀ u,

one matrix-vector product Φ_pool·u per pick: O(P·T·B) time, O(P·T) memory, never P×P.
For k outputs every output has its own M and the variances are summed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alcore._util import check_batch_size
from alcore.nngp.features import FeatureSystem, as_samples, check_reg, features
from alcore.nngp.screening import Float32Screen

__all__ = ["posterior_variance", "select_batch", "greedy_batch", "GreedyVariance", "Prepared", "prepare"]


@dataclass
class Prepared:
    """Validated samples of one selection: what every NNGP strategy starts from."""

    phi_pool: np.ndarray      # (k, P, T) pool features, float32 or float64
    system: FeatureSystem     # the T×T systems conditioned on the training points
    pool_samples: np.ndarray  # (P, T, k) pool samples (a view): exact float64 rows on demand
    phi_train: np.ndarray     # (k, n, T) float64 training features (n may be 0)


def prepare(
    train: np.ndarray,
    pool: np.ndarray,
    reg: float,
    pool_dtype: np.dtype | type = np.float64,
) -> Prepared:
    """Validate train/pool samples (same T and k, a non-empty pool) and build their features.

    The pool features are stored as ``pool_dtype``; exact float64 features of single pool rows
    can be rebuilt from ``pool_samples`` (see :mod:`alcore.nngp.screening`).
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
    phi_train = features(tr, np.float64, "train")
    system = FeatureSystem(phi_train, reg)
    return Prepared(features(po, pool_dtype, "pool"), system, po, phi_train)


def posterior_variance(train: np.ndarray, pool: np.ndarray, reg: float) -> np.ndarray:
    """Exact NNGP posterior variance of each pool point given the training points.

    ``train`` (n, T) or (n, T, k), ``pool`` (P, T) or (P, T, k) MC samples (same T, k; n may
    be 0); ``reg`` > 0 the absolute noise variance on the training block.  Returns (P,)
    float64, summed over outputs.  Equal to the dense ``K_pp - K_pA (K_AA + reg I)⁻¹ K_Ap``.
    """
    p = prepare(train, pool, reg)
    return p.system.reg * p.system.quadratic(p.phi_pool).sum(axis=0)


class GreedyVariance:
    """Pool posterior variances that stay exact as points join the conditioning set.

    The engine behind greedy ``select_batch`` and the greedy mode of ``nngp_sample``:
    :meth:`condition_on` adds pool point q (O(T²) + one O(P·T) mat-vec per output).

    float32 screening, float64 decisions (:class:`~alcore.nngp.screening.Float32Screen`):
    with the (P, T) features stored in float32 each tracked variance carries a per-point
    error bound e_p (O(P) per pick).  The initial quadratic form errs by at most ~4ε·‖φ_p‖²,
    every update reg·c_p²/(1+a), c_p = φ_pᵀu, by at most 2·|c_p|·γ‖φ_p‖‖u‖·reg/(1+a).
    :meth:`argmax` re-evaluates exactly (float64 features rebuilt from the samples, the
    float64 M⁻¹) every untaken point that may be the best, resets their bounds, and picks
    the exact maximum — the pick of the all-float64 greedy.  The pick's float64 features
    are what joins M.
    """

    def __init__(self, prepared: Prepared):
        self.phi = prepared.phi_pool
        self.system = prepared.system
        self.screen = Float32Screen(self.phi, prepared.pool_samples)
        self.per_output = self.system.reg * self.system.quadratic(self.phi)  # (k, P) float64
        self.variance = self.per_output.sum(axis=0)
        if self.screen.active:
            self.err = 4.0 * self.screen.eps * self.screen.sq_norms.sum(axis=0)

    def argmax(self, taken: np.ndarray) -> int:
        """The untaken point of largest posterior variance (decided in float64)."""
        v = np.where(taken, -np.inf, self.variance)
        if not self.screen.active:
            return int(np.argmax(v))
        cand = self.screen.candidates(v, self.err)
        if cand.size > 1:
            phi = self.screen.exact_features(cand)
            exact = self.system.reg * np.stack(
                [np.einsum("ij,ij->i", phi[j] @ self.system.minv[j], phi[j]) for j in range(self.system.k)]
            )
            self.per_output[:, cand] = exact
            self.variance[cand] = exact.sum(axis=0)
            self.err[cand] = 0.0
            self.screen.n_exact += cand.size
            return int(cand[np.argmax(self.variance[cand])])
        return int(cand[0])

    def condition_on(self, q: int) -> None:
        """Condition every pool variance on pool point q (noise reg)."""
        reg = self.system.reg
        phi_q = self.screen.exact_features(np.array([q]))[:, 0]
        for j in range(self.system.k):
            u, a = self.system.add(j, phi_q[j])
            c = (self.phi[j] @ u.astype(self.phi.dtype, copy=False)).astype(np.float64)
            if self.screen.active:
                self.err += (2.0 * reg / (1.0 + a)) * np.abs(c) * self.screen.dot_error(j, u)
            c *= c
            c *= reg / (1.0 + a)
            self.per_output[j] -= c
        np.maximum(self.per_output, 0.0, out=self.per_output)
        np.sum(self.per_output, axis=0, out=self.variance)


def greedy_batch(
    train: np.ndarray,
    pool: np.ndarray,
    batch_size: int,
    reg: float,
    *,
    pool_dtype: np.dtype | type = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy maximum-posterior-variance batch: (indices into ``pool`` in pick order, scores).

    After each pick the point joins the conditioning set with noise ``reg``; a point is
    never picked twice.  ``pool_dtype`` is the storage of the (P, T) features used in the
    O(P·T) products (float32 halves the memory traffic; the T×T algebra and the variance
    bookkeeping are float64 either way, and near-ties are decided in float64 — see
    :class:`GreedyVariance` — so the picks are those of the all-float64 greedy).  The score
    of a pick is its posterior variance at the time it was picked.
    """
    prepared = prepare(train, pool, reg, pool_dtype)
    n_pool = prepared.phi_pool.shape[1]
    b = check_batch_size(batch_size, n_pool)
    state = GreedyVariance(prepared)
    taken = np.zeros(n_pool, dtype=bool)
    idx = np.empty(b, dtype=np.int64)
    scores = np.empty(b, dtype=np.float64)
    for i in range(b):
        q = state.argmax(taken)
        idx[i], scores[i] = q, state.variance[q]
        taken[q] = True
        if i + 1 < b:
            state.condition_on(q)
    return idx, scores


def select_batch(
    train: np.ndarray,
    pool: np.ndarray,
    batch_size: int,
    reg: float,
    *,
    pool_dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """The picks of :func:`greedy_batch` alone (int array (batch_size,), in pick order)."""
    return greedy_batch(train, pool, batch_size, reg, pool_dtype=pool_dtype)[0]
