"""Example-weight providers: class-rank, inverse-frequency and Gaussian-KDE weights."""

import math

import numpy as np
import pytest
from sklearn.neighbors import KernelDensity

from keras_ssl_lt.rwsam.weights import (
    class_rank_weights,
    inverse_frequency_weights,
    kde_bandwidth,
    kde_density,
    kde_weights,
    normalize_clip,
)


# ---------------------------------------------------------------------------------------------
# class-based weights
# ---------------------------------------------------------------------------------------------
def test_class_rank_weights_hand_computed():
    labels = np.array([2, 0, 1, 1, 2, 2, 0, 2])  # counts: c0=2, c1=2, c2=4
    # ranks: class 2 -> 0, class 0 -> 1 (tie with class 1, smaller id first), class 1 -> 2
    expected = np.array([1.0, 3.0, 9.0, 9.0, 1.0, 1.0, 3.0, 1.0], dtype=np.float32)
    w = class_rank_weights(labels, base=3.0)
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, expected)
    # explicit order overrides the counts
    w = class_rank_weights(labels, base=3.0, class_order=[0, 1, 2])
    np.testing.assert_array_equal(w, [9.0, 1.0, 3.0, 3.0, 9.0, 9.0, 1.0, 9.0])
    # counts of a larger set rank the classes instead of the counts in `labels`
    w = class_rank_weights(labels, base=3.0, class_counts=[10, 50, 30])
    np.testing.assert_array_equal(w, [3.0, 9.0, 1.0, 1.0, 3.0, 3.0, 9.0, 3.0])


def test_class_rank_weights_cifar10_lt_like():
    # CIFAR-10-LT exponential profile, r=0.01 (counts from the paper), shuffled.
    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    labels = np.repeat(np.arange(10), counts)
    labels = np.random.default_rng(0).permutation(labels)
    w = class_rank_weights(labels, base=1.2)
    np.testing.assert_allclose(w, 1.2 ** labels.astype(np.float64), rtol=1e-6)
    assert w[labels == 9][0] == pytest.approx(1.2**9, rel=1e-6)
    # ImageNet-LT-style: classes given in frequency order explicitly
    w2 = class_rank_weights(labels, base=1.005, class_order=np.arange(10))
    np.testing.assert_allclose(w2, 1.005 ** labels.astype(np.float64), rtol=1e-6)
    # relabelled classes: rank follows frequency, not id
    perm = np.array([3, 7, 0, 9, 1, 2, 8, 4, 6, 5])
    w3 = class_rank_weights(perm[labels], base=1.2)
    np.testing.assert_allclose(w3, w, rtol=1e-6)


def test_inverse_frequency_weights_hand_computed():
    labels = np.array([0, 0, 0, 1, 2, 2])
    # n^-1: 1/3, 1/3, 1/3, 1, 1/2, 1/2 ; mean = 3/6 ... = (1 + 1 + 1) / 6 = 0.5
    np.testing.assert_allclose(inverse_frequency_weights(labels), [2 / 3, 2 / 3, 2 / 3, 2, 1, 1], rtol=1e-6)
    # power 0.5: 3^-.5, 1, 2^-.5, normalised by their mean
    raw = np.array([3**-0.5] * 3 + [1.0] + [2**-0.5] * 2)
    np.testing.assert_allclose(inverse_frequency_weights(labels, power=0.5), raw / raw.mean(), rtol=1e-6)
    np.testing.assert_array_equal(inverse_frequency_weights(labels, power=0.0), np.ones(6))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: class_rank_weights([0, 1], base=0.0), "base"),
        (lambda: class_rank_weights([0, 1], base=-1.2), "base"),
        (lambda: class_rank_weights([[0, 1]]), "labels"),
        (lambda: class_rank_weights([0.5, 1.0]), "labels"),
        (lambda: class_rank_weights([0, 1, 2], class_order=[0, 1]), "class_order"),
        (lambda: class_rank_weights([0, 1], class_order=[0, 0, 1]), "class_order"),
        (lambda: class_rank_weights([0, 1, 2], class_counts=[1, 2]), "class_counts"),
        (lambda: class_rank_weights([0, 1], class_order=[0, 1], class_counts=[1, 2]), "at most"),
        (lambda: inverse_frequency_weights([0, 1], power=-1), "power"),
        (lambda: inverse_frequency_weights([-1, 1]), "labels"),
    ],
)
def test_class_weights_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# KDE against sklearn
# ---------------------------------------------------------------------------------------------
def _sk_log_density(x, h, ref=None, normalize=True):
    x = np.asarray(x, np.float64)
    ref = x if ref is None else np.asarray(ref, np.float64)
    if normalize:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    return KernelDensity(kernel="gaussian", bandwidth=h).fit(ref).score_samples(x)


@pytest.fixture(scope="module")
def feats():
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 8)).astype(np.float32)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("chunk_size", [1024, 64])
def test_kde_density_matches_sklearn(feats, normalize, chunk_size):
    h = kde_bandwidth(feats, "scott", normalize=normalize)
    p = kde_density(feats, bandwidth="scott", normalize=normalize, chunk_size=chunk_size)
    ref = np.exp(_sk_log_density(feats, h, normalize=normalize))
    np.testing.assert_allclose(p, ref, rtol=1e-4)
    logp = kde_density(feats, bandwidth=h, normalize=normalize, chunk_size=chunk_size, return_log=True)
    np.testing.assert_allclose(logp, np.log(ref), atol=1e-4, rtol=0)


def test_kde_density_with_reference_set(feats):
    rng = np.random.default_rng(1)
    # same sizes as `feats` so the (JAX) per-shape op compilations are shared between tests
    ref = (rng.normal(size=(300, 8)) * 1.5 + 0.3).astype(np.float32)
    h = 0.8
    p = kde_density(feats[:250], bandwidth=h, reference=ref, normalize=False, chunk_size=64)
    np.testing.assert_allclose(p, np.exp(_sk_log_density(feats[:250], h, ref, normalize=False)), rtol=1e-4)
    # a named rule is computed on the reference set
    p = kde_density(feats, bandwidth="silverman", reference=ref, normalize=True, chunk_size=64)
    h = kde_bandwidth(ref, "silverman", normalize=True)
    np.testing.assert_allclose(p, np.exp(_sk_log_density(feats, h, ref)), rtol=1e-4)


def test_kde_density_leave_one_out(feats):
    h = 0.3
    logp = kde_density(feats, bandwidth=h, exclude_self=True, return_log=True, chunk_size=64)
    # leave-one-out from the full estimate: (n p_i - K_h(0)) / (n - 1)
    n, d = feats.shape
    full = np.exp(_sk_log_density(feats, h))
    k0 = (2 * math.pi * h * h) ** (-d / 2)
    expected = (n * full - k0) / (n - 1)
    np.testing.assert_allclose(np.exp(logp), expected, rtol=1e-4)


def test_kde_log_density_in_high_dimension():
    # 512-d: the density itself over/underflows float64; the log stays finite and matches sklearn.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 512)).astype(np.float32)
    h = kde_bandwidth(x, "median")
    logp = kde_density(x, bandwidth=h, return_log=True, chunk_size=16)
    assert np.all(np.isfinite(logp))
    np.testing.assert_allclose(logp, _sk_log_density(x, h), rtol=1e-5)


@pytest.mark.parametrize("h", [0.1, 0.4, 1.0])
@pytest.mark.parametrize("exclude_self", [True, False])
def test_kde_log_density_narrow_kernels_match_float64(h, exclude_self):
    # 64-d unit rows. Left out of its own sum, a point's kernel terms all underflow float32 with h = 0.1
    # (exp(-100)), and its own term outweighs all the others with h = 0.4: both take the max-shifted path;
    # the other cases take the plain sum of `exp`.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 64)).astype(np.float32)
    logp = kde_density(x, bandwidth=h, exclude_self=exclude_self, return_log=True, chunk_size=64)
    u = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    d2 = np.maximum(np.sum(u * u, 1)[:, None] + np.sum(u * u, 1)[None, :] - 2 * u @ u.T, 0.0)
    logits = -d2 / (2 * h * h)
    if exclude_self:
        np.fill_diagonal(logits, -np.inf)
    top = logits.max(axis=1)
    lse = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
    expected = lse - math.log(len(x) - exclude_self) - 32 * math.log(2 * math.pi * h * h)
    assert np.all(np.isfinite(logp))
    np.testing.assert_allclose(logp, expected, rtol=1e-5, atol=1e-4)


def test_bandwidth_rules_formulas(feats):
    x = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    n, d = x.shape
    sigma = np.mean(np.std(x.astype(np.float64), axis=0, ddof=1))
    assert kde_bandwidth(feats, "scott") == pytest.approx(sigma * n ** (-1 / (d + 4)), rel=1e-6)
    assert kde_bandwidth(feats, "silverman") == pytest.approx(sigma * (n * (d + 2) / 4) ** (-1 / (d + 4)), rel=1e-6)
    dist = np.linalg.norm(x[:, None, :].astype(np.float64) - x[None, :, :], axis=-1)
    med = np.median(dist[np.triu_indices(n, 1)])
    assert kde_bandwidth(feats, "median") == pytest.approx(med, rel=1e-6)
    # subsampled median: deterministic for a seed, close to the full median
    h1 = kde_bandwidth(feats, "median", max_samples=100, seed=3)
    assert h1 == kde_bandwidth(feats, "median", max_samples=100, seed=3)
    assert h1 == pytest.approx(med, rel=0.1)
    assert kde_bandwidth(feats, 0.25) == 0.25


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bandwidth": 0.0}, "bandwidth"),
        ({"bandwidth": -1.0}, "bandwidth"),
        ({"bandwidth": "rot"}, "bandwidth"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"exclude_self": True, "reference": np.ones((3, 8), np.float32)}, "exclude_self"),
        ({"reference": np.ones((3, 5), np.float32)}, "reference"),
    ],
)
def test_kde_density_validation(feats, kwargs, match):
    with pytest.raises(ValueError, match=match):
        kde_density(feats, **kwargs)


def test_kde_bad_features():
    x = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="features"):
        kde_density(x[0])
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="features"):
        kde_density(bad)
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="features"):
        kde_weights(bad)
    zero = x.copy()
    zero[4] = 0
    with pytest.raises(ValueError, match="all-zero"):
        kde_weights(zero)
    with pytest.raises(ValueError, match="identical"):
        kde_bandwidth(np.ones((5, 3)), "scott", normalize=False)


# ---------------------------------------------------------------------------------------------
# KDE weights
# ---------------------------------------------------------------------------------------------
def _cluster_with_outliers(seed=0):
    # 8-d and 300 rows like `feats`, so the (JAX) per-shape op compilations are shared
    rng = np.random.default_rng(seed)
    dense = rng.normal(scale=0.05, size=(280, 8)) + np.eye(8)[0] * 3
    sparse = rng.normal(scale=1.0, size=(20, 8))
    return np.concatenate([dense, sparse]).astype(np.float32)


@pytest.mark.parametrize("bandwidth", ["median", "scott", 0.5])
def test_kde_weights_rare_points_weigh_more(bandwidth):
    x = _cluster_with_outliers()
    w = kde_weights(x, bandwidth=bandwidth, clip=(0.1, 10.0), chunk_size=64)
    assert w.dtype == np.float32 and w.shape == (300,)
    assert float(np.mean(w, dtype=np.float64)) == pytest.approx(1.0, abs=1e-5)
    assert w.min() >= np.float32(0.1) and w.max() <= np.float32(10.0)
    assert w[280:].mean() > 2 * w[:280].mean()
    assert np.median(w[280:]) > np.max(w[:280])


def test_kde_weights_formula_unclipped_and_clipped():
    x = _cluster_with_outliers(1)
    h, power = 0.4, 0.7
    logp = kde_density(x, bandwidth=h, exclude_self=True, return_log=True, chunk_size=64)
    w = kde_weights(x, bandwidth=h, power=power, clip=None, chunk_size=64)
    raw = np.exp(-power * (logp - logp.mean()))
    np.testing.assert_allclose(w, raw / raw.mean(), rtol=1e-5)
    # clipped: mean 1, inside the clip, and the unclipped entries keep the ratios of raw
    lo, hi = 0.5, 3.0
    wc = kde_weights(x, bandwidth=h, power=power, clip=(lo, hi), chunk_size=64)
    assert float(np.mean(wc, dtype=np.float64)) == pytest.approx(1.0, abs=1e-5)
    assert wc.min() >= lo and wc.max() <= hi
    free = (wc > lo * (1 + 1e-5)) & (wc < hi * (1 - 1e-5))
    assert free.sum() > 10 and (wc >= hi * (1 - 1e-5)).any()
    ratio = wc[free] / raw[free]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)
    # every point the unclipped weights put below/above the bounds is clipped there
    assert np.all(wc[raw * ratio[0] <= lo] == np.float32(lo))
    assert np.all(wc[raw * ratio[0] >= hi] == np.float32(hi))
    # power 0: all ones
    ones = kde_weights(x, bandwidth=h, power=0.0, chunk_size=64)
    np.testing.assert_allclose(ones, np.ones(len(x)), rtol=1e-6)


def test_normalize_clip_exact_solution():
    l = np.log(np.array([1.0, 1.0, 1.0, 100.0]))
    w = normalize_clip(l, clip=(0.1, 2.0))
    # c * 1 for the first three and 2.0 for the last: 3c + 2 = 4 -> c = 2/3
    np.testing.assert_allclose(w, [2 / 3, 2 / 3, 2 / 3, 2.0], rtol=1e-6)
    # lower clip active: values 0.001 (x2), 1, 1 with clip (0.5, 10): 2*0.5 + 2c = 4 -> c = 1.5
    w = normalize_clip(np.log([0.001, 0.001, 1.0, 1.0]), clip=(0.5, 10.0))
    np.testing.assert_allclose(w, [0.5, 0.5, 1.5, 1.5], rtol=1e-6)
    # extreme log spread does not overflow
    w = normalize_clip(np.array([-2000.0, 0.0, 2000.0]), clip=(0.1, 10.0))
    np.testing.assert_allclose(w, [0.1, 0.1, 2.8], rtol=1e-6)
    w = normalize_clip(np.array([-2000.0, 0.0, 2000.0]), clip=None)
    np.testing.assert_allclose(w, [0.0, 0.0, 3.0], atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"power": -0.5}, "power"),
        ({"power": float("nan")}, "power"),
        ({"clip": (2.0, 10.0)}, "clip"),
        ({"clip": (0.1, 0.9)}, "clip"),
        ({"clip": (-0.1, 2.0)}, "clip"),
        ({"clip": (0.5,)}, "clip"),
        ({"clip": (3.0, 1.0)}, "clip"),
        ({"bandwidth": 0}, "bandwidth"),
        ({"bandwidth": "auto"}, "bandwidth"),
    ],
)
def test_kde_weights_validation(kwargs, match):
    x = _cluster_with_outliers()
    with pytest.raises(ValueError, match=match):
        kde_weights(x, **kwargs)


def test_public_names_keep_their_paths_after_the_split():
    """`rwsam/weights.py` was split (the density estimate moved to `rwsam/kde.py`): the old paths still work."""
    import keras_ssl_lt as ksl
    from keras_ssl_lt.rwsam import kde, weights

    assert weights.kde_density is kde.kde_density and weights.kde_bandwidth is kde.kde_bandwidth
    for name in weights.__all__:
        assert getattr(ksl.rwsam.weights, name) is getattr(weights, name)
    for name in ("class_rank_weights", "inverse_frequency_weights", "kde_bandwidth", "kde_density", "kde_weights"):
        assert getattr(ksl.rwsam, name) is getattr(weights, name)
