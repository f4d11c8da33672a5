"""DropoutMLP and the stacked trainer: training, reproducibility, state round trip, warm start,
per-layer dropout, calibration in the state, validation, threads."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from alcore.model import ACTIVATIONS, DropoutMLP, FitReport
from alcore.model.activations import ACTIVATION_TABLE, activation_from_code, get_activation
from alcore.model.network import StackedMLP, TrainSettings, train_stacked
from alcore.model.threads import training_threads, user_chose_threads

FAST = dict(min_steps=0, device="cpu")


def _data(n=200, d=3, seed=0, k=1):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, d)) * np.arange(1, d + 1) + 5.0   # unstandardised inputs
    y = np.sin(X[:, 0]) + 0.1 * X[:, 1] ** 2
    if k == 2:
        y = np.stack([y, 100.0 * np.cos(X[:, 0]) + 1000.0], axis=1)  # very different scales
    return X, y


def test_default_constructor_and_fit_report():
    m = DropoutMLP()
    assert m.activation in ACTIVATIONS and m.n_members == 1 and m.dropout > 0
    assert sum(r > 0 for r in m.dropout_rates) >= 1          # the method: dropout somewhere
    X, y = _data(120)
    m = DropoutMLP(epochs=15, early_stopping=True, **FAST)
    rep = m.fit(X, y)
    assert isinstance(rep, FitReport)
    assert 1 <= rep.epochs_run <= 15 and rep.n_val == 12 and rep.n_train == 108
    assert rep.train_time_s > 0 and math.isfinite(rep.best_val_loss)
    assert m.predict(X).shape == (120, 1)


def test_activation_table_is_the_one_source():
    assert ACTIVATIONS == tuple(ACTIVATION_TABLE)
    for name in ACTIVATIONS:
        a = get_activation(name)
        assert activation_from_code(a.code) is a
        z = torch.linspace(-3, 3, 7)
        torch.testing.assert_close(a.fn_inplace(z.clone()), a.fn(z))
    assert get_activation("relu").code == 0 and get_activation("silu").code == 3   # stored codes never move
    with pytest.raises(ValueError, match="activation must be one of"):
        get_activation("sigmoid")
    with pytest.raises(ValueError, match="code 99"):
        activation_from_code(99)


def test_networks_of_a_stack_are_independent():
    """Row weights give each stacked network its own training set; the others do not leak in:
    a stack of two equals each network trained alone on its rows (no dropout, full batch)."""
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(40, 3, generator=g), torch.randn(40, 2, generator=g)
    keep = torch.arange(40) % 3 != 0
    settings = TrainSettings(steps=60, lr=1e-2, weight_decay=1e-3)
    stack = StackedMLP([3, 8, 6, 2], 2, "silu", (0.0, 0.0))
    stack.init([torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)])
    w = torch.ones(2, 40)
    w[1, ~keep] = 0.0
    train_stacked(stack, X, Y, settings, w)
    for j, rows in ((0, torch.ones(40, dtype=torch.bool)), (1, keep)):
        alone = StackedMLP([3, 8, 6, 2], 1, "silu", (0.0, 0.0))
        alone.init([torch.Generator().manual_seed(j + 1)])
        train_stacked(alone, X[rows], Y[rows], settings)
        for (Wa, ba), (Ws, bs) in zip(alone.member_layers(0), stack.member_layers(j)):
            torch.testing.assert_close(Wa, Ws, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(ba, bs, rtol=1e-4, atol=1e-5)


def test_training_reduces_the_loss_with_every_activation():
    X, y = _data(150)
    for act in ACTIVATIONS:
        m = DropoutMLP(hidden=(16, 16), activation=act, epochs=100, lr=1e-2, **FAST)
        first = DropoutMLP(hidden=(16, 16), activation=act, epochs=1, lr=1e-2, **FAST)
        assert m.fit(X, y).final_train_loss < 0.5 * first.fit(X, y).final_train_loss, act


def test_learns_multi_output_on_original_scale():
    X, y = _data(400, k=2)
    m = DropoutMLP(hidden=(32, 32), epochs=400, lr=1e-2, seed=0, **FAST)
    m.fit(X[:300], y[:300])
    p = m.predict(X[300:])
    assert p.shape == (100, 2)
    for j in range(2):
        rmse = np.sqrt(np.mean((p[:, j] - y[300:, j]) ** 2))
        assert rmse < 0.2 * y[300:, j].std()


def test_step_budget_full_batch_then_minibatches():
    m = DropoutMLP(hidden=(8,), epochs=10, min_steps=2000, batch_size=100, warm_fraction=0.25, device="cpu")
    assert m.batch_for(60) == 60 and m.steps_for(60) == 2000              # full batch, min_steps
    assert m.batch_for(1000) == 100 and m.steps_for(1000) == 2000         # 10 batches x 200 epochs
    assert m.steps_for(50000) == 5000                                      # 500 batches x 10 epochs
    assert m.steps_for(50000, warm=True) == 1250                           # warm: a quarter ...
    assert m.steps_for(60, warm=True) == 500                               # ... but >= 500 steps
    assert DropoutMLP(min_steps=0, epochs=30, device="cpu").steps_for(8, warm=True) == 30   # short: not cut
    X, y = _data(60)
    seen = []
    rep = m.fit(X, y, progress=lambda e, n, tl, vl: seen.append((e, n)))
    assert rep.steps == 2000 and rep.epochs_run == 2000
    assert seen[-1] == (2000, 2000) and len(seen) <= 201                  # throttled progress
    assert m.fit(X, y, warm_start=True).steps == 500


def test_reproducible_and_seed_dependent():
    X, y = _data(100)
    kw = dict(hidden=(16, 16), epochs=10, **FAST)
    a = DropoutMLP(seed=3, **kw)
    a.fit(X, y)
    b = DropoutMLP(seed=3, **kw)
    b.fit(X, y)
    c = DropoutMLP(seed=4, **kw)
    c.fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.sample(X, 5, seed=1), b.sample(X, 5, seed=1))
    assert not np.allclose(a.predict(X), c.predict(X))


def test_early_stopping_restores_best_weights():
    X, y = _data(60)
    y = y + np.random.default_rng(9).normal(0, 0.5, 60)   # noisy: the network will overfit
    seen = []
    m = DropoutMLP(hidden=(64, 64), dropout=0.01, weight_decay=0.0, lr=3e-3, epochs=400, patience=20,
                   batch_size=16, lr_schedule="none", early_stopping=True, seed=0, **FAST)
    rep = m.fit(X, y, progress=lambda e, n, tl, vl: seen.append((e, n, tl, vl)))
    assert rep.stopped_early and rep.epochs_run < 400
    assert rep.epochs_run == rep.best_epoch + 20
    assert rep.best_val_loss <= min(s[3] for s in seen) + 1e-9      # progress is throttled: a subset
    # the restored weights reproduce the best validation loss, not the last one
    from alcore.model.dropout_mlp import seed_int

    vi = np.random.default_rng(seed_int(0, 0, 1, 60)).permutation(60)[:rep.n_val]
    pv = m.predict(X[vi], standardised=True)
    yv = (y[vi] - m._y_mean) / m._y_std
    assert np.mean((pv[:, 0] - yv) ** 2) == pytest.approx(rep.best_val_loss, rel=1e-3)
    assert seen[-1][3] > rep.best_val_loss


def test_no_early_stopping_runs_all_epochs():
    X, y = _data(50)
    m = DropoutMLP(hidden=(8,), epochs=7, batch_size=10, early_stopping=False, **FAST)
    rep = m.fit(X, y)
    assert rep.epochs_run == 7 and rep.steps == 35 and rep.n_val == 0 and math.isnan(rep.best_val_loss)


def test_state_round_trip_plain_arrays_with_calibration():
    X, y = _data(80, k=2)
    m = DropoutMLP(hidden=(12, 9), activation="tanh", dropout=0.25, dropout_layers="all", epochs=5, seed=2, **FAST)
    m.fit(X, y)
    m.set_calibration([2.0, 3.0], [0.0, 0.5])
    st = m.get_state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in st.values())
    assert st["arch_hidden"].tolist() == [12, 9] and st["arch_dropout_layers"].tolist() == [0.25, 0.25]
    assert st["m0_W0"].shape == (12, 3) and st["m0_W2"].shape == (2, 9)      # W as (out, in)
    r = DropoutMLP.from_state({k: v.copy() for k, v in st.items()})
    assert r.activation == "tanh" and r.dropout == 0.25 and r.hidden == (12, 9)
    np.testing.assert_array_equal(r.predict(X), m.predict(X))
    np.testing.assert_array_equal(r.sample(X, 4, seed=7), m.sample(X, 4, seed=7))
    np.testing.assert_array_equal(r.predict_with_std(X, T=8)[1], m.predict_with_std(X, T=8)[1])
    with pytest.raises(ValueError, match="norm_x_std"):
        DropoutMLP.from_state({k: v for k, v in st.items() if k != "norm_x_std"})
    with pytest.raises(ValueError, match="arch_hidden"):
        DropoutMLP(hidden=(12, 10), activation="tanh").load_state(st)
    with pytest.raises(ValueError, match="arch_dropout_layers"):
        DropoutMLP(hidden=(12, 9), activation="tanh", dropout=0.25, dropout_layers="last").load_state(st)
    with pytest.raises(RuntimeError, match="not fitted"):
        DropoutMLP().get_state()


def test_version_1_state_loads_with_dropout_everywhere_and_no_calibration():
    X, y = _data(40)
    m = DropoutMLP(hidden=(6, 5), activation="relu", dropout=0.1, dropout_layers="all", epochs=3, **FAST)
    m.fit(X, y)
    st = {k: v for k, v in m.get_state().items() if k not in ("arch_dropout_layers", "hp_warm_fraction")}
    st["format_version"] = np.array(1)
    r = DropoutMLP.from_state(st)
    assert r.dropout_rates == (0.1, 0.1)
    np.testing.assert_array_equal(r.sample(X, 3, seed=1), m.sample(X, 3, seed=1))
    scale, floor = r.calibration
    assert scale.tolist() == [1.0] and floor.tolist() == [0.0]


def test_predict_with_std_applies_scale_and_floor():
    X, y = _data(60, k=2)
    m = DropoutMLP(hidden=(16, 16), epochs=20, dropout=0.2, **FAST)
    m.fit(X, y)
    raw = m.sample(X, 30, seed=4).std(axis=1)
    mean0, std0 = m.predict_with_std(X, T=30, seed=4)
    np.testing.assert_allclose(std0, raw)                 # uncalibrated: the raw MC std
    np.testing.assert_array_equal(mean0, m.predict(X))
    m.set_calibration([2.0, 0.5], [0.1, 0.0])
    _, std = m.predict_with_std(X, T=30, seed=4)
    np.testing.assert_allclose(std[:, 0], np.sqrt((2 * raw[:, 0]) ** 2 + 0.01))
    np.testing.assert_allclose(std[:, 1], 0.5 * raw[:, 1])
    with pytest.raises(ValueError, match="calibration"):
        m.set_calibration([1.0, -1.0], [0.0, 0.0])


def test_last_layer_dropout_leaves_lower_layers_deterministic():
    X, y = _data(50)
    m = DropoutMLP(hidden=(8, 7), dropout=0.3, dropout_layers="last", epochs=3, **FAST)
    assert m.dropout_rates == (0.0, 0.3)
    m.fit(X, y)
    s = m.sample(X, 20, seed=0, standardised=True)[:, :, 0]        # (n, T)
    (W1, b1), (W2, b2), (W3, b3) = m.member_layers(0)
    h = torch.nn.functional.silu(torch.nn.functional.silu(m._to_tensor_x(X) @ W1.t() + b1) @ W2.t() + b2)
    # every sample is a reweighting of the same last-hidden features: s = (h * mask_t) @ W3 + b3
    masks = torch.tensor(np.linalg.lstsq(h.numpy().astype(np.float64) * W3.numpy()[0],
                                         s - b3.item(), rcond=None)[0])
    assert torch.all((masks.abs() < 1e-3) | ((masks - 1 / 0.7).abs() < 1e-2))


def test_warm_start_preserves_function_then_improves():
    X, y = _data(300)
    m = DropoutMLP(hidden=(32, 32), epochs=40, batch_size=32, seed=0, **FAST)
    m.fit(X[:60], y[:60])
    before = m.predict(X)
    before_s = m.sample(X, 6, seed=2)
    old_mean = m._x_mean.copy()
    # re-standardisation alone (no training) must not change the function in original units
    m2 = DropoutMLP(hidden=(32, 32), epochs=40, seed=0, **FAST)
    m2.load_state(m.get_state())
    from alcore.model.dropout_mlp import _moments

    new = (*_moments(X), *_moments(y[:, None]))
    m2._restandardise(*new)
    m2._x_mean, m2._x_std, m2._y_mean, m2._y_std = new
    np.testing.assert_allclose(m2.predict(X), before, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(m2.sample(X, 6, seed=2), before_s, rtol=1e-4, atol=1e-4)
    # a warm fit refits the normaliser and trains further
    rep = m.fit(X[:250], y[:250], warm_start=True)
    assert rep.warm_start
    assert not np.allclose(m._x_mean, old_mean)
    err_before = np.sqrt(np.mean((before[250:, 0] - y[250:]) ** 2))
    err_after = np.sqrt(np.mean((m.predict(X[250:])[:, 0] - y[250:]) ** 2))
    assert err_after < err_before
    with pytest.raises(ValueError, match="warm_start"):
        m.fit(X[:, :2], y, warm_start=True)


def test_warm_start_on_unfitted_model_trains_fresh():
    X, y = _data(50)
    m = DropoutMLP(hidden=(8,), epochs=3, **FAST)
    assert not m.fit(X, y, warm_start=True).warm_start


def test_ensemble_pools_samples():
    X, y = _data(80)
    m = DropoutMLP(hidden=(16,), epochs=10, n_members=3, seed=0, **FAST)
    rep = m.fit(X, y)
    assert len(rep.member_epochs) == 3
    s = m.sample(X, 10, seed=0)
    assert s.shape == (80, 10, 1)
    st = m.get_state()
    assert "m2_W1" in st and int(st["arch_n_members"]) == 3
    r = DropoutMLP.from_state(st)
    np.testing.assert_array_equal(r.sample(X, 10, seed=0), s)
    np.testing.assert_array_equal(r.predict(X), m.predict(X))
    # members differ, so the pooled predict is a real average
    assert not torch.equal(m.member_layers(0)[0][0], m.member_layers(1)[0][0])


def test_cross_validate_gives_out_of_fold_predictions():
    X, y = _data(90, k=2)
    folds = np.arange(90) % 3
    m = DropoutMLP(hidden=(16, 16), epochs=150, lr=1e-2, dropout=0.1, seed=1, **FAST)
    cv = m.cross_validate(X, y, folds, T=20, seed=0)
    assert cv.pred.shape == (90, 2) and cv.mc_std.shape == (90, 2) and np.all(cv.mc_std > 0)
    assert not m.is_fitted                                          # the model itself is untouched
    # out-of-fold errors are honest: larger than the in-sample errors of a model fitted on all rows
    m.fit(X, y)
    in_sample = np.sqrt(np.mean((m.predict(X) - y) ** 2, axis=0))
    oof = np.sqrt(np.mean((cv.pred - y) ** 2, axis=0))
    assert np.all(oof > in_sample)
    assert np.all(oof < 0.5 * y.std(axis=0))                          # ... but the folds did learn
    with pytest.raises(ValueError, match="folds"):
        m.cross_validate(X, y, np.zeros(90))


@pytest.mark.parametrize("kw, culprit", [
    (dict(hidden=()), "hidden"), (dict(hidden=(0, 3)), "hidden"), (dict(hidden="ab"), "hidden"),
    (dict(activation="sigmoid"), "activation"), (dict(dropout=1.0), "dropout"),
    (dict(dropout=-0.1), "dropout"), (dict(weight_decay=-1), "weight_decay"), (dict(lr=0), "lr"),
    (dict(epochs=0), "epochs"), (dict(batch_size=2.5), "batch_size"), (dict(patience=0), "patience"),
    (dict(val_fraction=0.9), "val_fraction"), (dict(lr_schedule="step"), "lr_schedule"),
    (dict(seed=-1), "seed"), (dict(device="tpu"), "device"), (dict(n_members=0), "n_members"),
    (dict(early_stopping="yes"), "early_stopping"), (dict(dropout_layers="first"), "dropout_layers"),
    (dict(dropout_layers=[0.1]), "dropout_layers"), (dict(warm_fraction=0), "warm_fraction"),
    (dict(min_steps=-1), "min_steps"),
])
def test_constructor_validation(kw, culprit):
    with pytest.raises(ValueError, match=culprit):
        DropoutMLP(**kw)


def test_fit_and_predict_validation():
    X, y = _data(30)
    m = DropoutMLP(hidden=(4,), epochs=2, **FAST)
    with pytest.raises(ValueError, match="rows"):
        m.fit(X, y[:-1])
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        m.fit(Xn, y)
    with pytest.raises(ValueError, match="y contains NaN"):
        m.fit(X, np.where(np.arange(30) == 2, np.inf, y))
    with pytest.raises(RuntimeError, match="not fitted"):
        m.predict(X)
    m.fit(X, y)
    with pytest.raises(ValueError, match="columns"):
        m.predict(X[:, :2])


def test_constant_inputs_and_outputs_do_not_break():
    X, _ = _data(40)
    X[:, 1] = 3.0
    m = DropoutMLP(hidden=(8,), epochs=200, lr=1e-2, **FAST)
    m.fit(X, np.full(40, 2.5))
    assert np.all(np.isfinite(m.predict(X)))
    assert np.allclose(m.predict(X), 2.5, atol=0.2)


def test_training_threads_default_and_user_choice(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    if user_chose_threads():
        pytest.skip("torch's thread count was changed before this test (by the session)")
    with training_threads() as t:
        assert t == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before                       # restored
    monkeypatch.setenv("OMP_NUM_THREADS", str(before))
    assert user_chose_threads()
    with training_threads() as t:
        assert t == before == torch.get_num_threads()              # the user's choice wins
    with training_threads(threads=1) as t:
        assert t == 1
    assert torch.get_num_threads() == before and os.environ["OMP_NUM_THREADS"] == str(before)
