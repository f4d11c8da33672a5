"""The low-rank feature core shared by every NNGP acquisition strategy (``alcore.nngp.features``).

Why a feature map
-----------------
The NNGP kernel of alflow is the empirical covariance of T Monte-Carlo dropout samples
(Tsymbalov et al., arXiv 1902.10350).  For samples ``S`` of shape (N, T) we centre each
point over its own T samples and scale by ``1/sqrt(T)``::

    Φ = (S - mean_t S) / sqrt(T)          so that   K = Φ Φᵀ   (covariance divided by T)

K has rank at most T, so every Gaussian-process quantity can be computed with T×T algebra
instead of N×N.  Conditioning on a set A with noise ``reg`` on its block gives, by the
push-through identity Φ_Aᵀ(Φ_AΦ_Aᵀ + reg·I)⁻¹Φ_A = I - reg·M⁻¹::

    M = Φ_Aᵀ Φ_A + reg·I                                   (T×T, positive definite)
    k_post(p, q) = K_pq - K_pA (K_AA + reg·I)⁻¹ K_Aq = reg · φ_pᵀ M⁻¹ φ_q

Adding one point q to A is the rank-1 change M ← M + φ_q φ_qᵀ, i.e. Sherman–Morrison on
M⁻¹ (O(T²)).  The pool-wide effect of that change, ``Φ_pool M⁻¹ φ_q``, is one matrix-vector
product (O(P·T)).  Nothing of size P×P is ever formed.

Several outputs (samples of shape (N, T, k)) are handled as k independent kernels, one M per
output; strategies sum the per-output variances.  Outputs should be standardised by the
caller so that the sum is meaningful.

Precision: the T×T algebra is always float64.  The (P, T) feature matrix may be stored in
float32 (half the memory traffic in the O(P·T) products); the per-point variance
bookkeeping stays float64.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from alcore._util import check_float

__all__ = [
    "as_samples",
    "features",
    "check_reg",
    "FeatureSystem",
    "row_quadratic",
    "row_features",
    "DEFAULT_CHUNK",
]

#: Rows processed at once when a (chunk, T) temporary is needed; bounds the extra memory.
DEFAULT_CHUNK = 65536


def as_samples(samples: np.ndarray, name: str = "samples") -> np.ndarray:
    """Return MC samples as a (N, T, k) array, accepting (N, T) for a single output.

    Raises one ValueError naming ``name`` for a wrong rank, fewer than 2 samples, or a
    non-numeric dtype (finiteness is checked chunk-wise in :func:`features`).
    """
    arr = np.asarray(samples)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    elif arr.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n, T) or (n, T, k) (points, MC samples, outputs); "
            f"got shape {arr.shape}"
        )
    if arr.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 MC samples per point (T >= 2); got T={arr.shape[1]}")
    if arr.shape[2] < 1:
        raise ValueError(f"{name} has no outputs (k = 0)")
    return arr


def check_reg(reg: float, name: str = "reg") -> float:
    """Validate a noise variance: a finite float > 0 (reg = 0 makes M singular for n < T)."""
    return check_float(reg, name)


def features(
    samples: np.ndarray,
    dtype: np.dtype | type = np.float64,
    name: str = "samples",
    chunk_size: int = DEFAULT_CHUNK,
) -> np.ndarray:
    """Centred, scaled features Φ of shape (k, N, T) from samples (N, T) or (N, T, k).

    Computed in float64 chunk by chunk and written into a ``dtype`` array, so a pool of
    10^6 points never needs a second full-size float64 temporary.
    """
    s = as_samples(samples, name)
    n, t, k = s.shape
    out = np.empty((k, n, t), dtype=dtype)
    scale = 1.0 / np.sqrt(t)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        blk = np.asarray(s[start:stop], dtype=np.float64)
        if not np.isfinite(blk).all():
            bad = start + int(np.flatnonzero(~np.isfinite(blk).reshape(stop - start, -1).all(axis=1))[0])
            raise ValueError(f"{name} contains a non-finite value (first at point {bad})")
        blk = (blk - blk.mean(axis=1, keepdims=True)) * scale
        out[:, start:stop, :] = np.moveaxis(blk, 2, 0)
    return out


def row_features(samples: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """float64 features (k, m, T) of rows ``idx`` of already validated (N, T, k) samples.

    Used to decide near-ties exactly when the bulk features are stored in float32.
    """
    blk = np.asarray(samples[idx], dtype=np.float64)
    blk = (blk - blk.mean(axis=1, keepdims=True)) * (1.0 / np.sqrt(blk.shape[1]))
    return np.moveaxis(blk, 2, 0)


def row_quadratic(phi: np.ndarray, mat: np.ndarray, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
    """Return ``diag(Φ · mat · Φᵀ)`` (one value per row of ``phi``) without an N×N product.

    ``phi`` is (N, T) (any float dtype), ``mat`` is (T, T) float64; result is float64 (N,).
    """
    n = phi.shape[0]
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        blk = np.asarray(phi[start:stop], dtype=np.float64)
        out[start:stop] = np.einsum("ij,ij->i", blk @ mat, blk)
    return out


class FeatureSystem:
    """The T×T systems M_j = Φ_{A,j}ᵀ Φ_{A,j} + reg·I, one per output j, kept as M_j⁻¹.

    Built once from the training features by a Cholesky factorisation (float64); grows by
    :meth:`add` (Sherman–Morrison, O(T²) per output) as points join the conditioning set.
    """

    def __init__(self, train_phi: np.ndarray, reg: float, n_features: int | None = None):
        """``train_phi`` is (k, n, T) (n may be 0); ``reg`` the absolute noise variance."""
        self.reg = check_reg(reg)
        k, _, t = train_phi.shape
        if n_features is not None and t != n_features:
            raise ValueError(f"train features have T={t}, expected T={n_features}")
        self.k, self.t = k, t
        eye = np.eye(t)
        self.minv = np.empty((k, t, t), dtype=np.float64)
        self.chol = np.empty((k, t, t), dtype=np.float64)
        for j in range(k):
            a = np.asarray(train_phi[j], dtype=np.float64)
            m = a.T @ a
            m[np.diag_indices(t)] += self.reg
            c = linalg.cholesky(m, lower=True)
            self.chol[j] = c
            self.minv[j] = linalg.cho_solve((c, True), eye)
            self.minv[j] = 0.5 * (self.minv[j] + self.minv[j].T)
        self.n_added = 0

    def inverse_cholesky(self, j: int) -> np.ndarray:
        """L⁻¹ for the *initial* M_j = L Lᵀ (so reg·‖L⁻¹φ‖² is the posterior variance)."""
        return linalg.solve_triangular(self.chol[j], np.eye(self.t), lower=True)

    def quadratic(self, phi: np.ndarray, chunk_size: int = DEFAULT_CHUNK) -> np.ndarray:
        """φᵀ M_j⁻¹ φ per output and row of ``phi`` (k, N, T) -> (k, N) float64.

        Before any :meth:`add` it goes through the Cholesky factor (a sum of squares, so
        never negative); afterwards through the updated M⁻¹.
        """
        k, n, _ = phi.shape
        out = np.empty((k, n), dtype=np.float64)
        for j in range(k):
            if self.n_added == 0:
                linv_t = self.inverse_cholesky(j).T
                for start in range(0, n, chunk_size):
                    stop = min(start + chunk_size, n)
                    w = np.asarray(phi[j, start:stop], dtype=np.float64) @ linv_t
                    out[j, start:stop] = np.einsum("ij,ij->i", w, w)
            else:
                out[j] = row_quadratic(phi[j], self.minv[j], chunk_size)
        return out

    def solve(self, j: int, phi_q: np.ndarray) -> tuple[np.ndarray, float]:
        """``(u, a)`` with u = M_j⁻¹ φ_q and a = φ_qᵀ u for features ``phi_q`` (T,); no change."""
        phi_q = np.asarray(phi_q, dtype=np.float64)
        u = self.minv[j] @ phi_q
        return u, float(phi_q @ u)

    def update(self, j: int, u: np.ndarray, a: float) -> None:
        """The Sherman–Morrison step M_j'⁻¹ = M_j⁻¹ - u uᵀ / (1 + a), from :meth:`solve`'s
        ``(u, a)`` (for callers that need M_j⁻¹ itself between the two, as IVR does)."""
        self.minv[j] -= np.outer(u, u) / (1.0 + a)
        self.n_added += 1

    def add(self, j: int, phi_q: np.ndarray) -> tuple[np.ndarray, float]:
        """Add one point with features ``phi_q`` (T,) to output j's conditioning set.

        Returns ``(u, a)`` with u = M⁻¹φ_q and a = φ_qᵀ M⁻¹ φ_q taken *before* the update,
        which is what the pool-wide rank-1 corrections need:
        M'⁻¹ = M⁻¹ - u uᵀ / (1 + a).
        """
        u, a = self.solve(j, phi_q)
        self.update(j, u, a)
        return u, a
