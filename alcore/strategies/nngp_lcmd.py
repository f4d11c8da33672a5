"""``nngp_lcmd`` — Largest Cluster Maximum Distance (Holzmüller et al., JMLR 2023) on NNGP.

LCMD was the best simple batch rule of the deep batch active learning benchmark for
regression (bmdal_reg).  It mixes coverage and uncertainty without a target set:

1. centres C = the training points (and, later, the points picked so far);
2. every pool point belongs to its nearest centre under the kernel distance
   d²(x, y) = k(x, x) + k(y, y) - 2 k(x, y);
3. the size of a cluster is the *sum* of its members' squared distances to the centre;
4. pick, inside the largest cluster, the member farthest from the centre; it becomes a
   centre; repeat.

Kernel: the NNGP posterior kernel given the training set (``kernel="posterior"``,
default), k(x, y) = reg · φ_xᵀ M⁻¹ φ_y, which is a plain inner product of the rank-T
features ψ = √reg · L⁻¹ φ with M = L Lᵀ — so d² = ‖ψ_x - ψ_y‖².  ``kernel="prior"`` uses
K = ΦΦᵀ itself (ψ = φ).  With several outputs the per-output ψ are concatenated, i.e. the
kernels are summed.  The kernel stays fixed during the batch (as in bmdal_reg).

Cost: the initial assignment to the n training centres is O(P·n·T) (chunked, O(chunk·n)
memory); each pick is one (P, T) mat-vec plus O(P) bookkeeping — O(P·T·B) for the batch.
With no training points, the first centre is the origin ψ = 0 (distance = k(x, x)).
Scores are the squared distance d² of each pick to its centre at pick time.
"""

from __future__ import annotations

import numpy as np

from alcore._util import check_batch_size
from alcore.nngp import DEFAULT_CHUNK, prepare
from alcore.strategies.base import (
    AcquisitionContext,
    Selection,
    Strategy,
    absolute_reg,
    check_choice,
    draw_samples,
    weighted,
)

__all__ = ["select_lcmd", "kernel_features", "STRATEGY"]


def kernel_features(
    train: np.ndarray,
    pool: np.ndarray,
    reg: float,
    kernel: str = "posterior",
    dtype: np.dtype | type = np.float32,
    chunk_size: int = DEFAULT_CHUNK,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (ψ_train (n, kT), ψ_pool (P, kT)) whose inner products are the kernel."""
    prepared = prepare(train, pool, reg, dtype)
    phi_pool, system, phi_train = prepared.phi_pool, prepared.system, prepared.phi_train
    k, n_pool, t = phi_pool.shape
    n = phi_train.shape[1]
    psi_pool = np.empty((n_pool, k * t), dtype=dtype)
    psi_train = np.empty((n, k * t), dtype=np.float64)
    for j in range(k):
        cols = slice(j * t, (j + 1) * t)
        if kernel == "prior":
            proj = np.eye(t)
        else:
            proj = np.sqrt(system.reg) * system.inverse_cholesky(j).T
        psi_train[:, cols] = phi_train[j] @ proj
        for start in range(0, n_pool, chunk_size):
            stop = min(start + chunk_size, n_pool)
            psi_pool[start:stop, cols] = np.asarray(phi_pool[j, start:stop], dtype=np.float64) @ proj
    return psi_train, psi_pool


def select_lcmd(
    train: np.ndarray,
    pool: np.ndarray,
    batch_size: int,
    reg: float,
    kernel: str = "posterior",
    *,
    dtype: np.dtype | type = np.float32,
    chunk_size: int = 8192,
    weights: np.ndarray | None = None,
) -> Selection:
    """LCMD batch from MC samples; ``reg`` absolute (only used by the posterior kernel).

    ``weights`` (e.g. P(success)) multiply every squared distance where LCMD compares them:
    the cluster sizes and the pick inside the largest cluster (scores are then weighted too).
    """
    check_choice("posterior", "prior")(kernel, "kernel")
    psi_train, psi_pool = kernel_features(train, pool, reg, kernel, dtype)
    n_pool = psi_pool.shape[0]
    b = check_batch_size(batch_size, n_pool)
    sq_pool = np.einsum("ij,ij->i", psi_pool, psi_pool, dtype=np.float64)

    # nearest training centre of every pool point (centre 0 is the origin if n == 0)
    if psi_train.shape[0] == 0:
        min_d = sq_pool.copy()
        closest = np.zeros(n_pool, dtype=np.int64)
        n_centres = 1
    else:
        sq_train = np.einsum("ij,ij->i", psi_train, psi_train)
        tr_t = psi_train.T.astype(dtype)
        min_d = np.empty(n_pool)
        closest = np.empty(n_pool, dtype=np.int64)
        for start in range(0, n_pool, chunk_size):
            stop = min(start + chunk_size, n_pool)
            d = (psi_pool[start:stop] @ tr_t).astype(np.float64)
            d *= -2.0
            d += sq_pool[start:stop, None]
            d += sq_train[None, :]
            c = np.argmin(d, axis=1)
            closest[start:stop] = c
            min_d[start:stop] = d[np.arange(stop - start), c]
        n_centres = psi_train.shape[0]
    np.maximum(min_d, 0.0, out=min_d)

    taken = np.zeros(n_pool, dtype=bool)
    idx = np.empty(b, dtype=np.int64)
    scores = np.empty(b)
    for i in range(b):
        score = weighted(min_d, weights)
        sizes = np.bincount(closest, weights=score, minlength=n_centres)
        cand = np.where(closest == int(np.argmax(sizes)), score, -np.inf)
        cand[taken] = -np.inf
        q = int(np.argmax(cand))
        if not np.isfinite(cand[q]):  # largest cluster exhausted (only zero distances left)
            cand = np.where(taken, -np.inf, score)
            q = int(np.argmax(cand))
        idx[i], scores[i] = q, score[q]
        taken[q] = True
        if i + 1 == b:
            break
        d = (psi_pool @ psi_pool[q]).astype(np.float64)
        d *= -2.0
        d += sq_pool
        d += sq_pool[q]
        np.maximum(d, 0.0, out=d)
        d[q] = 0.0
        closer = d < min_d
        closer[q] = True
        min_d[closer] = d[closer]
        closest[closer] = n_centres
        n_centres += 1
    return Selection(indices=idx, scores=scores)


def _run(ctx: AcquisitionContext, kernel: str) -> Selection:
    s = draw_samples(ctx, shared_masks=True)
    return select_lcmd(s.train, s.pool, int(ctx.batch_size), absolute_reg(ctx, s), kernel,
                       weights=ctx.success_prob)


STRATEGY = Strategy(
    name="nngp_lcmd",
    description="largest-cluster max-distance (LCMD) in the NNGP posterior-kernel feature space",
    fn=_run,
    defaults={"kernel": "posterior"},
    validators={"kernel": check_choice("posterior", "prior")},
)
