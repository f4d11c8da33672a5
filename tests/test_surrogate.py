"""``alcore.load_surrogate``: the model a campaign hands over, on real stores.

The campaign fixture is a real alcore.campaign run (two outputs on different scales, inputs
off zero, a test set), so "the test RMSE from the predicted means equals the stored metric"
is checked against what the campaign's own evaluate step recorded.
"""
from __future__ import annotations

import math
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import math

import numpy as np
import pytest

import alcore
from alcore.metrics import regression_metrics
from alcore.store import CampaignStore, NotHDF5Error, StoreNotFoundError
from alcore.surrogate import (ExtrapolationWarning, InputError, SurrogateError, choose_model,
                              load_surrogate)
from surrogate_helpers import BOUNDS, INPUTS, OUTPUTS, dir_state, run_campaign, store_with_models


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return run_campaign(tmp_path_factory.mktemp("campaign"))


@pytest.fixture(scope="module")
def test_set(store: Path) -> tuple[np.ndarray, np.ndarray, dict[int, dict]]:
    with CampaignStore.open(store) as st:
        metrics = {it["iteration"]: it["metrics"] for it in st.iterations if it["finished"]}
        return np.asarray(st.test_X).copy(), np.asarray(st.test_y).copy(), metrics


# ------------------------------------------------------------------ the chosen model
def test_best_is_the_lowest_stored_test_rmse_and_its_predictions_reproduce_it(store, test_set):
    X, y, metrics = test_set
    assert sorted(metrics) == [0, 1, 2, 3]
    s = load_surrogate(store)
    best_it = min(metrics, key=lambda i: metrics[i]["rmse"])
    assert s.iteration == best_it
    assert s.choice.rule == "lowest test RMSE" and s.choice.requested == "best"
    assert "lowest test RMSE" in s.choice.describe() and "4 evaluated" in s.choice.reason
    assert s.metrics == metrics[best_it]
    for it in metrics:  # every checkpoint reproduces what the campaign's evaluate recorded
        mean, std = load_surrogate(store, model=it).predict(X)
        got = regression_metrics(y, mean, output_names=OUTPUTS)
        np.testing.assert_allclose(got["rmse"], metrics[it]["rmse"], rtol=1e-6)
        np.testing.assert_allclose(got["rmse_per_output"], metrics[it]["rmse_per_output"],
                                   rtol=1e-6)
    last = load_surrogate(store, model="last")
    assert last.iteration == 3 and last.choice.rule == "last model"
    assert load_surrogate(store, model="2").iteration == 2


def test_names_bounds_and_provenance_come_from_the_store(store):
    s = load_surrogate(store)
    assert s.input_names == tuple(INPUTS) and s.output_names == tuple(OUTPUTS)
    np.testing.assert_array_equal(s.bounds, BOUNDS)
    assert s.campaign == "two-outputs" and s.oracle["name"] == "f"
    assert s.store_path == store and s.input_dim == 2 and s.output_dim == 2
    assert "two-outputs" in repr(s) and "wave, level" in repr(s)
    with pytest.raises(ValueError):
        s.bounds[0, 0] = 5.0  # read-only


# ------------------------------------------------------------------ predictions
def test_predict_shapes_std_and_independence_from_the_other_rows(store, test_set):
    X = test_set[0]
    s = load_surrogate(store)
    mean, std = s.predict(X, T=64, seed=3)
    assert mean.shape == std.shape == (len(X), 2) and mean.dtype == np.float64
    assert np.all(np.isfinite(std)) and np.all(std > 0)
    m5, s5 = s.predict(X[5:6], T=64, seed=3)  # shared masks: a row does not see the others
    # float32 GEMMs of different batch sizes may round differently: 1e-6 of each output's scale
    scale = np.abs(mean).max(axis=0)
    assert np.all(np.abs(m5[0] - mean[5]) <= 1e-6 * scale)
    assert np.all(np.abs(s5[0] - std[5]) <= 1e-6 * scale)
    again = s.predict(X, T=64, seed=3)[1]
    np.testing.assert_array_equal(again, std)
    # the seed picks the MC-dropout masks (the calibrated std may be all floor, seed-free)
    assert not np.allclose(s.sample(X, T=8, seed=4), s.sample(X, T=8, seed=3))
    np.testing.assert_array_equal(mean, s.predict_mean(X))  # the dropout-off network
    with pytest.raises(ValueError, match="T must be"):
        s.predict(X, T=1)


def test_std_without_calibration_keys_is_the_mc_dropout_spread(tmp_path):
    """A checkpoint without calib_* keys (a store written before issue 15) is not calibrated."""
    path = store_with_models(tmp_path / "raw.h5", [{"on": "test", "rmse": 1.0}])
    s = load_surrogate(path)
    assert "calib_std_scale" not in s.state
    X = np.array([[0.5, 0.0], [1.5, 0.5], [1.0, -0.5]])
    std = s.predict(X, T=50, seed=7)[1]
    np.testing.assert_allclose(std, s.model.sample(X, 50, seed=7).std(axis=1), rtol=1e-12)


def test_calibration_in_the_state_scales_and_floors_the_std(tmp_path):
    scale, floor = np.array([2.0, 0.5]), np.array([0.0, 3.0])
    path = store_with_models(tmp_path / "cal.h5", [{"on": "test", "rmse": 1.0}],
                             extra_state={"calib_std_scale": scale, "calib_std_floor": floor})
    s = load_surrogate(path)
    X = np.array([[0.5, 0.0], [1.5, 0.5], [1.0, -0.5]])
    mc = s.model.sample(X, 40, seed=0).std(axis=1)
    np.testing.assert_allclose(s.predict(X, T=40)[1], np.sqrt((scale * mc) ** 2 + floor ** 2),
                               rtol=1e-12)


def test_interval_uses_the_student_t_tails_of_the_state(tmp_path):
    """A checkpoint whose calibration chose t tails (calib_dof) gives intervals of
    interval_z(dof) stds; one without calib_dof is Gaussian (1.645 stds at 90%)."""
    from alcore.predictive import interval_z

    X = np.array([[0.5, 0.0], [1.5, 0.5]])
    for name, extra, dof in (("t", {"calib_dof": np.array(3.0)}, 3.0), ("gauss", {}, math.inf)):
        path = store_with_models(tmp_path / f"{name}.h5", [{"on": "test", "rmse": 1.0}],
                                 extra_state={"calib_std_scale": np.array([2.0, 0.5]),
                                              "calib_std_floor": np.array([0.1, 0.2]), **extra})
        s = load_surrogate(path)
        assert s.dof == dof
        mean, std = s.predict(X, T=40, seed=3)
        lo, hi = s.interval(X, 0.9, T=40, seed=3)
        np.testing.assert_allclose(hi - mean, interval_z(dof, 0.9) * std, rtol=1e-12)
        np.testing.assert_allclose(mean - lo, hi - mean, rtol=1e-12)
    assert interval_z(3.0) < 1.4


def test_sample_draws_share_masks_across_points(store, test_set):
    X = test_set[0][:4]
    s = load_surrogate(store)
    draws = s.sample(np.vstack([X, X[:1]]), T=30, seed=1)
    assert draws.shape == (5, 30, 2)
    # Same point, same thinned networks. Not bit-equal: float32 matmul kernels may block rows of
    # a batch differently (a 4e-8 relative difference was seen in CI); other masks would differ
    # by the dropout spread, orders of magnitude more.
    np.testing.assert_allclose(draws[0], draws[4], rtol=1e-6)
    assert np.all(draws.std(axis=1) > 0)


# ------------------------------------------------------------------ inputs
def test_inputs_by_name_in_any_order_dict_or_dataframe(store, test_set):
    X = test_set[0][:6]
    s = load_surrogate(store)
    ref = s.predict_mean(X)
    np.testing.assert_array_equal(s.predict_mean({"v": X[:, 1], "u": X[:, 0]}), ref)
    # a batch of one may take another float32 kernel than a batch of six: equal to rounding
    np.testing.assert_allclose(s.predict_mean({"u": float(X[0, 0]), "v": float(X[0, 1])}),
                               ref[:1], rtol=1e-6)
    np.testing.assert_allclose(s.predict_mean(X[0]), ref[:1], rtol=1e-6)  # one point, 1-D
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"id": list("abcdef"), "v": X[:, 1], "u": X[:, 0]})
    np.testing.assert_array_equal(s.predict_mean(df), ref)  # extra columns are ignored
    np.testing.assert_array_equal(s.predict(df, T=8)[1], s.predict(X, T=8)[1])


@pytest.mark.parametrize("bad, fragment", [
    (np.zeros((3, 3)), "3 columns; the surrogate takes 2 (u, v)"),
    (np.zeros((2, 2, 2)), "2-D array"),
    (np.zeros(3), "one point of 2 values"),
    ({"u": [0.1], "w": [0.2]}, "missing input column(s) v"),
    ({"u": [0.1, 0.2], "v": [0.2]}, "differ in length"),
    ([["a", "b"]], "not numeric"),
    ({"u": ["x"], "v": [1.0]}, "input column 'u' is not numeric"),
])
def test_bad_input_shapes_and_names_are_refused(store, bad, fragment):
    s = load_surrogate(store)
    with pytest.raises(InputError) as exc:
        s.predict(bad)
    assert fragment in str(exc.value)


def test_nan_and_inf_are_refused_naming_the_row_and_input(store):
    s = load_surrogate(store)
    X = np.array([[0.5, 0.1], [0.2, np.nan], [np.inf, 0.0]])
    with pytest.raises(InputError) as exc:
        s.predict(X)
    assert exc.value.row == 1 and exc.value.column == "v"
    assert "2 in all" in str(exc.value) and "NaN in row 1, input 'v'" in str(exc.value)
    with pytest.raises(InputError, match="infinite in row 0, input 'u'"):
        s.sample(np.array([[np.inf, 0.0]]))


def test_points_outside_the_bounds_are_predicted_but_flagged(store):
    s = load_surrogate(store)
    inside = np.array([[0.0, -1.0], [2.0, 1.0], [1.0, 0.0]])  # the bounds themselves are in
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s.predict(inside)
    assert not s.extrapolated(inside).any()
    X = np.array([[1.0, 0.0], [2.5, 0.0], [1.0, -3.0], [-1.0, 4.0]])
    with pytest.warns(ExtrapolationWarning, match=r"3 of 4 points .* u \(2\), v \(2\)"):
        mean, std = s.predict(X)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
    np.testing.assert_array_equal(s.extrapolated(X), [False, True, True, True])


# ------------------------------------------------------------------ model choice rules
def test_best_skips_unevaluated_checkpoints_and_last_takes_the_newest(tmp_path):
    path = store_with_models(tmp_path / "s.h5", [
        {"on": "test", "rmse": 0.5}, {"on": "test", "rmse": 0.2}, {"on": "test", "rmse": 0.3},
        None])  # iteration 3: trained, killed before its evaluation
    best = load_surrogate(path)
    assert best.iteration == 1 and best.choice.test_rmse == 0.2 and best.metrics["rmse"] == 0.2
    assert "3 evaluated iterations" in best.choice.reason
    last = load_surrogate(path, model="last")
    assert last.iteration == 3 and last.metrics == {} and last.choice.test_rmse is None


def test_best_without_a_test_set_is_the_last_model_and_says_so(tmp_path):
    path = store_with_models(tmp_path / "s.h5", [{"on": "train", "rmse": 0.1},
                                                 {"on": "train", "rmse": 0.4}], test=False)
    s = load_surrogate(path)
    assert s.iteration == 1 and s.choice.rule == "last model"
    assert "no test set" in s.choice.describe()


def test_choose_model_rules():
    m = {0: {"on": "test", "rmse": 0.3}, 1: {"on": "test", "rmse": 0.2},
         2: {"on": "test", "rmse": 0.2}, 4: {"on": "test", "rmse": None}}
    assert choose_model("best", [0, 1, 2, 4], m).iteration == 1  # ties: the earlier one
    assert choose_model("best", [0, 2, 4], m).iteration == 2  # 1 has no checkpoint
    c = choose_model("best", [4], m, has_test=True)
    assert c.iteration == 4 and "not evaluated" not in c.reason and "yet" in c.reason
    with pytest.raises(SurrogateError, match="checkpoints: 0-2, 4"):
        choose_model(3, [0, 1, 2, 4], m)
    with pytest.raises(SurrogateError, match="'best', 'last' or an iteration number"):
        choose_model("bestest", [0], m)
    with pytest.raises(SurrogateError, match=">= 0"):
        choose_model(-1, [0], m)
    with pytest.raises(SurrogateError, match="no model checkpoint yet"):
        choose_model("last", [], m)


def test_store_problems_raise_clear_errors(tmp_path, store):
    bare = tmp_path / "bare.h5"
    CampaignStore.create(bare, config={}, oracle_info={"name": "x"},
                         pool_X=np.zeros((3, 2))).close()
    with pytest.raises(SurrogateError, match="bare.h5: no model checkpoint yet"):
        load_surrogate(bare)
    with pytest.raises(SurrogateError, match="iteration 9 has no model checkpoint; checkpoints: 0-3"):
        load_surrogate(store, model=9)
    junk = tmp_path / "junk.h5"
    junk.write_text("not a store")
    with pytest.raises(NotHDF5Error):
        load_surrogate(junk)
    with pytest.raises(StoreNotFoundError):
        load_surrogate(tmp_path / "missing.h5")


# ------------------------------------------------------------------ read-only, light import
def test_loads_read_only_while_a_writer_holds_the_store(tmp_path, store):
    copy = tmp_path / "live" / "store.h5"
    copy.parent.mkdir()
    for f in store.parent.glob(store.name + "*"):
        shutil.copy2(f, copy.parent / f.name)
    writer = CampaignStore.open(copy, mode="a")  # a campaign "running" in this process
    try:
        before = dir_state(copy.parent)
        s = load_surrogate(copy)
        s.predict(np.array([[1.0, 0.0]]))
        assert dir_state(copy.parent) == before  # nothing written, no lock taken
        assert load_surrogate(writer).iteration == s.iteration  # an open store works too
    finally:
        writer.close()


def test_import_alcore_stays_light():
    code = ("import sys, alcore, alcore.surrogate; f = alcore.load_surrogate; "
            "assert 'torch' not in sys.modules, 'torch imported'; print(f.__name__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "load_surrogate", r.stderr
    assert alcore.load_surrogate is load_surrogate
    with pytest.raises(AttributeError):
        alcore.no_such_thing  # noqa: B018
