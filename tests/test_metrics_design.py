"""regression_metrics and make_design."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy.stats import qmc

from alcore.design import make_design
from alcore.metrics import regression_metrics


def test_metrics_per_output_and_means():
    rng = np.random.default_rng(0)
    yt = rng.normal(size=(50, 2)) * [1.0, 10.0]
    yp = yt + rng.normal(size=(50, 2)) * [0.1, 2.0]
    m = regression_metrics(yt, yp, output_names=["a", "b"])
    json.dumps(m)
    for j in range(2):
        e = yp[:, j] - yt[:, j]
        assert m["rmse_per_output"][j] == pytest.approx(np.sqrt(np.mean(e ** 2)))
        assert m["mae_per_output"][j] == pytest.approx(np.mean(np.abs(e)))
        assert m["r2_per_output"][j] == pytest.approx(1 - np.sum(e ** 2) / np.sum((yt[:, j] - yt[:, j].mean()) ** 2))
    assert m["rmse"] == pytest.approx(np.mean(m["rmse_per_output"]))
    assert m["output_names"] == ["a", "b"] and m["n"] == 50
    assert "nll" not in m


def test_metrics_1d_and_nll():
    yt = np.array([0.0, 1.0, 2.0])
    yp = np.array([0.5, 1.0, 1.0])
    sd = np.array([1.0, 2.0, 0.5])
    m = regression_metrics(yt, yp, y_std=sd)
    ref = np.mean(0.5 * np.log(2 * math.pi * sd ** 2) + 0.5 * ((yp - yt) / sd) ** 2)
    assert m["nll"] == pytest.approx(ref)
    assert m["output_names"] == ["y0"]
    perfect = regression_metrics(yt, yt)
    assert perfect["rmse"] == 0.0 and perfect["r2"] == 1.0
    const = regression_metrics(np.ones(4), np.array([1.0, 1.0, 1.0, 2.0]))
    assert const["r2"] == 0.0 and math.isfinite(const["r2"])


def test_coverage_and_reference_nll_of_a_calibrated_gaussian():
    rng = np.random.default_rng(4)
    n = 20000
    sd = np.column_stack([np.full(n, 0.5), rng.uniform(0.5, 2.0, n)])
    yt = rng.normal(size=(n, 2)) * 3.0
    yp = yt + rng.normal(size=(n, 2)) * sd
    m = regression_metrics(yt, yp, y_std=sd)
    json.dumps(m)
    # exactly calibrated stds: 90% of points inside the central 90% interval
    for c in m["coverage90_per_output"]:
        assert abs(c - 0.9) < 0.01
    # constant std equal to the error scale: NLL matches the Gaussian at the observed RMSE
    assert m["nll_per_output"][0] == pytest.approx(m["nll_at_rmse_per_output"][0], abs=0.02)
    # heteroscedastic calibrated stds beat a constant std at the RMSE (they know where errors are)
    assert m["nll_per_output"][1] < m["nll_at_rmse_per_output"][1]
    # an overconfident std (x 0.2) covers far fewer points and pays in NLL
    bad = regression_metrics(yt, yp, y_std=0.2 * sd)
    assert bad["coverage90"] < 0.4 and bad["nll"] > m["nll"] + 2


@pytest.mark.parametrize("args, culprit", [
    ((np.zeros(3), np.zeros(4)), "y_pred"),
    ((np.zeros((3, 1, 1)), np.zeros(3)), "y_true"),
    ((np.array([0.0, np.nan]), np.zeros(2)), "y_true"),
    ((np.zeros(2), np.array([np.inf, 0.0])), "y_pred"),
])
def test_metrics_bad_input(args, culprit):
    with pytest.raises(ValueError, match=culprit):
        regression_metrics(*args)
    with pytest.raises(ValueError, match="y_std"):
        regression_metrics(np.zeros(2), np.zeros(2), y_std=np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="output_names"):
        regression_metrics(np.zeros(2), np.zeros(2), output_names=["a", "b"])


@pytest.mark.parametrize("kind", ["sobol", "lhs", "random"])
def test_design_in_bounds_and_seeded(kind):
    b = np.array([[0.0, 1.0], [-5.0, 5.0], [100.0, 101.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = make_design(kind, 100, b, seed=3)        # 100 is not a power of two: no warning
    assert X.shape == (100, 3)
    assert np.all(X >= b[:, 0]) and np.all(X <= b[:, 1])
    np.testing.assert_array_equal(X, make_design(kind, 100, b, seed=3))
    assert not np.allclose(X, make_design(kind, 100, b, seed=4))


def test_sobol_and_lhs_fill_space_better_than_random():
    b = np.array([[0.0, 1.0]] * 4)
    disc = {k: qmc.discrepancy(make_design(k, 256, b, seed=0)) for k in ("sobol", "lhs", "random")}
    assert disc["sobol"] < disc["random"] and disc["lhs"] < disc["random"]
    lhs = make_design("lhs", 50, b, seed=1)
    # Latin hypercube: exactly one point per stratum in each dimension
    for j in range(4):
        assert sorted(np.floor(lhs[:, j] * 50).astype(int).tolist()) == list(range(50))


@pytest.mark.parametrize("kw, culprit", [
    (dict(kind="halton"), "kind"), (dict(n=0), "n"), (dict(seed=-2), "seed"),
    (dict(bounds=[[0, 1, 2]]), "bounds"), (dict(bounds=[[1.0, 0.0]]), "bounds row 0"),
    (dict(bounds=[[0.0, np.inf]]), "finite"), (dict(bounds=[]), "bounds"),
])
def test_design_bad_input(kw, culprit):
    args = dict(kind="sobol", n=8, bounds=[[0.0, 1.0]], seed=0) | kw
    with pytest.raises(ValueError, match=culprit):
        make_design(**args)
