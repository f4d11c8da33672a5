"""burgers1d: convergence against Cole-Hopf, monotone fronts, energy decay, validation."""

from __future__ import annotations

import time

import numpy as np
import pytest

from oracles import resolve
from oracles.burgers1d import Burgers1D, cell_average_sine_series, solve


def cole_hopf(x, t, nu, a):
    e = np.exp(-np.pi**2 * nu * t)
    return 2 * np.pi * nu * e * np.sin(np.pi * x) / (a + e * np.cos(np.pi * x))


def cell_averages(fn, N, sub=16):
    q = (np.arange(N * sub) + 0.5) / (N * sub)
    return fn(q).reshape(N, sub).mean(axis=1)


def cole_hopf_errors(Ns, nu=0.05, a=1.2, t=0.5):
    errs = []
    for N in Ns:
        u0 = cell_averages(lambda x: cole_hopf(x, 0.0, nu, a), N)
        exact = cell_averages(lambda x: cole_hopf(x, t, nu, a), N)
        errs.append(float(np.max(np.abs(solve(u0, nu, t) - exact))))
    return np.array(errs)


def test_cole_hopf_observed_order():
    Ns = np.array([32, 64, 128])
    errs = cole_hopf_errors(Ns)
    p = np.log2(errs[:-1] / errs[1:])
    print("burgers1d Cole-Hopf max errors", errs, "orders", p)
    assert np.all(p >= 1.5), (errs, p)
    assert errs[-1] < 5e-5


@pytest.mark.slow
def test_cole_hopf_observed_order_fine():
    Ns = np.array([128, 256, 512, 1024])
    errs = cole_hopf_errors(Ns)
    p = np.log2(errs[:-1] / errs[1:])
    assert np.all(p >= 1.5), (errs, p)


def test_cell_averages_of_initial_condition_are_exact():
    c = np.array([0.3, -0.7, 0.2])
    fine = cell_averages(lambda x: sum(ck * np.sin((k + 1) * np.pi * x) for k, ck in enumerate(c)), 32, 400)
    np.testing.assert_allclose(cell_average_sine_series(c, 32), fine, atol=1e-6)


def test_small_viscosity_front_is_monotone_and_energy_decays():
    """nu = 0.003 forms a front: the TVD scheme must not overshoot; int u^2 must not grow."""
    o = Burgers1D(N=256)
    c = np.array([0.3, 1.0, 0.0])
    u0 = cell_average_sine_series(c, o.N)
    u = o.solve_field(np.r_[c, np.log10(0.003)])
    assert np.max(np.abs(u)) <= np.max(np.abs(u0)) + 1e-12  # maximum principle
    jumps = np.abs(np.diff(u))
    assert jumps.max() > 0.2  # there is a sharp front ...
    assert np.sum(jumps) <= np.sum(np.abs(np.diff(np.r_[0, u0, 0]))) + 1e-9  # ... and no new wiggles (TV)
    y = o(np.r_[c, np.log10(0.003)])
    assert 0 < y[3] < np.mean(u0**2)


def test_default_grid_resolves_fronts_at_small_nu():
    """At nu = 0.003 the default grid agrees with a 4x finer one to 1e-2 in every output."""
    x = np.array([0.3, 1.0, 0.0, np.log10(0.003)])
    coarse, fine = Burgers1D()(x), Burgers1D(N=4 * Burgers1D().N)(x)
    np.testing.assert_allclose(coarse, fine, atol=1e-2)


def test_zero_initial_condition_stays_zero_and_reflection_symmetry():
    o = Burgers1D(N=64)
    np.testing.assert_array_equal(o([0, 0, 0, -1.5]), np.zeros(4))
    # v(x, t) = -u(1 - x, t) solves Burgers too; its initial condition has c_k -> (-1)^k c_k.
    x = np.array([0.5, -0.2, 0.7, -2.0])
    xm = np.array([-0.5, -0.2, -0.7, -2.0])
    np.testing.assert_allclose(o.solve_field(xm), -o.solve_field(x)[::-1], atol=1e-12)
    y, ym = o(x), o(xm)
    np.testing.assert_allclose(ym, [-y[2], -y[1], -y[0], y[3]], atol=1e-12)


@pytest.mark.parametrize("params, msg", [({"N": 8}, "N must be an integer >= 16"), ({"t_end": 0}, "t_end")])
def test_parameters_are_validated(params, msg):
    with pytest.raises(ValueError, match=msg):
        resolve("burgers1d", **params)


def test_default_cost_well_under_half_a_second():
    o = Burgers1D()
    t = time.perf_counter()
    o([1.0, -0.5, 0.8, np.log10(0.003)])
    assert time.perf_counter() - t < 0.5
