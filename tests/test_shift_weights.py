"""Density-ratio weights of held-out residuals (alcore.model.shift_weights) and the weighted
std calibration: an active-learning campaign's labels crowd the hard regions; the calibration
must be fitted for the pool, not for them."""
from __future__ import annotations

import numpy as np
import pytest

from alcore.model.calibration import Z90, calibrated_std, fit_std_calibration
from alcore.model.fit import SurrogateSettings, fit_surrogate
from alcore.model.shift_weights import MAX_WEIGHT, cell_weights


def test_random_labels_get_weights_near_one_and_a_cluster_gets_small_ones():
    rng = np.random.default_rng(0)
    pool = rng.uniform(size=(20000, 2))
    spread = rng.uniform(size=(200, 2))
    w = cell_weights(spread, pool)
    assert w.mean() == pytest.approx(1.0) and np.median(w) == pytest.approx(1.0, abs=0.3)
    # 100 labels crowded into a corner of 1% of the box, 100 spread: the crowd stands for ~1% of
    # the pool, so its rows weigh ~50x less than the spread rows
    crowd = rng.uniform(0, 0.1, size=(100, 2))
    X = np.vstack([crowd, spread[:100]])
    w = cell_weights(X, pool)
    assert w[:100].sum() / w.sum() < 0.05
    assert w.max() <= MAX_WEIGHT + 1e-9 and w.mean() == pytest.approx(1.0)
    # only some rows held out: their weights, renormalised
    sub = cell_weights(X, pool, rows=np.arange(100, 200))
    assert sub.shape == (100,) and sub.mean() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="X_target"):
        cell_weights(X, pool[:, :1])


def test_weighted_calibration_fits_the_target_not_the_crowd():
    """Residuals 10x larger in an over-sampled hard region: unweighted, the fitted floor is set
    by the crowd and the intervals cover ~100% elsewhere; weighted, they cover ~90% of the pool."""
    rng = np.random.default_rng(1)
    pool = rng.uniform(size=(20000, 1))
    hard = lambda x: np.where(x[:, 0] < 0.1, 1.0, 0.1)          # noqa: E731  true error sd
    X = np.vstack([rng.uniform(0, 0.1, (900, 1)), rng.uniform(size=(300, 1))])
    r = (rng.normal(size=len(X)) * hard(X))[:, None]
    s = np.full_like(r, 1e-9)                                   # an uninformative (constant) MC std
    pool_r = rng.normal(size=len(pool)) * hard(pool)

    def pool_coverage(cal):
        sigma = calibrated_std(np.full(len(pool), 1e-9), cal["std_scale"][0], cal["std_floor"][0])
        return float(np.mean(np.abs(pool_r) <= Z90 * sigma))

    plain = fit_std_calibration(r, s)
    weighted = fit_std_calibration(r, s, cell_weights(X, pool))
    assert pool_coverage(plain) > 0.97
    assert 0.85 < pool_coverage(weighted) < 0.95
    assert weighted["effective_n"] < weighted["n"] == 1200
    with pytest.raises(ValueError, match="weights"):
        fit_std_calibration(r, s, np.zeros(len(r)))


def test_fit_surrogate_weights_the_calibration_only_when_given_a_target():
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, (60, 2))
    y = np.sin(3 * X[:, :1]) + 0.05 * rng.normal(size=(60, 1))
    st = SurrogateSettings(select="fixed", model={"hidden": (16, 16), "min_steps": 200, "epochs": 30}, folds=3)
    plain = fit_surrogate(X, y, st, seed=0)
    target = fit_surrogate(X, y, st, seed=0, target_X=rng.uniform(-1, 1, (500, 2)))
    assert plain.calibration["weighted"] is False and target.calibration["weighted"] is True
    assert target.calibration["effective_n"] < plain.calibration["effective_n"] == 60
