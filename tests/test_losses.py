"""Losses against independent numpy references, on the backend named by KERAS_BACKEND."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_ssl_lt import losses

RNG = np.random.default_rng(0)
B, D, K = 6, 5, 11
P = RNG.normal(size=(B, D)).astype("float32")
Z = RNG.normal(size=(B, D)).astype("float32")
QUEUE = RNG.normal(size=(K, D)).astype("float32")


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _unit(x):
    x = x.astype("float64")
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _logsumexp(a, axis=-1):
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def test_negative_cosine_and_byol_match_numpy():
    cos = (_unit(P) * _unit(Z)).sum(-1)
    np.testing.assert_allclose(_np(losses.negative_cosine_similarity(P, Z)), -cos, atol=1e-5)
    np.testing.assert_allclose(_np(losses.byol_loss(P, Z)), 2 - 2 * cos, atol=1e-5)
    # BYOL loss is the squared distance of the unit vectors.
    np.testing.assert_allclose(_np(losses.byol_loss(P, Z)), ((_unit(P) - _unit(Z)) ** 2).sum(-1), atol=1e-5)


def _nt_xent_reference(z1, z2, t):
    """Loop over the 2B views, as written in the SimCLR paper."""
    z = _unit(np.concatenate([z1, z2]))
    n = len(z)
    out = np.zeros(n)
    for a in range(n):
        partner = (a + n // 2) % n
        sims = np.array([z[a] @ z[c] / t for c in range(n) if c != a])
        out[a] = -np.log(np.exp(z[a] @ z[partner] / t) / np.exp(sims).sum())
    return out


@pytest.mark.parametrize("t", [0.5, 0.1])
def test_nt_xent_matches_loop_reference(t):
    ref = _nt_xent_reference(P, Z, t)
    got = _np(losses.nt_xent(P, Z, temperature=t))
    assert got.shape == (B,)
    np.testing.assert_allclose(got, 0.5 * (ref[:B] + ref[B:]), atol=1e-5)
    np.testing.assert_allclose(got.mean(), ref.mean(), atol=1e-5)


def test_info_nce_matches_numpy():
    q, k, queue = _unit(P), _unit(Z), _unit(QUEUE)
    logits = np.concatenate([(q * k).sum(-1, keepdims=True), q @ queue.T], axis=1) / 0.2
    ref = _logsumexp(logits) - logits[:, 0]
    np.testing.assert_allclose(_np(losses.info_nce(P, Z, QUEUE, temperature=0.2)), ref, atol=1e-5)
    # normalize=False on pre-normalised inputs gives the same.
    got = losses.info_nce(q.astype("float32"), k.astype("float32"), queue.astype("float32"), normalize=False)
    np.testing.assert_allclose(_np(got), ref, atol=1e-5)


def test_cross_entropy_matches_numpy_and_is_stable():
    logits = RNG.normal(size=(B, 7)).astype("float32") * 3
    labels = RNG.integers(0, 7, size=B)
    ref = _logsumexp(logits.astype("float64")) - logits[np.arange(B), labels]
    np.testing.assert_allclose(_np(losses.cross_entropy(logits, labels)), ref, atol=1e-5)
    big = np.array([[1000.0, 0.0, -1000.0]], "float32")
    np.testing.assert_allclose(_np(losses.cross_entropy(big, np.array([1]))), [1000.0], rtol=1e-6)


def test_embedding_std_matches_numpy_and_detects_collapse():
    z = RNG.normal(size=(256, 32)).astype("float32")
    ref = _unit(z).std(axis=0).mean()
    np.testing.assert_allclose(float(_np(losses.embedding_std(z))), ref, atol=1e-5)
    assert abs(ref - 1 / np.sqrt(32)) < 0.02  # healthy: close to 1/sqrt(d)
    collapsed = np.tile(z[:1], (256, 1)) + 1e-4 * RNG.normal(size=(256, 32)).astype("float32")
    assert float(_np(losses.embedding_std(collapsed))) < 1e-3


def test_zero_vectors_give_no_nan():
    zeros = np.zeros((B, D), "float32")
    for v in (
        losses.negative_cosine_similarity(zeros, Z),
        losses.byol_loss(zeros, zeros),
        losses.nt_xent(zeros, zeros),
        losses.info_nce(zeros, zeros, QUEUE),
        losses.embedding_std(zeros),
    ):
        assert np.all(np.isfinite(_np(v)))


def test_float32_output_under_bfloat16_inputs():
    p = ops.cast(P, "bfloat16")
    z = ops.cast(Z, "bfloat16")
    for v in (
        losses.negative_cosine_similarity(p, z),
        losses.byol_loss(p, z),
        losses.nt_xent(p, z),
        losses.info_nce(p, z, ops.cast(QUEUE, "bfloat16")),
        losses.cross_entropy(p, np.zeros(B, "int32")),
    ):
        assert keras.backend.standardize_dtype(v.dtype) == "float32"
        assert tuple(v.shape) == (B,)


def test_gradients_are_finite_including_zero_vectors():
    """A tiny Dense model trained one step on every loss: weights move, stay finite."""
    x = np.concatenate([RNG.normal(size=(B - 1, 4)), np.zeros((1, 4))]).astype("float32")
    inp = keras.Input((4,))
    out = keras.layers.Dense(D, use_bias=False)(inp)
    model = keras.Model(inp, out)

    def total(y_true, y_pred):
        z2 = ops.flip(y_pred, axis=0)
        return (
            ops.mean(losses.negative_cosine_similarity(y_pred, ops.stop_gradient(z2)))
            + ops.mean(losses.byol_loss(y_pred, z2))
            + ops.mean(losses.nt_xent(y_pred, z2))
            + ops.mean(losses.info_nce(y_pred, ops.stop_gradient(z2), QUEUE))
            + ops.mean(losses.cross_entropy(y_pred, ops.cast(y_true[:, 0], "int32")))
        )

    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=total)
    before = model.get_weights()[0].copy()
    hist = model.fit(x, np.zeros((B, 1), "float32"), batch_size=B, epochs=1, verbose=0)
    after = model.get_weights()[0]
    assert np.isfinite(hist.history["loss"][0])
    assert np.all(np.isfinite(after))
    assert not np.allclose(before, after)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: losses.nt_xent(P, Z, temperature=0), "temperature"),
        (lambda: losses.nt_xent(P, Z[:3]), "z1"),
        (lambda: losses.info_nce(P, Z, QUEUE[:, :3]), "queue"),
        (lambda: losses.info_nce(P, Z, QUEUE, normalize="yes"), "normalize"),
        (lambda: losses.cross_entropy(P, np.zeros((B, 1))), "labels"),
        (lambda: losses.negative_cosine_similarity(P, QUEUE[:, :3]), "feature dimension"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
