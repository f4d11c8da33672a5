"""MC-dropout sampling: shared masks, inverted-dropout scaling, chunk independence, seeding."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alcore import mc
from alcore.model import DropoutMLP


@pytest.fixture(scope="module")
def model() -> DropoutMLP:
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (80, 3))
    y = np.stack([np.sin(2 * X[:, 0]) + X[:, 1], X[:, 2] ** 2], axis=1)
    m = DropoutMLP(hidden=(16, 12), activation="relu", dropout=0.2, dropout_layers="all", min_steps=0, epochs=20,
                   seed=1, device="cpu")
    m.fit(X, y)
    return m


@pytest.fixture(scope="module")
def X_pool() -> np.ndarray:
    return np.random.default_rng(1).uniform(-1, 1, (50, 3))


def test_shapes_and_units(model, X_pool):
    s = model.sample(X_pool, T=7, seed=3)
    assert s.shape == (50, 7, 2) and s.dtype == np.float64
    z = model.sample(X_pool, T=7, seed=3, standardised=True)
    np.testing.assert_allclose(s, z * model._y_std + model._y_mean, rtol=1e-5, atol=1e-5)


def test_duplicate_rows_get_identical_samples(model, X_pool):
    X = np.vstack([X_pool, X_pool[[4, 4, 17]]])
    s = model.sample(X, T=30, seed=5)
    np.testing.assert_array_equal(s[4], s[50])
    np.testing.assert_array_equal(s[4], s[51])
    np.testing.assert_array_equal(s[17], s[52])


def test_pointwise_masks_differ_for_duplicates(model, X_pool):
    X = np.vstack([X_pool[[4]], X_pool[[4]]])
    s = model.sample(X, T=30, seed=5, shared_masks=False)
    assert not np.allclose(s[0], s[1])


def test_different_samples_differ(model, X_pool):
    s = model.sample(X_pool, T=20, seed=0)
    # every sample is a different thinned network
    per_t = [s[:, t, :].ravel() for t in range(20)]
    for t in range(1, 20):
        assert not np.allclose(per_t[0], per_t[t])
    assert np.all(s.std(axis=1) > 0)


def test_shared_masks_equal_explicit_thinned_networks(model, X_pool):
    """Sample t equals the forward pass of network t with masks applied by hand."""
    T, seed = 6, 11
    layers = model.member_layers(0)
    widths = [W.shape[0] for W, _ in layers[:-1]]
    masks = mc.draw_shared_masks(widths, T, model.dropout, seed)
    Xt = model._to_tensor_x(X_pool)
    got = model.sample(X_pool, T=T, seed=seed, standardised=True)
    for t in range(T):
        h = Xt
        for li, (W, b) in enumerate(layers):
            h = h @ W.t() + b
            if li < len(layers) - 1:
                h = torch.relu(h) * masks[li][t]
        np.testing.assert_allclose(got[:, t, :], h.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shared", [True, False])
def test_seeded_and_chunk_independent(model, X_pool, shared):
    a = model.sample(X_pool, T=9, seed=2, shared_masks=shared)
    b = model.sample(X_pool, T=9, seed=2, shared_masks=shared)
    np.testing.assert_array_equal(a, b)
    for chunk in (1, 7, 64, 1000):
        c = model.sample(X_pool, T=9, seed=2, shared_masks=shared, chunk_size=chunk)
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)
    d = model.sample(X_pool, T=9, seed=3, shared_masks=shared)
    assert not np.allclose(a, d)


@pytest.mark.parametrize("shared", [True, False])
def test_mean_approximates_dropout_off_prediction(shared):
    """Inverted dropout: the sample mean of a linear-after-dropout net equals the dropout-off output."""
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (40, 2))
    m = DropoutMLP(hidden=(32,), dropout=0.3, dropout_layers="all", min_steps=0, epochs=5, seed=0, device="cpu")
    m.fit(X, X[:, 0] - X[:, 1])
    s = m.sample(X, T=4000, seed=1, shared_masks=shared, standardised=True)
    p = m.predict(X, standardised=True)
    # with one hidden layer the output is linear in the mask, so E[sample] = predict exactly
    se = s.std(axis=1) / np.sqrt(s.shape[1])
    assert np.all(np.abs(s.mean(axis=1) - p) < 5 * se + 1e-6)


def test_deeper_network_and_no_dropout():
    rng = np.random.default_rng(4)
    X = rng.uniform(-1, 1, (30, 4))
    m = DropoutMLP(hidden=(8, 8, 8), dropout=0.0, min_steps=0, epochs=3, seed=0, device="cpu", activation="tanh")
    m.fit(X, X.sum(axis=1))
    s = m.sample(X, T=5, seed=0)
    np.testing.assert_allclose(s, np.repeat(m.predict(X)[:, None, :], 5, axis=1), rtol=1e-5, atol=1e-5)
    m2 = DropoutMLP(hidden=(8, 8, 8), dropout=0.2, dropout_layers="all", min_steps=0, epochs=3, seed=0, device="cpu",
                    activation="gelu")
    m2.fit(X, X.sum(axis=1))
    a = m2.sample(X, T=5, seed=0)
    b = m2.sample(X, T=5, seed=0, chunk_size=3)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_chunks_bound_memory():
    assert mc.auto_chunk_size(100, [100, 100], 64 * 2**20) == 64 * 2**20 // (4 * 100 * 100)
    assert mc.auto_chunk_size(10**6, [4096], 1024) == 1
    # a pool far larger than a chunk is processed in several chunks: peak tensor stays bounded
    rng = np.random.default_rng(0)
    m = DropoutMLP(hidden=(20, 20), min_steps=0, epochs=2, seed=0, device="cpu")
    m.fit(rng.uniform(size=(20, 2)), rng.uniform(size=20))
    X = torch.as_tensor(rng.uniform(size=(3000, 2)), dtype=torch.float32)
    calls = []
    orig = torch.addmm

    def spy(*args, **kw):
        out = orig(*args, **kw)
        calls.append(out.numel())
        return out
    torch.addmm = spy
    try:
        mc.mc_forward(m.member_layers(0), "relu", 0.1, X, 50, 0, memory_budget=4 * 50 * 20 * 100)
    finally:
        torch.addmm = orig
    assert max(calls) <= 100 * 50 * 20       # 100 points per chunk
    assert len(calls) >= 3 * 30


def test_bad_arguments(model, X_pool):
    with pytest.raises(ValueError, match="T"):
        model.sample(X_pool, T=0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        model.sample(X_pool, T=3, seed=-1)
    with pytest.raises(ValueError, match="chunk_size"):
        model.sample(X_pool, T=3, seed=0, chunk_size=0)
    with pytest.raises(ValueError, match="columns"):
        model.sample(X_pool[:, :2], T=3, seed=0)
    with pytest.raises(ValueError, match="dtype"):
        model.sample(X_pool, T=3, seed=0, dtype=np.int32)
    with pytest.raises(ValueError, match="activation"):
        mc.activation_fn("sigmoid")


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_dropout_mask_rate_and_scale(p):
    m = mc.dropout_mask((400, 250), p, torch.Generator().manual_seed(0))
    vals = torch.unique(m)
    assert vals.numel() == 2 and vals[0] == 0
    assert vals[1].item() == pytest.approx(1 / (1 - p), rel=1e-4)
    n = m.numel()
    rate = (m == 0).float().mean().item()
    assert abs(rate - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert abs(m.mean().item() - 1.0) < 5 * math.sqrt(p / (1 - p) / n)
    # all four 16-bit lanes of each 64-bit draw are used and unbiased
    lanes = (m.view(-1)[: n - n % 4].view(-1, 4) == 0).float().mean(dim=0)
    assert torch.all((lanes - p).abs() < 6 * math.sqrt(p * (1 - p) / (n / 4)))


def test_unfolded_path_for_tiny_budget_matches(model, X_pool):
    """When T folded weight copies exceed the budget, the elementwise path gives the same result."""
    layers = model.member_layers(0)
    Xt = model._to_tensor_x(X_pool)
    a = mc.mc_forward(layers, "relu", model.dropout, Xt, 8, 4)
    b = mc.mc_forward(layers, "relu", model.dropout, Xt, 8, 4, memory_budget=256)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rates", [(0.0, 0.3), (0.3, 0.0), (0.2, 0.1)])
@pytest.mark.parametrize("shared", [True, False])
def test_per_layer_rates_equal_explicit_thinned_networks(rates, shared):
    """Dropout only where a layer's rate is > 0: sample t is the network with those masks, and
    the deterministic layers before the first stochastic one are shared by every sample."""
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, (70, 3))
    m = DropoutMLP(hidden=(9, 6), activation="tanh", dropout=max(rates), dropout_layers=list(rates), min_steps=0,
                   epochs=5, seed=0, device="cpu")
    m.fit(X, X[:, :2] ** 2)
    assert m.dropout_rates == rates
    T, seed = 5, 3
    got = m.sample(X, T=T, seed=seed, standardised=True, shared_masks=shared)
    layers = m.member_layers(0)
    Xt = m._to_tensor_x(X)
    if shared:
        masks = mc.draw_shared_masks([9, 6], T, rates, seed)
        assert [mk is None for mk in masks] == [p == 0 for p in rates]
        for t in range(T):
            h = Xt
            for li, (W, b) in enumerate(layers):
                h = h @ W.t() + b
                if li < 2:
                    h = torch.tanh(h)
                    if masks[li] is not None:
                        h = h * masks[li][t]
            np.testing.assert_allclose(got[:, t, :], h.numpy(), rtol=1e-4, atol=1e-5)
    else:
        pm = mc._pointwise_masks(0, 70, T, [9, 6], rates, seed, torch.device("cpu"))
        h = torch.tanh(Xt @ layers[0][0].t() + layers[0][1]).unsqueeze(1).expand(70, T, 9)
        h = h * pm[0] if pm[0] is not None else h
        h = torch.tanh(h @ layers[1][0].t() + layers[1][1])
        h = h * pm[1] if pm[1] is not None else h
        np.testing.assert_allclose(got, (h @ layers[2][0].t() + layers[2][1]).numpy(), rtol=1e-4, atol=1e-5)
    assert np.all(got.std(axis=1) > 0)


def test_no_dropout_anywhere_gives_identical_samples():
    rng = np.random.default_rng(8)
    X = rng.uniform(-1, 1, (20, 2))
    m = DropoutMLP(hidden=(5, 4), dropout=0.0, dropout_layers="all", min_steps=0, epochs=2, device="cpu")
    m.fit(X, X[:, 0])
    s = m.sample(X, T=4, seed=0)
    np.testing.assert_allclose(s, np.repeat(m.predict(X)[:, None, :], 4, axis=1), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="one rate per hidden layer"):
        mc.layer_rates([0.1], 2)
