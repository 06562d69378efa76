"""SAM / ASAM / rwSAM steps against an independent numpy reference, on the current backend."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_ssl_lt.methods.base import Pretrainer
from keras_ssl_lt.rwsam import sharpness

B, D_IN, D_OUT, LR = 6, 4, 3, 0.1


class LinearRegressionMethod(Pretrainer):
    """Per-example loss 0.5 * ||x W + b - onehot(y)||^2: gradients easy to derive by hand."""

    num_views = 1

    def compute_loss_terms(self, views, labels, training=True):
        (x,) = views
        z = self.encoder(x, training=training)
        target = ops.one_hot(ops.cast(labels, "int32"), D_OUT)
        return {"loss": 0.5 * ops.sum(ops.square(z - target), axis=-1), "embedding": z}


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, D_IN)).astype("float32")
    y = rng.integers(0, D_OUT, size=B).astype("int32")
    index = np.array([5, 0, 3, 1, 4, 2], dtype="int32")
    W = rng.normal(size=(D_IN, D_OUT)).astype("float32") * 0.5
    b = rng.normal(size=(D_OUT,)).astype("float32") * 0.1
    table = np.linspace(0.5, 3.0, 6).astype("float32")
    return x, y, index, W, b, table


def _model(W, b, table=None, bn=False):
    inputs = keras.Input((D_IN,))
    dense = keras.layers.Dense(D_OUT, name="dense")
    out = dense(inputs)
    if bn:
        out = keras.layers.BatchNormalization(momentum=0.9, center=False, scale=False, name="bn")(out)
    encoder = keras.Model(inputs, out)
    dense.set_weights([W, b])
    model = LinearRegressionMethod(encoder, num_examples=6)
    if table is not None:
        model.set_example_weights(table)
    return model


# ------------------------------------------------------------------ numpy reference
def _grads(W, b, x, y, w=None):
    t = np.eye(D_OUT)[y]
    r = x.astype("float64") @ W + b - t
    w = np.ones(len(x)) if w is None else w
    rw = r * w[:, None] / len(x)
    return [x.T @ rw, rw.sum(0)]


def _reference_step(W, b, x, y, rho, adaptive=False, w=None):
    params = [W.astype("float64"), b.astype("float64")]
    g = _grads(*params, x, y, w)
    if rho is None:
        g2 = g
    else:
        s = [np.abs(p) if adaptive else np.ones_like(p) for p in params]
        norm = np.sqrt(sum(np.sum((si * gi) ** 2) for si, gi in zip(s, g, strict=True)))
        eps = [rho * si**2 * gi / (norm + 1e-12) for si, gi in zip(s, g, strict=True)]
        g2 = _grads(params[0] + eps[0], params[1] + eps[1], x, y, None)
    return [p - LR * gi for p, gi in zip(params, g2, strict=True)]


def _one_step(model, x, y, index, sharp):
    model.compile(optimizer=keras.optimizers.SGD(LR), sharpness=sharp)
    model.train_on_batch({"images": x, "labels": y, "index": index})
    dense = model.encoder.get_layer("dense")
    return [np.asarray(v) for v in dense.get_weights()]


@pytest.mark.parametrize(
    "kind, rho, adaptive",
    [("plain", None, False), ("sam", 0.05, False), ("asam", 0.5, True), ("rwsam", 0.05, False), ("rwasam", 0.5, True)],
)
def test_step_matches_numpy(kind, rho, adaptive):
    x, y, index, W, b, table = _data()
    model = _model(W, b, table)
    if kind == "plain":
        sharp = None
    elif kind.startswith("rw"):
        sharp = sharpness.RWSAM(rho=rho, adaptive=adaptive)
    else:
        sharp = sharpness.SAM(rho=rho, adaptive=adaptive)
    got = _one_step(model, x, y, index, sharp)
    w = table[index] if kind.startswith("rw") else None
    want = _reference_step(W, b, x, y, rho, adaptive, w)
    for g, r in zip(got, want, strict=True):
        np.testing.assert_allclose(g, r, atol=1e-5, rtol=1e-5)


def test_rho_zero_equals_plain_step():
    x, y, index, W, b, table = _data()
    plain = _one_step(_model(W, b), x, y, index, None)
    zero = (sharpness.SAM(rho=0.0), sharpness.SAM(rho=0.0, adaptive=True), sharpness.RWSAM(rho=0.0, weights=table))
    for sharp in zero:
        got = _one_step(_model(W, b), x, y, index, sharp)
        for g, p in zip(got, plain, strict=True):
            np.testing.assert_allclose(g, p, atol=1e-6)


def test_uniform_weights_equal_sam_and_nonuniform_weights_change_update():
    x, y, index, W, b, _table = _data()
    sam = _one_step(_model(W, b), x, y, index, sharpness.SAM(rho=0.5))
    uniform = _one_step(_model(W, b), x, y, index, sharpness.RWSAM(rho=0.5, weights=np.full(6, 2.5)))
    skewed_w = np.array([1, 1, 1, 1, 1, 50], "float32")
    skewed = _one_step(_model(W, b), x, y, index, sharpness.RWSAM(rho=0.5, weights=skewed_w))
    for s, u in zip(sam, uniform, strict=True):
        np.testing.assert_allclose(u, s, atol=1e-6)
    assert max(np.abs(k - s).max() for k, s in zip(skewed, sam, strict=True)) > 1e-3
    # ... and the change is exactly the one the weighted ascent predicts
    want = _reference_step(W, b, x, y, 0.5, False, skewed_w[index])
    for g, r in zip(skewed, want, strict=True):
        np.testing.assert_allclose(g, r, atol=1e-5, rtol=1e-5)


def test_weights_set_after_compile_are_used():
    """The authors' code silently ignored its weights: a table written later must change the step."""
    x, y, index, W, b, _table = _data()
    model = _model(W, b)
    model.compile(optimizer=keras.optimizers.SGD(LR), sharpness=sharpness.RWSAM(rho=0.5))
    skewed_w = np.array([1, 1, 1, 1, 1, 50], "float32")
    model.set_example_weights(skewed_w[:3], indices=np.array([3, 4, 5]))
    model.set_example_weights(np.ones(3), indices=np.array([0, 1, 2]))
    model.train_on_batch({"images": x, "labels": y, "index": index})
    got = [np.asarray(v) for v in model.encoder.get_layer("dense").get_weights()]
    full = np.array([1, 1, 1, 1, 1, 1], "float32")
    full[[3, 4, 5]] = skewed_w[:3]
    want = _reference_step(W, b, x, y, 0.5, False, full[index])
    for g, r in zip(got, want, strict=True):
        np.testing.assert_allclose(g, r, atol=1e-5, rtol=1e-5)


def test_rwsam_requires_index():
    x, y, _index, W, b, table = _data()
    model = _model(W, b, table)
    model.compile(optimizer=keras.optimizers.SGD(LR), sharpness=sharpness.RWSAM(rho=0.1))
    with pytest.raises(ValueError, match="index"):
        model.train_on_batch({"images": x, "labels": y})


def test_zero_gradient_gives_no_nan():
    _x, _y, _index, _W, _b, _table = _data()
    # a model that already fits the targets exactly has zero gradient
    X = np.eye(D_IN, dtype="float32")[:D_OUT]
    Y = np.arange(D_OUT, dtype="int32")
    Wp = np.zeros((D_IN, D_OUT), "float32")
    Wp[np.arange(D_OUT), np.arange(D_OUT)] = 1.0
    for sharp in (sharpness.SAM(0.05), sharpness.SAM(0.5, adaptive=True)):
        got = _one_step(_model(Wp, np.zeros(D_OUT, "float32")), X, Y, np.arange(D_OUT, dtype="int32"), sharp)
        assert all(np.all(np.isfinite(g)) for g in got)
        np.testing.assert_allclose(got[0], Wp, atol=1e-7)


@pytest.mark.parametrize("bn_update", ["first", "both"])
def test_batchnorm_statistics_updated_once_per_step(bn_update):
    x, y, index, W, b, _table = _data()
    model = _model(W, b, bn=True)
    sharp = sharpness.SAM(rho=0.5, bn_update=bn_update)
    model.compile(optimizer=keras.optimizers.SGD(LR), sharpness=sharp)
    model.train_on_batch({"images": x, "labels": y, "index": index})
    bn = model.encoder.get_layer("bn")
    moving_mean = np.asarray(bn.moving_mean.value)
    first = 0.1 * (x @ W + b).mean(0)  # momentum 0.9 from zero, first-pass batch mean
    if bn_update == "first":
        np.testing.assert_allclose(moving_mean, first, atol=1e-5)
    else:
        assert np.abs(moving_mean - first).max() > 1e-4  # the second pass moved them again


def test_perturbation_reference_and_validation():
    g = [np.array([3.0, 0.0], "float32"), np.array([4.0], "float32")]
    w = [np.array([2.0, 1.0], "float32"), np.array([0.5], "float32")]
    eps = [np.asarray(e) for e in sharpness.perturbation(g, w, rho=1.0)]
    np.testing.assert_allclose(np.concatenate(eps), [0.6, 0.0, 0.8], atol=1e-6)
    eps = [np.asarray(e) for e in sharpness.perturbation(g, w, rho=2.0, adaptive=True)]
    norm = np.sqrt((2 * 3) ** 2 + (0.5 * 4) ** 2)
    np.testing.assert_allclose(np.concatenate(eps), [2 * 4 * 3 / norm, 0.0, 2 * 0.25 * 4 / norm], rtol=1e-6)
    with pytest.raises(ValueError, match="rho"):
        sharpness.SAM(rho=-1)
    with pytest.raises(ValueError, match="bn_update"):
        sharpness.SAM(bn_update="never")
    with pytest.raises(ValueError, match="weights"):
        sharpness.RWSAM(weights=np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="weights"):
        sharpness.RWSAM(weights=np.array([-1.0, 1.0]))
    with pytest.raises(ValueError, match="sharpness"):
        sharpness.get("sgd")
    assert isinstance(sharpness.get("rwasam"), sharpness.RWSAM)
    config = sharpness.RWSAM(rho=7.0, adaptive=True).get_config()
    assert sharpness.RWSAM.from_config(config).get_config() == config


# ------------------------------------------------------------------ rwSAM index checks
def _state(model):
    values = [v for v in model.trainable_variables + model.non_trainable_variables + model.optimizer.variables]
    return [np.array(ops.convert_to_numpy(v.value)) for v in values]


def _assert_unchanged(model, before):
    after = _state(model)
    assert len(after) == len(before)
    for a, b in zip(after, before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad, shown", [(9, "9"), (6, "6"), (-1, "-1")])
def test_out_of_range_index_raises_before_any_change(bad, shown):
    """Past the end, exactly at the table size, or negative (which would read the last entry): a clear
    ValueError naming the table size and the index, and nothing changes (weights, statistics, optimizer)."""
    x, y, index, W, b, table = _data()
    model = _model(W, b, table, bn=True)
    model.compile(optimizer=keras.optimizers.SGD(LR, momentum=0.9), sharpness=sharpness.RWSAM(rho=0.5))
    good = {"images": x, "labels": y, "index": index}
    model.fit(good, batch_size=B, epochs=1, verbose=0)  # a real step first: state is not the initial one
    before = _state(model)
    wrong = dict(good, index=np.where(np.arange(B) == 3, bad, index).astype("int32"))
    message = rf"index` {shown} \(at batch position 3\) is outside the example-weight table of 6 entries"
    with pytest.raises(ValueError, match=message):
        model.train_on_batch(wrong)
    _assert_unchanged(model, before)
    # inside `fit`, on the second batch: the first batch's step is kept, the bad one changes nothing
    data = {k: np.concatenate([good[k], wrong[k]]) for k in good}
    with pytest.raises(ValueError, match=message):
        model.fit(data, batch_size=B, epochs=1, verbose=0, shuffle=False)
    reference = _model(W, b, table, bn=True)
    reference.compile(optimizer=keras.optimizers.SGD(LR, momentum=0.9), sharpness=sharpness.RWSAM(rho=0.5))
    reference.fit(good, batch_size=B, epochs=1, verbose=0)
    reference.train_on_batch(good)
    for a, r in zip(_state(model), _state(reference), strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-6, atol=1e-7)
    # the model is still usable and a good batch trains as before
    model.train_on_batch(good)


def test_index_checked_for_tf_data_and_several_steps_per_execution():
    """A tf.data pipeline (the package's own) and `steps_per_execution > 1` (not on torch) are checked too."""
    import tensorflow as tf

    x, y, index, W, b, table = _data()
    steps = 1 if keras.backend.backend() == "torch" else 2
    model = _model(W, b, table)
    jit = keras.backend.backend() != "torch"  # XLA on TensorFlow too: it would drop an in-graph assertion
    model.compile(
        optimizer=keras.optimizers.SGD(LR),
        sharpness=sharpness.RWSAM(rho=0.5),
        steps_per_execution=steps,
        jit_compile=jit,
    )
    before = _state(model)
    bad_index = index.copy()
    bad_index[0] = 100
    ds = tf.data.Dataset.from_tensor_slices({"images": x, "labels": y, "index": bad_index}).batch(B)
    with pytest.raises(ValueError, match=r"index` 100 .* table of 6 entries"):
        model.fit(ds, epochs=1, verbose=0)
    _assert_unchanged(model, before)
    with pytest.raises(ValueError, match="RWSAM needs each batch to carry"):
        model.fit({"images": x, "labels": y}, batch_size=B, epochs=1, verbose=0)
    _assert_unchanged(model, before)
    good = tf.data.Dataset.from_tensor_slices({"images": x, "labels": y, "index": index}).batch(B // 2)
    history = model.fit(good, epochs=1, verbose=0)
    assert np.isfinite(history.history["weighted_loss"][0])
