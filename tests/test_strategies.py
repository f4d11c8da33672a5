"""Strategy registry and the beyond-the-paper NNGP strategies against dense references.

Each array-level strategy (``select_ivr``, ``select_lcmd``, ``select_sample``) is compared
with a dense implementation of the same rule written from the kernel matrix of
``np.cov(..., bias=True)`` and dense solves; the registry is exercised end to end with a
real (small) DropoutMLP.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alcore import strategies
from alcore.model import DropoutMLP
from alcore.nngp import posterior_variance, select_batch
from alcore.strategies import AcquisitionContext, Selection, available, select
from alcore.strategies.base import Samples, absolute_reg, draw_samples, top_b
from alcore.strategies.mc_variance import select_mc_variance
from alcore.strategies.nngp_variance import select_nngp
from alcore.strategies.nngp_ivr import select_ivr
from alcore.strategies.nngp_lcmd import select_lcmd
from alcore.strategies.nngp_sample import _STREAM, sampling_keys, select_sample

NAMES = ["random", "mc_variance", "nngp", "nngp_pointwise", "nngp_ivr", "nngp_lcmd", "nngp_sample"]


# ----------------------------------------------------------------------------- dense references
def dense_posterior_cov(cond: np.ndarray, x: np.ndarray, reg: float) -> np.ndarray:
    """Posterior covariance of rows ``x`` given rows ``cond``; (·, T) or (·, T, k) summed over k."""
    if x.ndim == 3:
        return sum(dense_posterior_cov(cond[..., j], x[..., j], reg) for j in range(x.shape[2]))
    s = np.vstack([cond, x])
    k = np.atleast_2d(np.cov(s, bias=True))
    n = cond.shape[0]
    if n == 0:
        return k
    k_xa = k[n:, :n]
    return k[n:, n:] - k_xa @ np.linalg.solve(k[:n, :n] + reg * np.eye(n), k_xa.T)


def samples(seed: int, n: int, p: int, t: int, k: int | None = None, rank: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape_k = () if k is None else (k,)
    z = rng.standard_normal((rank, t) + shape_k)
    w = rng.standard_normal((n + p, rank)) * rng.uniform(0.2, 2.0, size=(n + p, 1))
    s = np.einsum("nr,rt...->nt...", w, z) + 0.3 * rng.standard_normal((n + p, t) + shape_k)
    return s[:n], s[n:]


def dense_ivr(train, pool, b, reg, target=None):
    target = pool if target is None else target
    picks, scores = [], []
    for _ in range(b):
        cond = np.concatenate([train, pool[picks]], axis=0)
        base = np.trace(dense_posterior_cov(cond, target, reg))
        gain = np.full(pool.shape[0], -np.inf)
        for q in range(pool.shape[0]):
            if q not in picks:
                after = np.trace(dense_posterior_cov(np.concatenate([cond, pool[q : q + 1]]), target, reg))
                gain[q] = base - after
        q = int(np.argmax(gain))
        picks.append(q)
        scores.append(gain[q])
    return picks, scores


def dense_lcmd(train, pool, b, reg, kernel):
    n = train.shape[0]
    both = np.concatenate([train, pool], axis=0)
    if kernel == "posterior":
        kmat = dense_posterior_cov(train, both, reg)
    else:
        kmat = dense_posterior_cov(both[:0], both, reg)
    diag = np.diag(kmat)
    d2 = diag[:, None] + diag[None, :] - 2 * kmat
    pool_ids = np.arange(n, n + pool.shape[0])
    if n == 0:
        centres_d = [diag[pool_ids]]  # the origin
    else:
        centres_d = [d2[pool_ids, c] for c in range(n)]
    picks, scores = [], []
    for _ in range(b):
        dist = np.maximum(np.stack(centres_d, axis=1), 0.0)
        closest = np.argmin(dist, axis=1)
        mind = dist[np.arange(len(pool_ids)), closest]
        sizes = [mind[closest == c].sum() for c in range(dist.shape[1])]
        cl = int(np.argmax(sizes))
        cand = np.where(closest == cl, mind, -np.inf)
        cand[picks] = -np.inf
        q = int(np.argmax(cand))
        picks.append(q)
        scores.append(mind[q])
        centres_d.append(d2[pool_ids, n + q])
    return picks, scores


# ----------------------------------------------------------------------------- nngp_ivr
@pytest.mark.parametrize("n, reg", [(8, 0.05), (0, 0.5), (25, 1e-3)])
def test_ivr_matches_dense_reference(n, reg):
    train, pool = samples(n + 1, n, 40, 10)
    sel = select_ivr(train, pool, 7, reg, pool_dtype=np.float64)
    ref_idx, ref_scores = dense_ivr(train, pool, 7, reg)
    assert sel.indices.tolist() == ref_idx
    np.testing.assert_allclose(sel.scores, ref_scores, rtol=1e-6)
    # the float32 default picks the same points
    assert select_ivr(train, pool, 7, reg).indices.tolist() == ref_idx


def test_ivr_float32_screening_decides_near_ties_like_float64():
    rng = np.random.default_rng(8)
    base = rng.standard_normal((100, 16)) @ rng.standard_normal((16, 24)) + 0.3 * rng.standard_normal((100, 24))
    pool = np.vstack([base, base * (1 + 3e-7)])  # twins: gains differ by ~1e-6 relative
    train = rng.standard_normal((10, 24))
    ref = select_ivr(train, pool, 30, 0.01, pool_dtype=np.float64)
    got = select_ivr(train, pool, 30, 0.01)
    assert got.indices.tolist() == ref.indices.tolist()
    np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-6)


def test_ivr_with_separate_target_and_multi_output_matches_dense():
    train, rest = samples(5, 6, 55, 9, k=2)
    pool, target = rest[:35], rest[35:]
    sel = select_ivr(train, pool, 6, 0.05, target, pool_dtype=np.float64)
    ref_idx, ref_scores = dense_ivr(train, pool, 6, 0.05, target)
    assert sel.indices.tolist() == ref_idx
    np.testing.assert_allclose(sel.scores, ref_scores, rtol=1e-6)


def test_ivr_target_changes_the_choice():
    """With the target set far in feature space from most of the pool, IVR follows it."""
    train, pool = samples(6, 5, 40, 10)
    on_pool = select_ivr(train, pool, 3, 0.05).indices
    target = pool[[37, 38, 39]] * 1.0
    on_target = select_ivr(train, pool, 3, 0.05, target).indices
    assert set(on_target.tolist()) & {37, 38, 39}
    assert on_pool.tolist() != on_target.tolist()


def test_ivr_rejects_mismatched_target():
    train, pool = samples(7, 5, 20, 8)
    with pytest.raises(ValueError, match="target"):
        select_ivr(train, pool, 3, 0.1, np.zeros((4, 9)))


# ----------------------------------------------------------------------------- nngp_lcmd
@pytest.mark.parametrize("kernel", ["posterior", "prior"])
@pytest.mark.parametrize("n, reg", [(6, 0.05), (0, 0.1), (20, 1e-2)])
def test_lcmd_matches_dense_reference(kernel, n, reg):
    train, pool = samples(n + 11, n, 50, 10)
    sel = select_lcmd(train, pool, 9, reg, kernel, dtype=np.float64)
    ref_idx, ref_scores = dense_lcmd(train, pool, 9, reg, kernel)
    assert sel.indices.tolist() == ref_idx
    np.testing.assert_allclose(sel.scores, ref_scores, rtol=1e-6, atol=1e-10)


def test_lcmd_multi_output_and_float32_match_dense():
    train, pool = samples(12, 8, 45, 8, k=2)
    ref_idx, ref_scores = dense_lcmd(train, pool, 8, 0.05, "posterior")
    assert select_lcmd(train, pool, 8, 0.05, dtype=np.float64).indices.tolist() == ref_idx
    assert select_lcmd(train, pool, 8, 0.05).indices.tolist() == ref_idx


def test_lcmd_whole_pool_without_duplicates():
    train, pool = samples(13, 4, 30, 6)
    pool = np.vstack([pool, pool[:5]])  # exact duplicates: zero distance once their twin is a centre
    sel = select_lcmd(train, pool, 35, 0.1)
    assert sorted(sel.indices.tolist()) == list(range(35))


# ----------------------------------------------------------------------------- nngp_sample
@pytest.mark.parametrize("beta", [0.0, 1.0, 3.0])
def test_sample_static_matches_dense_rule(beta):
    train, pool = samples(20, 10, 60, 10)
    sel = select_sample(train, pool, 8, 0.05, beta=beta, seed=4)
    v = np.diag(dense_posterior_cov(train, pool, 0.05))
    rng = np.random.default_rng([4, _STREAM])
    keys = beta * np.log(v) + rng.gumbel(size=60)
    assert sel.indices.tolist() == np.argsort(-keys)[:8].tolist()
    np.testing.assert_allclose(sel.scores, v[sel.indices], rtol=1e-5)


def test_sample_greedy_matches_dense_rule():
    train, pool = samples(21, 10, 50, 10)
    sel = select_sample(train, pool, 6, 0.05, beta=2.0, greedy=True, seed=9)
    rng = np.random.default_rng([9, _STREAM])
    picks = []
    for _ in range(6):
        v = np.diag(dense_posterior_cov(np.concatenate([train, pool[picks]]), pool, 0.05))
        keys = 2.0 * np.log(v) + rng.gumbel(size=50)
        keys[picks] = -np.inf
        picks.append(int(np.argmax(keys)))
    assert sel.indices.tolist() == picks


def test_sample_first_pick_frequencies_follow_variance_power():
    """Over many seeds, P(first pick = p) ∝ var_p^β (a chi-square check, 6 points)."""
    train, pool = samples(22, 5, 6, 8)
    beta = 1.5
    v = posterior_variance(train, pool, 0.1)
    prob = v**beta / np.sum(v**beta)
    n_draws = 3000
    counts = np.bincount(
        [select_sample(train, pool, 1, 0.1, beta=beta, seed=s).indices[0] for s in range(n_draws)], minlength=6
    )
    expected = prob * n_draws
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < 25.0  # 5 degrees of freedom: p ≈ 1e-4


def test_sample_beta_validation_and_seeding():
    train, pool = samples(23, 5, 30, 8)
    with pytest.raises(ValueError, match="beta"):
        select_sample(train, pool, 3, 0.1, beta=-1.0)
    a = select_sample(train, pool, 5, 0.1, seed=1).indices
    assert a.tolist() == select_sample(train, pool, 5, 0.1, seed=1).indices.tolist()
    assert any(select_sample(train, pool, 5, 0.1, seed=s).indices.tolist() != a.tolist() for s in range(2, 6))


def test_sampling_keys_zero_variance_is_never_preferred():
    keys = sampling_keys(np.array([0.0, 1.0, 2.0]), 1.0, np.zeros(3))
    assert keys[0] == -np.inf and np.isfinite(keys[1:]).all()


# ----------------------------------------------------------------------------- simple strategies
def test_mc_variance_is_top_b_sample_variance():
    _, pool = samples(30, 0, 40, 12, k=2)
    sel = select_mc_variance(pool, 5)
    v = np.var(pool, axis=1).sum(axis=1)
    assert sel.indices.tolist() == np.argsort(-v)[:5].tolist()
    np.testing.assert_allclose(sel.scores, v[sel.indices])


def test_top_b_breaks_ties_by_index():
    assert top_b(np.array([1.0, 3.0, 3.0, 2.0, 3.0]), 2).tolist() == [1, 2]
    assert top_b(np.array([0.5, 0.5, 0.5]), 3).tolist() == [0, 1, 2]


def test_nngp_non_greedy_is_top_b_posterior_variance():
    train, pool = samples(31, 6, 40, 10)
    v = posterior_variance(train, pool, 0.05)
    sel = select_nngp(train, pool, 5, 0.05, greedy=False)
    assert sel.indices.tolist() == np.argsort(-v)[:5].tolist()
    greedy = select_nngp(train, pool, 5, 0.05)
    assert greedy.indices.tolist() == select_batch(train, pool, 5, 0.05).tolist()


# ----------------------------------------------------------------------------- registry
def test_available_lists_every_strategy_with_a_description():
    names = available()
    assert list(names) == NAMES
    assert all(isinstance(d, str) and d for d in names.values())


def test_unknown_strategy_lists_names_and_close_matches():
    with pytest.raises(ValueError, match=r"did you mean 'nngp_lcmd'.*available: random, mc_variance"):
        strategies.get("nngp_lcdm")


@pytest.fixture(scope="module")
def fitted():
    """A small real DropoutMLP on a 2-output function; pool and train inputs."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (40, 3))
    y = np.stack([np.sin(3 * X[:, 0]) + X[:, 1] ** 2, X[:, 2] * X[:, 0]], axis=1)
    model = DropoutMLP(hidden=(32, 32), dropout=0.2, epochs=40, seed=0)
    model.fit(X, y)
    pool = rng.uniform(-1, 1, (150, 3))
    return model, X, pool


def context(fitted, **kw) -> AcquisitionContext:
    model, X, pool = fitted
    base = dict(model=model, X_train=X, X_pool=pool, batch_size=10, n_samples=30, seed=3)
    base.update(kw)
    return AcquisitionContext(**base)


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_runs_on_a_real_model(fitted, name):
    sel = select(name, context(fitted))
    assert isinstance(sel, Selection)
    assert sel.indices.shape == (10,) == sel.scores.shape
    assert len(set(sel.indices.tolist())) == 10
    assert sel.indices.min() >= 0 and sel.indices.max() < 150
    assert np.all(np.isfinite(sel.scores))
    # seeded: the same context gives the same batch
    assert select(name, context(fitted)).indices.tolist() == sel.indices.tolist()


def test_nngp_samples_train_and_pool_with_the_same_masks(fitted):
    """The strategy equals select_batch on ONE shared-mask call over train + pool."""
    model, X, pool = fitted
    ctx = context(fitted)
    s = model.sample(np.vstack([X, pool]), 30, 3, shared_masks=True, standardised=True)
    reg = 1e-2 * np.var(s, axis=1).mean()  # relative reg: fraction of mean prior variance
    expected = select_batch(s[:40], s[40:], 10, reg)
    assert select("nngp", ctx).indices.tolist() == expected.tolist()
    # a duplicated pool row gets identical samples (shared masks), so NNGP never picks both
    dup_pool = np.vstack([pool, pool[expected[0]][None, :]])
    ds = draw_samples(context(fitted, X_pool=dup_pool))
    np.testing.assert_array_equal(ds.pool[-1], ds.pool[expected[0]])
    sel = select("nngp", context(fitted, X_pool=dup_pool, reg=1e-6))
    assert not {int(expected[0]), 150} <= set(sel.indices.tolist())


def test_pointwise_masks_decorrelate_points(fitted):
    """Per-point masks make the cross-covariance noise: conditioning on n < T training points
    then removes only ~n/T of the pool variance (n random directions in T dimensions), while
    shared masks carry the network's correlations and remove far more."""
    model, X, pool = fitted
    ctx = context(fitted, X_train=X[:10], n_samples=60)
    shared = draw_samples(ctx, shared_masks=True)
    pointwise = draw_samples(ctx, shared_masks=False)

    def kept(s: Samples) -> float:
        reg = 1e-2 * np.var(s.pool, axis=1).mean()
        return float(posterior_variance(s.train, s.pool, reg).sum() / posterior_variance(s.train[:0], s.pool, reg).sum())

    assert kept(pointwise) == pytest.approx(1 - 10 / 60, abs=0.08)
    assert kept(pointwise) > 2 * kept(shared)
    assert select("nngp_pointwise", context(fitted)).indices.tolist() != select("nngp", context(fitted)).indices.tolist()


def test_relative_and_absolute_reg(fitted):
    ctx = context(fitted, reg=0.5)
    s = draw_samples(ctx)
    mean_prior = np.var(np.concatenate([s.train, s.pool]), axis=1).mean()
    assert absolute_reg(ctx, s) == pytest.approx(0.5 * mean_prior, rel=1e-12)
    assert absolute_reg(context(fitted, reg=0.5, reg_relative=False), s) == 0.5


def test_ivr_uses_the_target_set(fitted):
    model, X, pool = fitted
    target = pool[:20] + 0.01
    a = select("nngp_ivr", context(fitted, X_target=target), target="target")
    assert select("nngp_ivr", context(fitted, X_target=target), target="auto").indices.tolist() == a.indices.tolist()
    b = select("nngp_ivr", context(fitted, X_target=target))  # default: the pool
    assert b.indices.tolist() == select("nngp_ivr", context(fitted)).indices.tolist()
    assert a.indices.tolist() != b.indices.tolist()
    with pytest.raises(ValueError, match="X_target"):
        select("nngp_ivr", context(fitted), target="target")


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("nngp", {"greedy": "yes"}, "greedy must be true or false"),
        ("nngp", {"beta": 1.0}, r"unknown parameter\(s\) beta; it accepts: greedy"),
        ("nngp_sample", {"beta": -0.5}, "beta must be a finite float >= 0"),
        ("nngp_lcmd", {"kernel": "rbf"}, "kernel must be one of 'posterior', 'prior'"),
        ("random", {"reg": 0.1}, "it accepts: none"),
    ],
)
def test_bad_parameters_give_clear_errors(fitted, name, params, match):
    with pytest.raises(ValueError, match=match):
        select(name, context(fitted), **params)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("batch_size", 0, "batch_size"),
        ("batch_size", 151, "batch_size"),
        ("n_samples", 1, "n_samples"),
        ("reg", -1.0, "reg"),
        ("seed", -2, "seed"),
        ("X_train", np.zeros((5, 4)), "X_train"),
        ("X_target", np.zeros((5, 2)), "X_target"),
    ],
)
def test_bad_context_gives_clear_errors(fitted, field, value, match):
    with pytest.raises(ValueError, match=match):
        select("nngp", context(fitted, **{field: value}))


# ----------------------------------------------------------------------------- properties
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 10),
    p=st.integers(1, 30),
    t=st.integers(2, 8),
    k=st.sampled_from([None, 2]),
    b=st.integers(1, 30),
    seed=st.integers(0, 2**31 - 1),
    which=st.sampled_from(["ivr", "lcmd", "lcmd_prior", "sample", "sample_greedy"]),
)
def test_array_strategies_return_distinct_valid_picks(n, p, t, k, b, seed, which):
    train, pool = samples(seed, n, p, t, k, rank=min(3, t))
    b = min(b, p)
    sel = {
        "ivr": lambda: select_ivr(train, pool, b, 0.05),
        "lcmd": lambda: select_lcmd(train, pool, b, 0.05),
        "lcmd_prior": lambda: select_lcmd(train, pool, b, 0.05, "prior"),
        "sample": lambda: select_sample(train, pool, b, 0.05, seed=seed),
        "sample_greedy": lambda: select_sample(train, pool, b, 0.05, greedy=True, seed=seed),
    }[which]()
    assert sel.indices.shape == (b,) and len(set(sel.indices.tolist())) == b
    assert 0 <= sel.indices.min() and sel.indices.max() < p
    assert np.all(np.isfinite(sel.scores)) and np.all(sel.scores >= 0.0)
