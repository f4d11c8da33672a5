"""The Student-t predictive (alcore.predictive) and its calibration: heavy-tailed errors get an
interval that covers 90% without an NLL penalty; Gaussian errors keep the Gaussian."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from alcore.metrics import regression_metrics
from alcore.model import DropoutMLP
from alcore.model.calibration import calibrated_std, fit_std_calibration
from alcore.predictive import check_dof, interval_z, log_density, sigma_per_std


def test_interval_z_covers_its_level_in_units_of_the_std():
    rng = np.random.default_rng(0)
    for dof in (3.0, 6.0, math.inf):
        draws = rng.standard_normal(400_000) if math.isinf(dof) else rng.standard_t(dof, 400_000)
        unit = draws * sigma_per_std(dof)                          # standard deviation 1
        assert np.std(unit) == pytest.approx(1.0, abs=0.03 if dof == 3.0 else 0.01)
        for level in (0.5, 0.9):
            assert np.mean(np.abs(unit) <= interval_z(dof, level)) == pytest.approx(level, abs=0.003)
    assert interval_z(math.inf) == pytest.approx(1.6448536, abs=1e-6)
    assert interval_z(3.0) < interval_z(10.0) < interval_z(math.inf)    # heavy tails: narrower in std units


def test_log_density_is_a_density_with_the_given_std():
    for dof in (3.0, 20.0, math.inf):
        total, _ = integrate.quad(lambda r: math.exp(float(log_density(r, 2.0, dof))), -np.inf, np.inf)
        second, _ = integrate.quad(lambda r: r * r * math.exp(float(log_density(r, 2.0, dof))), -np.inf, np.inf)
        assert total == pytest.approx(1.0, abs=1e-6)
        assert second == pytest.approx(4.0, rel=1e-3)                 # variance = std^2
    sigma = 2.0 * sigma_per_std(4.0)
    np.testing.assert_allclose(log_density(np.array([0.3, -5.0]), 2.0, 4.0),
                               stats.t.logpdf(np.array([0.3, -5.0]), 4.0, scale=sigma))


@pytest.mark.parametrize("bad", [2.0, 1.0, 0.0, -3.0, float("nan")])
def test_dof_must_give_a_finite_std(bad):
    with pytest.raises(ValueError, match="dof must be > 2"):
        check_dof(bad)


def _residuals(rng, n, dof, scale=1.5):
    s = rng.uniform(0.2, 1.0, (n, 2))
    unit = rng.standard_normal(s.shape) if math.isinf(dof) else rng.standard_t(dof, s.shape) * sigma_per_std(dof)
    return s, unit * scale * s


def test_heavy_tailed_errors_get_student_t_tails_that_meet_both_checks():
    """Errors with t_3 tails: the Gaussian-only fit over-covers on new draws; the t fit covers
    90% and its NLL beats the Gaussian's."""
    rng = np.random.default_rng(3)
    s, r = _residuals(rng, 4000, 3.0)
    s_new, r_new = _residuals(rng, 20000, 3.0)
    t_fit = fit_std_calibration(r, s)
    g_fit = fit_std_calibration(r, s, dof_grid=(math.inf,))
    json.dumps(t_fit)
    assert t_fit["dof"] is not None and t_fit["dof"] <= 6 and g_fit["dof"] is None
    out = {}
    for name, fit in (("t", t_fit), ("gauss", g_fit)):
        std = calibrated_std(s_new, np.array(fit["std_scale"]), np.array(fit["std_floor"]))
        out[name] = regression_metrics(np.zeros_like(r_new), r_new, std, dof=fit["dof"])
    assert out["t"]["coverage90"] == pytest.approx(0.9, abs=0.015)
    assert out["gauss"]["coverage90"] > 0.92
    assert out["t"]["nll"] < out["gauss"]["nll"] - 0.02
    assert all(abs(c - 0.9) < 0.02 for c in t_fit["coverage90"])       # held-out, as fitted


def test_gaussian_errors_keep_the_gaussian_fit():
    rng = np.random.default_rng(4)
    s, r = _residuals(rng, 20000, math.inf)
    fit = fit_std_calibration(r, s)
    gauss = fit_std_calibration(r, s, dof_grid=(math.inf,))
    assert fit["dof"] is None or fit["dof"] >= 20
    if fit["dof"] is None:                                              # the same fit as before tails existed
        assert fit["std_scale"] == gauss["std_scale"] and fit["std_floor"] == gauss["std_floor"]
    np.testing.assert_allclose(fit["std_scale"], [1.5, 1.5], rtol=0.03)


def test_an_output_without_held_out_error_does_not_decide_the_tails():
    """A constant output predicted exactly (all residuals 0) keeps scale 1, floor 0; the other
    output's heavy tails still get a t."""
    rng = np.random.default_rng(7)
    s, r = _residuals(rng, 3000, 3.0)
    r[:, 1] = 0.0
    fit = fit_std_calibration(r, s)
    assert fit["dof"] is not None and fit["dof"] <= 6
    assert fit["std_scale"][1] == 1.0 and fit["std_floor"][1] == 0.0
    assert all(np.isfinite(fit["nll"][:1]))


def test_metrics_use_the_tails_and_default_to_the_gaussian():
    rng = np.random.default_rng(5)
    y = rng.standard_normal((500, 2))
    pred = y + rng.standard_t(3.0, y.shape) * sigma_per_std(3.0)
    std = np.ones_like(y)
    gauss = regression_metrics(y, pred, std)
    assert regression_metrics(y, pred, std, dof=math.inf) == gauss == regression_metrics(y, pred, std, dof=None)
    t3 = regression_metrics(y, pred, std, dof=3.0)
    err = pred - y
    assert t3["coverage90"] == pytest.approx(float(np.mean(np.abs(err) <= interval_z(3.0))))
    assert t3["nll"] == pytest.approx(float(np.mean(-log_density(err, std, 3.0))))
    assert t3["nll_at_rmse"] == gauss["nll_at_rmse"]                    # the reference stays Gaussian
    with pytest.raises(ValueError, match="dof"):
        regression_metrics(y, pred, std, dof=1.5)


def test_the_tails_travel_in_the_model_state():
    rng = np.random.default_rng(6)
    X = rng.uniform(-1, 1, (40, 2))
    model = DropoutMLP(hidden=(8,), min_steps=20, epochs=5, seed=0)
    model.fit(X, X[:, :1] ** 2)
    assert model.calibration_dof == math.inf
    model.set_calibration([2.0], [0.1], dof=4.0)
    state = model.get_state()
    assert float(state["calib_dof"]) == 4.0
    again = DropoutMLP.from_state(state, device="cpu")
    assert again.calibration_dof == 4.0
    np.testing.assert_array_equal(again.predict_with_std(X, 20, seed=1)[1], model.predict_with_std(X, 20, seed=1)[1])
    old = {k: v for k, v in state.items() if k != "calib_dof"}               # written before session 7
    assert DropoutMLP.from_state(old, device="cpu").calibration_dof == math.inf
    with pytest.raises(ValueError, match="dof must be > 2"):
        DropoutMLP.from_state({**state, "calib_dof": np.array(1.5)}, device="cpu")
    with pytest.raises(ValueError, match="dof must be > 2"):
        model.set_calibration([2.0], [0.1], dof=2.0)
    model.set_calibration([2.0], [0.1])
    assert model.calibration_dof == math.inf
