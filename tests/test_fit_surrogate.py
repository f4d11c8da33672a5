"""fit_surrogate, model selection and std calibration (issue 15): small networks, seconds."""
from __future__ import annotations

import json

import numpy as np
import pytest

from alcore.metrics import regression_metrics
from alcore.model.calibration import Z90, calibrated_std, fit_std_calibration
from alcore.model.fit import SurrogateSettings, fit_surrogate, needs_tuning
from alcore.model.selection import Candidate, kfold_ids, select_model

TINY = {"hidden": (16, 16), "min_steps": 300, "epochs": 50}
SPACE = (Candidate("default", {}), Candidate("crippled", {"hidden": (1,), "min_steps": 5, "lr": 1e-4}))


def _problem(n: int, noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 3))
    y = np.column_stack([np.sin(3 * X[:, 0]) + X[:, 1] ** 2, 10.0 * X[:, 2] * X[:, 0] + 5.0])
    return X, y + noise * rng.normal(size=y.shape) * [1.0, 10.0]


def test_calibration_recovers_scale_and_floor():
    rng = np.random.default_rng(1)
    s = rng.uniform(0.1, 1.0, (20000, 2))
    true_scale, true_floor = np.array([3.0, 0.5]), np.array([0.0, 0.2])
    r = rng.normal(size=s.shape) * calibrated_std(s, true_scale, true_floor)
    cal = fit_std_calibration(r, s)
    json.dumps(cal)
    np.testing.assert_allclose(cal["std_scale"], true_scale, rtol=0.05)
    assert cal["std_floor"][0] < 0.05 and cal["std_floor"][1] == pytest.approx(0.2, rel=0.1)
    assert all(abs(c - 0.9) < 0.01 for c in cal["coverage90"])
    assert all(a < b for a, b in zip(cal["nll"], cal["nll_raw"]))
    with pytest.raises(ValueError, match="residuals"):
        fit_std_calibration(r[:, :1], s)


def test_calibration_of_a_useless_std_falls_back_to_the_floor():
    """When the raw std carries no information (constant), the fit is a floor at the RMS error."""
    rng = np.random.default_rng(2)
    r = rng.normal(size=(5000, 1)) * 0.3
    cal = fit_std_calibration(r, np.full((5000, 1), 1e-9))
    assert np.sqrt(cal["std_scale"][0] ** 2 * 1e-18 + cal["std_floor"][0] ** 2) == pytest.approx(0.3, rel=0.05)
    assert Z90 == pytest.approx(1.6449, abs=1e-4)


def test_kfold_ids_partition_the_rows():
    ids = kfold_ids(23, 5, seed=3)
    assert ids.shape == (23,) and sorted(np.bincount(ids).tolist()) == [4, 4, 5, 5, 5]
    assert np.array_equal(ids, kfold_ids(23, 5, seed=3)) and not np.array_equal(ids, kfold_ids(23, 5, seed=4))
    assert kfold_ids(3, 5, seed=0).max() == 2                  # never more folds than rows


def test_select_model_prefers_the_better_candidate_and_records_scores():
    X, y = _problem(80)
    sel = select_model(X, y, TINY, SPACE, folds=4, seed=0)
    assert sel.chosen.name == "default" and sel.folds == 4 and not sel.truncated
    rec = json.loads(json.dumps(sel.to_json()))
    scores = {c["name"]: c["score"] for c in rec["candidates"]}
    assert scores["default"] < 0.5 < scores["crippled"]
    assert sel.oof.pred.shape == (80, 2) and sel.oof.rows.shape == (80,)
    # a tiny time budget still scores the first candidate and records the skipped ones
    cut = select_model(X, y, TINY, SPACE[::-1], folds=4, seed=0, budget_s=1e-6)
    assert cut.truncated and cut.chosen.name == "crippled"
    assert [c.skipped for c in cut.scores] == [False, True]
    # above full_cv_max_n only one fold is trained: a hold-out split
    hold = select_model(X, y, TINY, SPACE[:1], folds=4, seed=0, full_cv_max_n=50)
    assert hold.trained_folds == 1 and hold.oof.rows.size == 20


def test_fit_surrogate_retunes_on_the_schedule_and_warm_starts_between():
    X, y = _problem(200, noise=0.02)
    st = SurrogateSettings(model=TINY, search_space=SPACE, folds=4)
    assert needs_tuning(40, st, None) and not needs_tuning(79, st, {"n_selected": 40})
    first = fit_surrogate(X[:40], y[:40], st, seed=0)
    assert first.retuned and not first.warm_start and first.choice["n_selected"] == 40
    assert first.calibration["source"] == "cv"
    info = json.loads(json.dumps(first.info()))
    assert info["model_choice"]["name"] == "default" and len(info["cv"]["candidates"]) == 2
    state = first.model.get_state()
    np.testing.assert_allclose(state["calib_std_scale"], first.calibration["std_scale"])
    second = fit_surrogate(X[:60], y[:60], st, previous_state=state, previous_choice=first.choice, seed=1)
    assert not second.retuned and second.warm_start and second.cv is None
    assert second.calibration["source"] == "previous"
    np.testing.assert_allclose(second.model.calibration[0], first.calibration["std_scale"])
    # the rows labelled since the previous fit refresh the calibration (held out from that model)
    fresh = fit_surrogate(X[:60], y[:60], st, previous_state=state, previous_choice=first.choice, seed=1,
                          new_rows=np.arange(40, 60))
    assert fresh.calibration["source"] == "new_rows" and fresh.calibration["n"] == 20
    np.testing.assert_allclose(fresh.model.calibration[0], fresh.calibration["std_scale"])
    third = fit_surrogate(X[:80], y[:80], st, previous_state=second.model.get_state(),
                          previous_choice=second.choice, seed=2)
    assert third.retuned and third.choice["n_selected"] == 80 and third.warm_start   # same architecture


def test_fit_surrogate_fixed_keeps_the_model_and_still_calibrates():
    X, y = _problem(60)
    pinned = {**TINY, "hidden": (12, 7), "activation": "tanh"}
    fit = fit_surrogate(X, y, SurrogateSettings(select="fixed", model=pinned, folds=3), seed=0)
    assert fit.choice["name"] == "fixed" and fit.model.hidden == (12, 7) and fit.model.activation == "tanh"
    assert fit.calibration["source"] == "cv" and [c["name"] for c in fit.cv["candidates"]] == ["fixed"]
    off = fit_surrogate(X, y, SurrogateSettings(select="fixed", model=pinned, calibrate=False), seed=0)
    assert off.cv is None and off.calibration["source"] == "none"
    with pytest.raises(ValueError, match="select"):
        SurrogateSettings(select="best")


def test_fixed_between_tunings_trains_the_model_as_configured_now():
    """A resume may change a pinned model's training knobs: they apply at once, not at the next CV."""
    X, y = _problem(40)
    first = fit_surrogate(X[:30], y[:30], SurrogateSettings(select="fixed", model=TINY, folds=3), seed=0)
    changed = {**TINY, "lr": 0.002, "min_steps": 120}
    second = fit_surrogate(X, y, SurrogateSettings(select="fixed", model=changed, folds=3),
                           previous_state=first.model.get_state(), previous_choice=first.choice, seed=1)
    assert not second.retuned and second.model.lr == 0.002 and second.model.min_steps == 120
    assert second.choice["params"]["lr"] == 0.002 and second.choice["n_selected"] == 30


def test_auto_with_too_few_labels_tunes_at_the_first_fit_that_can():
    X, y = _problem(12)
    st = SurrogateSettings(model=TINY, search_space=SPACE, folds=3)
    small = fit_surrogate(X[:5], y[:5], st, seed=0)       # 5 < 2 x 3 folds: the base model, untuned
    assert not small.retuned and small.choice["name"] == "default" and small.choice["n_selected"] is None
    assert needs_tuning(6, st, small.choice)
    grown = fit_surrogate(X[:7], y[:7], st, previous_state=small.model.get_state(),
                          previous_choice=small.choice, seed=1)
    assert grown.retuned and grown.choice["n_selected"] == 7 and grown.cv is not None


def test_calibrated_intervals_cover_held_out_points():
    """The point of calibration: a raw MC-dropout std (small last-layer rate) is overconfident,
    the calibrated one covers about 90% of new points and its NLL is near the reference."""
    X, y = _problem(500, noise=0.05, seed=5)
    fit = fit_surrogate(X[:250], y[:250], SurrogateSettings(model=TINY, search_space=SPACE[:1]), seed=0)
    mean, std = fit.model.predict_with_std(X[250:], T=50, seed=1)
    raw = fit.model.sample(X[250:], 50, seed=1).std(axis=1)
    cal = regression_metrics(y[250:], mean, std, dof=fit.model.calibration_dof)
    unc = regression_metrics(y[250:], mean, raw)
    assert 0.75 <= cal["coverage90"] <= 0.98
    assert cal["nll"] < unc["nll"]
    assert cal["nll"] - cal["nll_at_rmse"] < 0.5


def test_the_calibration_tails_are_carried_between_tunings():
    """A fit without new held-out rows keeps the previous model's calibration, its dof included."""
    X, y = _problem(60, noise=0.05, seed=6)
    settings = SurrogateSettings(model=TINY, search_space=SPACE[:1])
    first = fit_surrogate(X[:50], y[:50], settings, seed=0)
    first.model.set_calibration([1.5, 2.0], [0.0, 0.1], dof=4.0)
    again = fit_surrogate(X, y, settings, previous_state=first.model.get_state(), previous_choice=first.choice, seed=1)
    assert not again.retuned and again.calibration["source"] == "previous"
    assert again.calibration["dof"] == 4.0 and again.model.calibration_dof == 4.0
    json.dumps(again.info())


def test_fit_surrogate_holds_out_one_fold_above_full_cv_max_n():
    """Above ``full_cv_max_n`` labels a tuning trains one fold (n/folds held out), below it all folds."""
    X, y = _problem(80)
    small = fit_surrogate(X, y, SurrogateSettings(select="fixed", model=TINY, folds=4), seed=0)
    assert small.cv["trained_folds"] == 4 and small.calibration["n"] == 80
    big = fit_surrogate(X, y, SurrogateSettings(select="fixed", model=TINY, folds=4, full_cv_max_n=50), seed=0)
    assert big.cv["trained_folds"] == 1 and big.calibration["n"] == 20
    with pytest.raises(ValueError, match="full_cv_max_n"):
        SurrogateSettings(full_cv_max_n=-1)
