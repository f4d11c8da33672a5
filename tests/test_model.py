"""DropoutMLP: training, reproducibility, state round trip, warm start, validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alcore.mc import activation_fn
from alcore.model import ACTIVATIONS, DropoutMLP, FitReport, _Net, forward_backward


def _data(n=200, d=3, seed=0, k=1):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, d)) * np.arange(1, d + 1) + 5.0   # unstandardised inputs
    y = np.sin(X[:, 0]) + 0.1 * X[:, 1] ** 2
    if k == 2:
        y = np.stack([y, 100.0 * np.cos(X[:, 0]) + 1000.0], axis=1)  # very different scales
    return X, y


def test_default_constructor_and_fit_report():
    m = DropoutMLP()
    assert m.hidden == (100, 100) and m.activation == "relu" and m.n_members == 1
    X, y = _data(120)
    m = DropoutMLP(min_steps=0, epochs=15, early_stopping=True, device="cpu")
    rep = m.fit(X, y)
    assert isinstance(rep, FitReport)
    assert 1 <= rep.epochs_run <= 15 and rep.n_val == 12 and rep.n_train == 108
    assert rep.train_time_s > 0 and math.isfinite(rep.best_val_loss)
    assert m.predict(X).shape == (120, 1)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_manual_backward_matches_autograd(activation):
    net = _Net([3, 7, 5, 2], torch.device("cpu"))
    net.init(torch.Generator().manual_seed(0), activation)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(11, 3, generator=g), torch.randn(11, 2, generator=g)
    masks = [(torch.rand(11, w, generator=g) > 0.3).float() / 0.7 for w in (7, 5)]
    sse = forward_backward(net, x, y, masks, activation)
    th = net.theta.clone().requires_grad_(True)
    Ws, bs = net._views(th)
    act = activation_fn(activation)
    h = x
    for i in range(2):
        h = act(h @ Ws[i].t() + bs[i]) * masks[i]
    out = h @ Ws[2].t() + bs[2]
    loss = ((out - y) ** 2).mean()
    loss.backward()
    torch.testing.assert_close(net.grad, th.grad, rtol=1e-4, atol=1e-6)
    assert sse.item() == pytest.approx(loss.item() * y.numel(), rel=1e-5)


def test_learns_multi_output_on_original_scale():
    X, y = _data(400, k=2)
    m = DropoutMLP(hidden=(32, 32), min_steps=0, epochs=150, seed=0, device="cpu")
    m.fit(X[:300], y[:300])
    p = m.predict(X[300:])
    assert p.shape == (100, 2)
    for j in range(2):
        rmse = np.sqrt(np.mean((p[:, j] - y[300:, j]) ** 2))
        assert rmse < 0.35 * y[300:, j].std()


def test_reproducible_and_seed_dependent():
    X, y = _data(100)
    kw = dict(hidden=(16, 16), epochs=10, min_steps=0, device="cpu")
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
    m = DropoutMLP(hidden=(64, 64), dropout=0.0, weight_decay=0.0, lr=3e-3, min_steps=0, epochs=400, patience=20,
                   lr_schedule="none", early_stopping=True, seed=0, device="cpu")
    rep = m.fit(X, y, progress=lambda e, n, tl, vl: seen.append((e, n, tl, vl)))
    assert rep.stopped_early and rep.epochs_run < 400
    assert rep.epochs_run == rep.best_epoch + 20
    assert [s[0] for s in seen] == list(range(1, rep.epochs_run + 1)) and seen[0][1] == 400
    best_val = min(s[3] for s in seen)
    assert rep.best_val_loss == pytest.approx(best_val)
    assert seen[rep.best_epoch - 1][3] == pytest.approx(best_val)
    # the restored weights reproduce the best validation loss, not the last one
    n_val = rep.n_val
    perm = np.random.default_rng(__import__("alcore.model", fromlist=["x"])._seed_int(0, 0, 1, 60)).permutation(60)
    vi = perm[:n_val]
    pv = m.predict(X[vi], standardised=True)
    yv = (y[vi] - m._y_mean) / m._y_std
    assert np.mean((pv[:, 0] - yv) ** 2) == pytest.approx(best_val, rel=1e-3)
    assert seen[-1][3] > best_val


def test_no_early_stopping_runs_all_epochs():
    X, y = _data(50)
    m = DropoutMLP(hidden=(8,), min_steps=0, epochs=7, early_stopping=False, device="cpu")
    rep = m.fit(X, y)
    assert rep.epochs_run == 7 and rep.n_val == 0 and math.isnan(rep.best_val_loss)


def test_state_round_trip_plain_arrays():
    X, y = _data(80, k=2)
    m = DropoutMLP(hidden=(12, 9), activation="silu", dropout=0.25, min_steps=0, epochs=5, seed=2, device="cpu")
    m.fit(X, y)
    st = m.get_state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in st.values())
    assert st["arch_hidden"].tolist() == [12, 9]
    r = DropoutMLP.from_state({k: v.copy() for k, v in st.items()})
    assert r.activation == "silu" and r.dropout == 0.25 and r.hidden == (12, 9)
    np.testing.assert_array_equal(r.predict(X), m.predict(X))
    np.testing.assert_array_equal(r.sample(X, 4, seed=7), m.sample(X, 4, seed=7))
    with pytest.raises(ValueError, match="norm_x_std"):
        DropoutMLP.from_state({k: v for k, v in st.items() if k != "norm_x_std"})
    with pytest.raises(ValueError, match="arch_hidden"):
        DropoutMLP(hidden=(12, 10), activation="silu").load_state(st)
    with pytest.raises(RuntimeError, match="not fitted"):
        DropoutMLP().get_state()


def test_warm_start_preserves_function_then_improves():
    X, y = _data(300)
    m = DropoutMLP(hidden=(32, 32), min_steps=0, epochs=40, seed=0, device="cpu")
    m.fit(X[:60], y[:60])
    before = m.predict(X)
    before_s = m.sample(X, 6, seed=2)
    old_mean = m._x_mean.copy()
    # re-standardisation alone (no training) must not change the function in original units
    m2 = DropoutMLP(hidden=(32, 32), min_steps=0, epochs=40, seed=0, device="cpu")
    m2.load_state(m.get_state())
    for net in m2._nets:
        m2._restandardise(net, *m2._moments(X), *m2._moments(y[:, None]))
    m2._x_mean, m2._x_std, m2._y_mean, m2._y_std = *m2._moments(X), *m2._moments(y[:, None])
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
    m = DropoutMLP(hidden=(8,), min_steps=0, epochs=3, device="cpu")
    assert not m.fit(X, y, warm_start=True).warm_start


def test_ensemble_pools_samples():
    X, y = _data(80)
    m = DropoutMLP(hidden=(16,), min_steps=0, epochs=10, n_members=3, seed=0, device="cpu")
    rep = m.fit(X, y)
    assert len(rep.member_epochs) == 3
    s = m.sample(X, 10, seed=0)
    assert s.shape == (80, 10, 1)
    preds = [DropoutMLP.predict(m, X)]
    st = m.get_state()
    assert "m2_W1" in st and int(st["arch_n_members"]) == 3
    r = DropoutMLP.from_state(st)
    np.testing.assert_array_equal(r.sample(X, 10, seed=0), s)
    np.testing.assert_array_equal(r.predict(X), preds[0])
    # members differ, so the pooled predict is a real average
    single = [m._nets[j] for j in range(3)]
    assert not torch.equal(single[0].theta, single[1].theta)


@pytest.mark.parametrize("kw, culprit", [
    (dict(hidden=()), "hidden"), (dict(hidden=(0, 3)), "hidden"), (dict(hidden="ab"), "hidden"),
    (dict(activation="sigmoid"), "activation"), (dict(dropout=1.0), "dropout"),
    (dict(dropout=-0.1), "dropout"), (dict(weight_decay=-1), "weight_decay"), (dict(lr=0), "lr"),
    (dict(epochs=0), "epochs"), (dict(batch_size=2.5), "batch_size"), (dict(patience=0), "patience"),
    (dict(val_fraction=0.9), "val_fraction"), (dict(lr_schedule="step"), "lr_schedule"),
    (dict(seed=-1), "seed"), (dict(device="tpu"), "device"), (dict(n_members=0), "n_members"),
    (dict(early_stopping="yes"), "early_stopping"),
])
def test_constructor_validation(kw, culprit):
    with pytest.raises(ValueError, match=culprit):
        DropoutMLP(**kw)


def test_fit_and_predict_validation():
    X, y = _data(30)
    m = DropoutMLP(hidden=(4,), min_steps=0, epochs=2, device="cpu")
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
    m = DropoutMLP(hidden=(8,), min_steps=0, epochs=200, lr=1e-2, early_stopping=False, device="cpu")
    m.fit(X, np.full(40, 2.5))
    assert np.all(np.isfinite(m.predict(X)))
    assert np.allclose(m.predict(X), 2.5, atol=0.2)


def test_min_steps_raises_epochs_for_small_data():
    X, y = _data(50)
    seen = []
    m = DropoutMLP(hidden=(8,), epochs=5, min_steps=40, batch_size=10, early_stopping=False, device="cpu")
    assert m.epochs_for(50) == 8 and m.epochs_for(1000) == 5
    rep = m.fit(X, y, progress=lambda e, n, tl, vl: seen.append(n))
    assert rep.epochs_run == 8 and set(seen) == {8}
    assert int(m.get_state()["hp_min_steps"]) == 40
    assert DropoutMLP.from_state(m.get_state()).min_steps == 40
    with pytest.raises(ValueError, match="min_steps"):
        DropoutMLP(min_steps=-1)
