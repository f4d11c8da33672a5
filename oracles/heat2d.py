"""``heat2d``: the thermal-block benchmark of reduced-basis methods.

    -div(kappa grad u) = 1  in (0, 1)^2,    u = 0 on the boundary,

with kappa piecewise constant on a b x b grid of blocks; input i is log(kappa_i) in [-1, 1]
(block i = row-major, x fastest). Outputs: the mean of u over the domain and the max of u.

Discretisation (why this one): cell-centred finite volumes / finite differences on an n x n
grid of cells of width h = 1/n. The flux through the face between two cells uses the harmonic
mean of their conductivities, 2 k_a k_b / (k_a + k_b): this is the exact series conductance of
two half-cells, so a jump in kappa on a face is handled without smearing and the scheme stays
second order when block edges fall on faces (n divisible by b). Dirichlet faces use the cell's
own conductivity over the half-cell distance h/2. The matrix is symmetric positive definite;
it is solved by a sparse direct solve (SuperLU), which costs a few ms at n = 64 and grows
roughly like n^3 in 2-D, so ``n`` tunes the cost from milliseconds to seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .base import Oracle


def assemble(kappa: np.ndarray) -> sp.csr_matrix:
    """Five-point matrix of -div(kappa grad .) for cell conductivities ``kappa`` (n, n) [iy, ix]."""
    n = kappa.shape[0]
    h2 = 1.0 / n**2
    # Harmonic means on interior faces: x-faces between (iy, ix) and (iy, ix+1), y-faces alike.
    kx = 2.0 * kappa[:, :-1] * kappa[:, 1:] / (kappa[:, :-1] + kappa[:, 1:]) / h2
    ky = 2.0 * kappa[:-1, :] * kappa[1:, :] / (kappa[:-1, :] + kappa[1:, :]) / h2
    diag = np.zeros((n, n))
    diag[:, :-1] += kx
    diag[:, 1:] += kx
    diag[:-1, :] += ky
    diag[1:, :] += ky
    # Dirichlet faces: distance h/2 to the wall -> conductance 2 kappa / h^2.
    wall = 2.0 * kappa / h2
    diag[:, 0] += wall[:, 0]
    diag[:, -1] += wall[:, -1]
    diag[0, :] += wall[0, :]
    diag[-1, :] += wall[-1, :]
    idx = np.arange(n * n).reshape(n, n)
    rows = [idx.ravel(), idx[:, :-1].ravel(), idx[:, 1:].ravel(), idx[:-1, :].ravel(), idx[1:, :].ravel()]
    cols = [idx.ravel(), idx[:, 1:].ravel(), idx[:, :-1].ravel(), idx[1:, :].ravel(), idx[:-1, :].ravel()]
    vals = [diag.ravel(), -kx.ravel(), -kx.ravel(), -ky.ravel(), -ky.ravel()]
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n * n, n * n)
    )


def solve(kappa: np.ndarray, source: np.ndarray | float = 1.0) -> np.ndarray:
    """Solve -div(kappa grad u) = source with u = 0 on the walls; returns u at cell centres (n, n).

    ``source`` (cell values, or a constant) is the hook used by the manufactured-solution test.
    """
    n = kappa.shape[0]
    f = np.broadcast_to(np.asarray(source, dtype=float), (n, n)).ravel()
    A = assemble(kappa).tocsc()
    u = spla.spsolve(A, f, permc_spec="MMD_AT_PLUS_A")
    return np.asarray(u).reshape(n, n)


def block_kappa(log_kappa: np.ndarray, n: int, b: int) -> np.ndarray:
    """Cell conductivities (n, n) [iy, ix] from b*b block values log(kappa), x fastest."""
    k = np.exp(np.asarray(log_kappa, dtype=float)).reshape(b, b)  # [by, bx]
    centres = (np.arange(n) + 0.5) / n
    blk = np.minimum((centres * b).astype(int), b - 1)
    return k[np.ix_(blk, blk)]


class Heat2D(Oracle):
    """Thermal block: steady diffusion with b x b piecewise-constant conductivities (FD, n x n)."""

    name = "heat2d"
    version = "1.0"
    description = "thermal block -div(kappa grad u)=1 on (0,1)^2, b*b log-conductivities -> mean(u), max(u)"

    def __init__(self, n: int = 64, b: int = 3) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 8:
            raise ValueError(f"heat2d: grid size n must be an integer >= 8, got n={n!r}")
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise ValueError(f"heat2d: number of blocks per side b must be an integer >= 1, got b={b!r}")
        if b > n:
            raise ValueError(f"heat2d: b={b} blocks per side need at least b cells per side, got n={n}")
        self.n, self.b = int(n), int(b)
        self._setup(
            bounds=np.tile([-1.0, 1.0], (self.b * self.b, 1)),
            output_names=("mean_u", "max_u"),
            input_names=[f"log_kappa_{i}" for i in range(self.b * self.b)],
            params={"n": self.n, "b": self.b},
        )

    def solve_field(self, x: Any) -> np.ndarray:
        """The temperature field u (n, n) at cell centres for input ``x``."""
        return solve(block_kappa(self._check_x(x), self.n, self.b))

    def _evaluate(self, x: np.ndarray) -> np.ndarray:
        u = solve(block_kappa(x, self.n, self.b))
        return np.array([u.mean(), u.max()])
