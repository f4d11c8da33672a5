"""The Gaussian-process baseline of the study (issue 15), with scikit-learn (``pip install -e '.[bench]'``).

What a practitioner would do with a few hundred to a few thousand smooth simulator outputs:
one ``GaussianProcessRegressor`` per output, kernel ConstantKernel x Matern(nu = 2.5, one
length scale per input) + WhiteKernel, ``normalize_y``, inputs scaled to [0, 1] by the pool's
box.  Hyperparameters are fitted by marginal likelihood on at most ``HP_SUBSET`` labels (a
seeded subset: the O(n^3) optimisation would otherwise dominate a 3,000-label study), started
from the previous iteration's optimum (3 restarts at the first iteration), then the GP is
conditioned on all labels.

Two arms, on the same pools, test sets, initial designs and budgets as alflow's:

* ``gp_random`` — random labels (the same draws as alflow's ``random`` arm for the same seed);
* ``gp_variance`` — greedy posterior-variance batches: pick the pool point of largest latent
  variance (summed over outputs, in normalised units), condition on it (the variance does not
  need its label), repeat.  Exact, via rank-1 updates of the pool's posterior covariance columns.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["GPSurrogate", "HP_SUBSET", "gp_available"]

HP_SUBSET = 1000


def gp_available() -> bool:
    try:
        import sklearn  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _kernel(d: int):
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel  # noqa: PLC0415

    return (ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.full(d, 0.5), (1e-3, 1e3), nu=2.5)
            + WhiteKernel(1e-4, (1e-10, 1e1)))


@dataclass
class _Output:
    gp: object            # fitted GaussianProcessRegressor (normalised y units inside)
    noise: float          # WhiteKernel noise level (normalised units)


class GPSurrogate:
    """One GP per output over inputs scaled to [0, 1] by ``bounds`` (lo (d,), hi (d,))."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray):
        self.lo = np.asarray(lo, float)
        self.span = np.where(np.asarray(hi, float) > self.lo, np.asarray(hi, float) - self.lo, 1.0)
        self.outputs: list[_Output] = []
        self._theta: list[np.ndarray] | None = None

    def _u(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, float) - self.lo) / self.span

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> None:
        """Hyperparameters on <= HP_SUBSET labels (warm from the last fit), then condition on all."""
        from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: PLC0415

        U = self._u(X)
        y = np.asarray(y, float).reshape(len(U), -1)
        n, d = U.shape
        sub = (np.random.default_rng([seed, 5]).choice(n, HP_SUBSET, replace=False) if n > HP_SUBSET
               else np.arange(n))
        outs, thetas = [], []
        for j in range(y.shape[1]):
            kern = _kernel(d)
            if self._theta is not None:
                kern = kern.clone_with_theta(self._theta[j])
            hp = GaussianProcessRegressor(kern, normalize_y=True, n_restarts_optimizer=0 if self._theta is not None else 3,
                                          random_state=seed)
            with warnings.catch_warnings():     # length scales at a bound: expected, not news
                warnings.simplefilter("ignore")
                hp.fit(U[sub], y[sub, j])
            if sub.size < n:
                gp = GaussianProcessRegressor(hp.kernel_, normalize_y=True, optimizer=None).fit(U, y[:, j])
            else:
                gp = hp
            thetas.append(hp.kernel_.theta.copy())
            outs.append(_Output(gp, float(gp.kernel_.k2.noise_level)))
        self.outputs, self._theta = outs, thetas

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean (n, k), predictive std of y (n, k): latent variance + noise)."""
        U = self._u(X)
        means, stds = [], []
        for o in self.outputs:
            m, s = o.gp.predict(U, return_std=True)       # std includes the WhiteKernel noise
            means.append(m)
            stds.append(np.maximum(s, 1e-300))
        return np.column_stack(means), np.column_stack(stds)

    def greedy_variance(self, X_train: np.ndarray, X_pool: np.ndarray, batch: int) -> np.ndarray:
        """Positions into X_pool of a greedy max-variance batch (sum over outputs, normalised units)."""
        from scipy.linalg import cholesky, solve_triangular  # noqa: PLC0415

        Ua, Up = self._u(X_train), self._u(X_pool)
        P = Up.shape[0]
        total = np.zeros(P)
        states = []
        for o in self.outputs:
            kf = o.gp.kernel_.k1                              # latent kernel (no white noise)
            Kaa = kf(Ua) + (o.noise + 1e-10) * np.eye(len(Ua))
            L = cholesky(Kaa, lower=True)
            V = solve_triangular(L, kf(Ua, Up), lower=True)   # (n, P)
            var = kf.diag(Up) - np.einsum("ij,ij->j", V, V)
            states.append((kf, V, var, []))
            total += np.maximum(var, 0.0)
        taken = np.zeros(P, dtype=bool)
        picks: list[int] = []
        for _ in range(batch):
            q = int(np.argmax(np.where(taken, -np.inf, total)))
            picks.append(q)
            taken[q] = True
            total = np.zeros(P)
            new_states = []
            for (kf, V, var, cs), o in zip(states, self.outputs):
                col = kf(Up, Up[q:q + 1])[:, 0] - V.T @ V[:, q]
                for c in cs:
                    col -= c * c[q]
                c_new = col / np.sqrt(max(col[q], 0.0) + o.noise + 1e-10)
                var = var - c_new ** 2
                cs.append(c_new)
                new_states.append((kf, V, var, cs))
                total += np.maximum(var, 0.0)
            states = new_states
        return np.asarray(picks, dtype=np.int64)
