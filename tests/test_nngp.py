"""Exactness of the low-rank NNGP core against dense O(P²) references.

The references are written independently of alcore.nngp: the kernel comes from
``np.cov(..., bias=True)`` (the empirical covariance divided by T) and the posterior from a
dense linear solve on the (n + picks)² training block.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alcore.nngp import FeatureSystem, features, greedy_batch, posterior_variance, select_batch


# ----------------------------------------------------------------------------- references
def dense_posterior_cov(cond: np.ndarray, x: np.ndarray, reg: float) -> np.ndarray:
    """Dense posterior covariance of rows ``x`` given rows ``cond`` (single output, (·, T))."""
    s = np.vstack([cond, x])
    k = np.atleast_2d(np.cov(s, bias=True))
    n = cond.shape[0]
    if n == 0:
        return k
    k_aa = k[:n, :n] + reg * np.eye(n)
    k_xa = k[n:, :n]
    return k[n:, n:] - k_xa @ np.linalg.solve(k_aa, k_xa.T)


def dense_variance(cond: np.ndarray, x: np.ndarray, reg: float) -> np.ndarray:
    """Posterior variance summed over outputs; arrays (·, T) or (·, T, k)."""
    if cond.ndim == 2:
        return np.diag(dense_posterior_cov(cond, x, reg)).copy()
    return sum(np.diag(dense_posterior_cov(cond[..., j], x[..., j], reg)) for j in range(x.shape[2]))


def dense_greedy(train: np.ndarray, pool: np.ndarray, b: int, reg: float) -> tuple[list[int], list[float]]:
    picks: list[int] = []
    scores: list[float] = []
    for _ in range(b):
        cond = np.concatenate([train, pool[picks]], axis=0)
        v = dense_variance(cond, pool, reg)
        v[picks] = -np.inf
        q = int(np.argmax(v))
        picks.append(q)
        scores.append(float(v[q]))
    return picks, scores


def correlated_samples(rng: np.random.Generator, n: int, t: int, k: int | None = None, rank: int = 6) -> np.ndarray:
    """Samples with a low-rank shared structure (like a thinned network) plus noise."""
    shape_k = () if k is None else (k,)
    z = rng.standard_normal((rank, t) + shape_k)
    w = rng.standard_normal((n, rank))
    s = np.einsum("nr,rt...->nt...", w, z) + 0.3 * rng.standard_normal((n, t) + shape_k)
    return s + rng.standard_normal((n, 1) + shape_k) * 5.0  # per-point offsets: centring must remove them


# ----------------------------------------------------------------------------- features
def test_features_give_the_empirical_covariance():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((30, 12))
    phi = features(s)[0]
    np.testing.assert_allclose(phi @ phi.T, np.cov(s, bias=True), rtol=1e-10, atol=1e-12)
    # rank <= T - 1 after centring
    assert np.linalg.matrix_rank(phi @ phi.T) <= 11


def test_feature_system_rank1_update_matches_fresh_inverse():
    rng = np.random.default_rng(1)
    phi = features(rng.standard_normal((25, 8)))
    system = FeatureSystem(phi[:, :10], reg=0.05)
    for i in range(10, 25):
        system.add(0, phi[0, i])
    fresh = FeatureSystem(phi, reg=0.05)
    np.testing.assert_allclose(system.minv, fresh.minv, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- posterior variance
@pytest.mark.parametrize("reg", [1e-3, 0.1, 10.0])
@pytest.mark.parametrize("n", [0, 1, 7, 40])  # 40 > T: more training points than features
def test_posterior_variance_matches_dense(reg, n):
    rng = np.random.default_rng(n)
    t = 16
    s = correlated_samples(rng, n + 60, t)
    train, pool = s[:n], s[n:]
    np.testing.assert_allclose(posterior_variance(train, pool, reg), dense_variance(train, pool, reg), rtol=1e-6)


def test_posterior_variance_multi_output_is_the_sum():
    rng = np.random.default_rng(3)
    s = correlated_samples(rng, 70, 14, k=3)
    train, pool = s[:20], s[20:]
    got = posterior_variance(train, pool, 0.02)
    np.testing.assert_allclose(got, dense_variance(train, pool, 0.02), rtol=1e-6)
    per = [posterior_variance(train[..., j], pool[..., j], 0.02) for j in range(3)]
    np.testing.assert_allclose(got, np.sum(per, axis=0), rtol=1e-12)


def test_posterior_variance_of_duplicated_training_point_is_small():
    rng = np.random.default_rng(4)
    s = correlated_samples(rng, 30, 10)
    v = posterior_variance(s[:5], s[:5], reg=1e-6)
    prior = np.var(s[:5], axis=1)
    assert np.all(v < 1e-4 * prior)


def test_chunking_does_not_change_results():
    rng = np.random.default_rng(5)
    s = correlated_samples(rng, 200, 10, k=2)
    phi = features(s)
    np.testing.assert_array_equal(features(s, chunk_size=7), phi)
    system = FeatureSystem(phi[:, :20], 0.1)
    np.testing.assert_allclose(system.quadratic(phi, chunk_size=7), system.quadratic(phi), rtol=1e-12)


@pytest.mark.parametrize(
    "train, pool, reg, match",
    [
        (np.zeros((3, 5)), np.zeros((4, 6)), 0.1, "T=5"),
        (np.zeros((3, 5, 2)), np.zeros((4, 5, 3)), 0.1, "k=2"),
        (np.zeros((3, 5)), np.zeros((4, 5)), 0.0, "reg"),
        (np.zeros((3, 5)), np.zeros((4, 5)), float("nan"), "reg"),
        (np.zeros((3,)), np.zeros((4, 5)), 0.1, "train"),
        (np.zeros((3, 1)), np.zeros((4, 1)), 0.1, "T >= 2"),
        (np.zeros((3, 5)), np.full((4, 5), np.inf), 0.1, "pool contains a non-finite"),
        (np.zeros((3, 5)), np.zeros((0, 5)), 0.1, "pool is empty"),
    ],
)
def test_bad_input_gives_one_clear_error(train, pool, reg, match):
    with pytest.raises(ValueError, match=match):
        posterior_variance(train, pool, reg)


# ----------------------------------------------------------------------------- greedy selection
@pytest.mark.parametrize("pool_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reg, n, b", [(0.05, 10, 12), (1e-3, 30, 25), (1.0, 0, 8)])
def test_select_batch_matches_dense_greedy(pool_dtype, reg, n, b):
    rng = np.random.default_rng(int(reg * 1000) + n)
    t = 12  # b > t in one case: the greedy continues past the rank of the kernel
    s = correlated_samples(rng, n + 80, t)
    train, pool = s[:n], s[n:]
    idx, scores = greedy_batch(train, pool, b, reg, pool_dtype=pool_dtype)
    ref_idx, ref_scores = dense_greedy(train, pool, b, reg)
    assert idx.tolist() == ref_idx
    rtol = 1e-6 if pool_dtype is np.float64 else 1e-3
    np.testing.assert_allclose(scores, ref_scores, rtol=rtol)


def test_float32_screening_decides_near_ties_in_float64():
    """Twins whose variances differ by 6e-7 (relative) under a 2000x prior/posterior ratio:
    float32 rounding alone misorders them; the error bounds send them to an exact check."""
    rng = np.random.default_rng(21)
    base = rng.standard_normal((150, 16)) @ rng.standard_normal((16, 24)) + 0.3 * rng.standard_normal((150, 24))
    pool = np.vstack([base, base * (1 + 3e-7)])
    train = rng.standard_normal((10, 24))
    ref_idx, _ = dense_greedy(train, pool, 40, 0.01)
    assert select_batch(train, pool, 40, 0.01).tolist() == ref_idx
    assert select_batch(train, pool, 40, 0.01, pool_dtype=np.float64).tolist() == ref_idx


def test_select_batch_multi_output_matches_dense_greedy():
    rng = np.random.default_rng(11)
    s = correlated_samples(rng, 90, 10, k=2)
    train, pool = s[:15], s[15:]
    idx, scores = greedy_batch(train, pool, 10, 0.05, pool_dtype=np.float64)
    ref_idx, ref_scores = dense_greedy(train, pool, 10, 0.05)
    assert idx.tolist() == ref_idx
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)


def test_select_batch_whole_pool_without_duplicates():
    rng = np.random.default_rng(12)
    s = correlated_samples(rng, 40, 6)
    idx = select_batch(s[:5], s[5:], 35, 0.1)
    assert sorted(idx.tolist()) == list(range(35))


def test_select_batch_skips_duplicate_of_a_pick():
    """A second copy of a picked point has almost no variance left: greedy moves elsewhere."""
    rng = np.random.default_rng(13)
    s = correlated_samples(rng, 50, 10)
    pool = s[10:].copy()
    pool[3] *= 10.0  # by far the largest variance: picked first
    pool = np.vstack([pool, pool[3:4]])
    idx = select_batch(s[:10], pool, 8, 1e-4)
    assert idx[0] == 3
    assert pool.shape[0] - 1 not in idx.tolist()


@pytest.mark.parametrize("b", [0, 81, 2.0, True])
def test_select_batch_rejects_bad_batch_size(b):
    rng = np.random.default_rng(14)
    s = rng.standard_normal((90, 5))
    with pytest.raises(ValueError, match="batch_size"):
        select_batch(s[:10], s[10:], b, 0.1)


# ----------------------------------------------------------------------------- properties
sample_arrays = st.tuples(
    st.integers(min_value=0, max_value=12),  # n
    st.integers(min_value=2, max_value=25),  # P
    st.integers(min_value=2, max_value=10),  # T
    st.integers(min_value=0, max_value=2**31 - 1),  # seed
    st.sampled_from([1e-4, 1e-2, 1.0]),  # reg
)

_settings = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(sample_arrays)
def test_variance_nonnegative_and_at_most_prior(args):
    n, p, t, seed, reg = args
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((n + p, t)) * rng.uniform(0.1, 10)
    v = posterior_variance(s[:n], s[n:], reg)
    prior = np.var(s[n:], axis=1)
    assert np.all(v >= 0.0)
    assert np.all(v <= prior * (1 + 1e-9) + 1e-15)


@_settings
@given(sample_arrays)
def test_variance_non_increasing_as_conditioning_set_grows(args):
    n, p, t, seed, reg = args
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((n + 1 + p, t))
    before = posterior_variance(s[:n], s[n + 1 :], reg)
    after = posterior_variance(s[: n + 1], s[n + 1 :], reg)
    assert np.all(after <= before * (1 + 1e-9) + 1e-15)


@_settings
@given(sample_arrays)
def test_variance_invariant_to_per_point_offsets(args):
    n, p, t, seed, reg = args
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((n + p, t))
    shifted = s + rng.normal(0, 100, size=(n + p, 1))
    np.testing.assert_allclose(
        posterior_variance(shifted[:n], shifted[n:], reg), posterior_variance(s[:n], s[n:], reg), rtol=1e-6, atol=1e-12
    )


@_settings
@given(sample_arrays, st.integers(min_value=1, max_value=25))
def test_select_batch_returns_distinct_valid_indices(args, b):
    n, p, t, seed, reg = args
    b = min(b, p)
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((n + p, t))
    idx, scores = greedy_batch(s[:n], s[n:], b, reg)
    assert idx.shape == (b,) and len(set(idx.tolist())) == b
    assert idx.min() >= 0 and idx.max() < p
    assert np.all(scores >= 0.0)
    # greedy variances only fall as the batch grows
    assert np.all(np.diff(scores) <= 1e-9 * scores[0] + 1e-15)


def test_solve_then_update_is_add():
    """IVR's split of the rank-1 step (solve, read M⁻¹, update) gives add's M⁻¹ exactly."""
    rng = np.random.default_rng(3)
    phi = features(rng.standard_normal((30, 12, 2)))
    one, two = FeatureSystem(phi[:, :10], 0.05), FeatureSystem(phi[:, :10], 0.05)
    for q in range(10, 15):
        for j in range(2):
            u1, a1 = one.add(j, phi[j, q])
            u2, a2 = two.solve(j, phi[j, q])
            two.update(j, u2, a2)
            np.testing.assert_array_equal(u1, u2)
            assert a1 == a2
    np.testing.assert_array_equal(one.minv, two.minv)


def test_float32_screen_bounds_the_float32_dot_products():
    """The one rounding-error model: |φ_pᵀv (float32) - φ_pᵀv (exact)| <= dot_error(v)."""
    from alcore.nngp import Float32Screen

    rng = np.random.default_rng(4)
    samples = rng.standard_normal((500, 64, 1)) * 1e3
    phi32 = features(samples, np.float32)
    screen = Float32Screen(phi32, samples)
    assert screen.active
    v = rng.standard_normal(64)
    got = (phi32[0] @ v.astype(np.float32)).astype(np.float64)
    exact = screen.exact_features(np.arange(500))[0] @ v
    err = np.abs(got - exact)
    assert err.max() > 0  # float32 really rounds here
    assert np.all(err <= screen.dot_error(0, v) + 1e-300)
    assert not Float32Screen(features(samples), samples).active  # float64 features: no screening
