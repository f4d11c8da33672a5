"""Cheap analytic test functions: for tests, demos and strategy benchmarks.

* ``rosenbrock`` (any dimension d >= 2): f(x) = sum_{i<d} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2
  on [-2, 2]^d; minimum 0 at x = 1.
* ``branin``: f = (x2 - 5.1 x1^2 / (4 pi^2) + 5 x1 / pi - 6)^2 + 10 (1 - 1/(8 pi)) cos x1 + 10
  on [-5, 10] x [0, 15]; minimum 0.397887 at (-pi, 12.275), (pi, 2.275), (9.42478, 2.475).
* ``ishigami``: f = sin x1 + a sin^2 x2 + b x3^4 sin x1 on [-pi, pi]^3 (a = 7, b = 0.1), the
  standard sensitivity-analysis benchmark (strong non-linearity and an interaction).
"""

from __future__ import annotations

import numpy as np

from .base import Oracle


def _check_number(name: str, param: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
        raise ValueError(f"{name}: parameter {param} must be a finite number, got {v!r}")
    return float(v)


class Rosenbrock(Oracle):
    """Rosenbrock's banana function in any dimension."""

    name = "rosenbrock"
    version = "1.0"
    description = "Rosenbrock function on [-2,2]^dim (param dim >= 2)"

    def __init__(self, dim: int = 2) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 2:
            raise ValueError(f"rosenbrock: dim must be an integer >= 2, got dim={dim!r}")
        self.dim = int(dim)
        self._setup(np.tile([-2.0, 2.0], (self.dim, 1)), ("f",), params={"dim": self.dim})

    def _evaluate(self, x: np.ndarray) -> np.ndarray:
        return np.array([np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)])

    def evaluate_batch(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, float)
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise ValueError(f"rosenbrock: batch must have shape (n, {self.dim}), got {X.shape}")
        return np.sum(100.0 * (X[:, 1:] - X[:, :-1] ** 2) ** 2 + (1.0 - X[:, :-1]) ** 2, axis=1)[:, None]


class Branin(Oracle):
    """The Branin-Hoo function (2-D, three global minima)."""

    name = "branin"
    version = "1.0"
    description = "Branin-Hoo function on [-5,10]x[0,15]"

    def __init__(self) -> None:
        self._setup([[-5.0, 10.0], [0.0, 15.0]], ("f",))

    def _evaluate(self, x: np.ndarray) -> np.ndarray:
        x1, x2 = x
        b, c = 5.1 / (4 * np.pi**2), 5 / np.pi
        return np.array([(x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * np.pi)) * np.cos(x1) + 10])


class Ishigami(Oracle):
    """The Ishigami function (3-D), a sensitivity-analysis classic."""

    name = "ishigami"
    version = "1.0"
    description = "Ishigami function sin x1 + a sin^2 x2 + b x3^4 sin x1 on [-pi,pi]^3"

    def __init__(self, a: float = 7.0, b: float = 0.1) -> None:
        self.a, self.b = _check_number("ishigami", "a", a), _check_number("ishigami", "b", b)
        self._setup(np.tile([-np.pi, np.pi], (3, 1)), ("f",), params={"a": self.a, "b": self.b})

    def _evaluate(self, x: np.ndarray) -> np.ndarray:
        return np.array([np.sin(x[0]) + self.a * np.sin(x[1]) ** 2 + self.b * x[2] ** 4 * np.sin(x[0])])
