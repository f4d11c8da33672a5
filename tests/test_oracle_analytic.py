"""Analytic oracles hit their known optima and values."""

from __future__ import annotations

import numpy as np
import pytest

from oracles import resolve


def test_rosenbrock_minimum_any_dimension():
    for d in (2, 5):
        o = resolve("rosenbrock", dim=d)
        assert o.input_dim == d
        assert o(np.ones(d))[0] == 0.0
        assert o(np.zeros(d))[0] == d - 1  # (1 - 0)^2 per term
    X = np.random.default_rng(0).uniform(-2, 2, (5, 4))
    o = resolve("rosenbrock", dim=4)
    np.testing.assert_allclose(o.evaluate_batch(X)[:, 0], [o(x)[0] for x in X])


def test_rosenbrock_rejects_bad_dim():
    with pytest.raises(ValueError, match="dim must be an integer >= 2"):
        resolve("rosenbrock", dim=1)


def test_branin_three_global_minima():
    o = resolve("branin")
    for x in ([-np.pi, 12.275], [np.pi, 2.275], [9.42478, 2.475]):
        assert o(x)[0] == pytest.approx(0.397887, abs=1e-5)


def test_ishigami_values():
    o = resolve("ishigami")
    assert o([0.0, 0.0, 0.0])[0] == 0.0
    # sin(pi/2) + 7 sin^2(pi/2) + 0.1 * 1 * sin(pi/2) = 8.1
    assert o([np.pi / 2, np.pi / 2, 1.0])[0] == pytest.approx(8.1)
    with pytest.raises(ValueError, match="parameter a"):
        resolve("ishigami", a="x")
