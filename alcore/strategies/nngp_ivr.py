"""``nngp_ivr`` — greedy integrated variance reduction on the NNGP kernel.

Variance-greedy picks spend labels at the edges of the box; what a surrogate needs is low
error where it will be *used*.  IVR picks the point whose label most reduces the summed
posterior variance over a target set R (the pool by default, standing in for the input
distribution; or ``ctx.X_target`` with ``target="target"`` — opt-in, so that passing the test
design as X_target never silently steers the selection; ``"auto"`` uses X_target when given).

Derivation in the feature space of :mod:`alcore.nngp.features` (M = Φ_Aᵀ Φ_A + reg·I over the
conditioning set A; posterior var_t = reg·φ_tᵀ M⁻¹ φ_t).  Adding candidate q with noise
reg changes M⁻¹ by Sherman–Morrison, u_q = M⁻¹ φ_q, a_q = φ_qᵀ u_q:

    var_t' = var_t - reg · (φ_tᵀ u_q)² / (1 + a_q)
    gain_q = Σ_{t∈R} (var_t - var_t') = reg · u_qᵀ G u_q / (1 + a_q),   G = Φ_Rᵀ Φ_R  (T×T)

So two numbers per candidate suffice: a_q and n_q = u_qᵀ G u_q.  After picking q* (u*, a*),
M'⁻¹ = M⁻¹ - u* u*ᵀ/(1 + a*) turns u_q into u_q - c_q u*/(1 + a*) with c = Φ_pool u*, so

    a_q ← a_q - c_q² / (1 + a*)
    n_q ← n_q - 2 c_q e_q / (1 + a*) + c_q² (u*ᵀ G u*) / (1 + a*)²,   e = Φ_pool (M⁻¹ G u*)

(M⁻¹ the matrix before the update): two (P, T) mat-vecs per pick and output —
O(P·T) per pick, O(P·T·B) per batch, no P×P and no P×T writes after the start
(the initial a and n cost O(P·T²), chunked).  Several outputs: one M and G per output,
gains summed.  float32 (P, T) features are a screen only (:mod:`alcore.nngp.screening`):
candidates that may be the best under per-point rounding-error bounds are re-evaluated in
float64 from the samples, so the picks are those of the float64 rule.  Scores are the gain (summed variance reduction, absolute units) at pick time.
"""

from __future__ import annotations

import numpy as np

from alcore._util import check_batch_size
from alcore.nngp import DEFAULT_CHUNK, Float32Screen, as_samples, features, prepare
from alcore.strategies.base import (
    AcquisitionContext,
    Selection,
    Strategy,
    absolute_reg,
    check_choice,
    draw_samples,
    weighted,
)

__all__ = ["select_ivr", "STRATEGY", "NEAR_TIE_RTOL"]

#: With float32 pool features, candidates whose gain may be the best given per-point rounding
#: bounds (γ = 2·T·ε per dot product, accumulated over the updates), and at least those within
#: this relative distance of the best, are re-evaluated in float64 (from the samples) before
#: the pick is decided; their bounds then reset to 0.
NEAR_TIE_RTOL = 1e-6


def select_ivr(
    train: np.ndarray,
    pool: np.ndarray,
    batch_size: int,
    reg: float,
    target: np.ndarray | None = None,
    *,
    pool_dtype: np.dtype | type = np.float32,
    chunk_size: int = DEFAULT_CHUNK,
    weights: np.ndarray | None = None,
) -> Selection:
    """Greedy IVR batch from MC samples (train (n,T[,k]), pool (P,T[,k]), target (m,T[,k]));
    with ``weights`` (e.g. P(success)) the gain × weight is maximised (and is the score)."""
    prepared = prepare(train, pool, reg, pool_dtype)
    phi_pool, system, pool_samples = prepared.phi_pool, prepared.system, prepared.pool_samples
    k, n_pool, t = phi_pool.shape
    b = check_batch_size(batch_size, n_pool)
    if target is None:
        tg = pool_samples
    else:
        tg = as_samples(target, "target")
        if tg.shape[1:] != (t, k):
            raise ValueError(f"target has (T, k)={tg.shape[1:]}, pool has (T, k)={(t, k)}")
        features(tg[:chunk_size], np.float64, "target")  # validation (finite) of a first chunk
    screen = Float32Screen(phi_pool, pool_samples)
    exact = screen.active

    # G = Φ_Rᵀ Φ_R in float64 from the samples (chunked), then a_q and n_q for every candidate
    gram = np.zeros((k, t, t))
    for start in range(0, tg.shape[0], chunk_size):
        blk = features(tg[start : start + chunk_size], np.float64, "target")
        gram += np.einsum("kit,kis->kts", blk, blk)
    a = np.empty((k, n_pool))
    num = np.empty((k, n_pool))
    for j in range(k):
        minv = system.minv[j]
        for start in range(0, n_pool, chunk_size):
            stop = min(start + chunk_size, n_pool)
            blk = np.asarray(phi_pool[j, start:stop], dtype=np.float64)
            u = blk @ minv
            a[j, start:stop] = np.einsum("ij,ij->i", u, blk)
            num[j, start:stop] = np.einsum("ij,ij->i", u @ gram[j], u)

    if exact:  # per-point bounds on the float32 errors of a and n (see module docstring)
        gamma = screen.gamma
        err_a = 2.0 * gamma * a
        err_n = 2.0 * gamma * num

    reg = system.reg
    taken = np.zeros(n_pool, dtype=bool)
    idx = np.empty(b, dtype=np.int64)
    scores = np.empty(b)
    for i in range(b):
        gain = weighted(reg * (num / (1.0 + a)).sum(axis=0), weights)
        gain[taken] = -np.inf
        q = int(np.argmax(gain))
        if exact:  # float32 screening: decide every candidate that may be the best in float64
            one = 1.0 + a
            gerr = weighted(reg * ((err_n + num * err_a / one) / one).sum(axis=0), weights)
            cand = screen.candidates(gain, gerr, NEAR_TIE_RTOL)
            if cand.size > 1:
                err_a[:, cand] = 0.0
                err_n[:, cand] = 0.0
                screen.n_exact += cand.size
                phi_c = screen.exact_features(cand)
                for j in range(k):
                    u = phi_c[j] @ system.minv[j]
                    a[j, cand] = np.einsum("ij,ij->i", u, phi_c[j])
                    num[j, cand] = np.einsum("ij,ij->i", u @ gram[j], u)
                gain_c = weighted(reg * (num[:, cand] / (1.0 + a[:, cand])).sum(axis=0),
                                  None if weights is None else weights[cand])
                q = int(cand[np.argmax(gain_c)])
                gain[q] = gain_c.max()
        idx[i], scores[i] = q, gain[q]
        taken[q] = True
        if i + 1 == b:
            break
        phi_q_all = screen.exact_features(np.array([q]))[:, 0]
        for j in range(k):
            u, a_q = system.solve(j, phi_q_all[j])
            gu = gram[j] @ u
            w = system.minv[j] @ gu  # M⁻¹ before the update
            s = float(u @ gu)
            # two mat-vecs (measured faster than one (P,T)x(T,2) gemm with OpenBLAS)
            c = (phi_pool[j] @ u.astype(phi_pool.dtype)).astype(np.float64)
            e = (phi_pool[j] @ w.astype(phi_pool.dtype)).astype(np.float64)
            inv = 1.0 / (1.0 + a_q)
            if exact:  # |δc| <= γ‖φ_p‖‖u‖, |δe| <= γ‖φ_p‖‖w‖ (dot products of length T)
                dc = screen.dot_error(j, u)
                de = screen.dot_error(j, w)
                ac, ae = np.abs(c), np.abs(e)
                err_a[j] += 2.0 * inv * ac * dc
                err_n[j] += 2.0 * inv * (ae * dc + ac * de) + 2.0 * s * inv * inv * ac * dc
            a[j] -= c * c * inv
            num[j] += c * (c * (s * inv * inv) - 2.0 * inv * e)
            system.update(j, u, a_q)
        np.maximum(a, 0.0, out=a)
        np.maximum(num, 0.0, out=num)
    return Selection(indices=idx, scores=scores)


def _run(ctx: AcquisitionContext, target: str) -> Selection:
    if target == "target" and ctx.X_target is None:
        raise ValueError("nngp_ivr: target='target' needs ctx.X_target (the points of interest)")
    use_target = target == "target" or (target == "auto" and ctx.X_target is not None)
    s = draw_samples(ctx, shared_masks=True, with_target=use_target)
    return select_ivr(s.train, s.pool, int(ctx.batch_size), absolute_reg(ctx, s), s.target,
                      weights=ctx.success_prob)


STRATEGY = Strategy(
    name="nngp_ivr",
    description="greedy integrated variance reduction over the pool (or X_target) on the NNGP kernel",
    fn=_run,
    defaults={"target": "pool"},
    validators={"target": check_choice("auto", "pool", "target")},
)
