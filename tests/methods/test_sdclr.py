"""SDCLR on the current backend: masks vs numpy, one step vs a numpy derivation, mask refresh, SAM, saving."""

import keras
import numpy as np
import pytest
from helpers import run_serialization_test, sdclr_tiny_params, to_numpy

import keras_ssl_lt as ksl
from keras_ssl_lt.methods.pruning import PrunedTwin, magnitude_masks, prunable_kernels
from keras_ssl_lt.methods.sdclr import SDCLR

EPS = 1e-5


def conv_encoder(size=8):
    """Two conv layers with BatchNorm, 8-px inputs: quick to compile on every backend."""
    inputs = keras.Input((size, size, 3))
    x = inputs
    for i, filters in enumerate((4, 8)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, epsilon=EPS, name=f"bn{i}")(x)
        x = keras.layers.ReLU()(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="conv_encoder")


def dense_encoder():
    """Flatten -> Dense(6, no bias) -> BN -> ReLU on (2, 2, 1) "images": small enough to derive by hand."""
    inputs = keras.Input((2, 2, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(6, use_bias=False, name="fc")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, epsilon=EPS, name="bn")(x)
    return keras.Model(inputs, keras.layers.ReLU()(x), name="dense_encoder")


def keep_top(values, ratio):
    """Independent reference: 1 at the n - ceil(ratio * n) largest magnitudes (distinct values), else 0."""
    flat = np.abs(np.asarray(values)).reshape(-1)
    keep = flat.size - int(np.ceil(ratio * flat.size))
    out = np.zeros(flat.size, "float32")
    out[np.argsort(-flat)[:keep]] = 1.0
    return out.reshape(np.shape(values))


# ---------------------------------------------------------------------------------------------- (a) masks
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.9])
def test_magnitude_masks_keep_the_largest_weights_per_layer_and_globally(ratio):
    rng = np.random.default_rng(0)
    kernels = [rng.normal(size=s) for s in ((3, 3, 3, 4), (5, 7), (11,))]
    for got, k in zip(magnitude_masks(kernels, ratio, "layer"), kernels, strict=True):
        np.testing.assert_array_equal(got, keep_top(k, ratio))
    flat = keep_top(np.concatenate([k.reshape(-1) for k in kernels]), ratio)
    sizes = np.cumsum([k.size for k in kernels])[:-1]
    for got, want, k in zip(magnitude_masks(kernels, ratio), np.split(flat, sizes), kernels, strict=True):
        np.testing.assert_array_equal(got, want.reshape(k.shape))
    # Ties at the threshold are kept (the released code's `>=`).
    np.testing.assert_array_equal(magnitude_masks([np.array([1.0, 1.0, 1.0, 2.0])], 0.5)[0], [1, 1, 1, 1])


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_model_masks_match_numpy_on_the_encoder_kernels(scope):
    keras.utils.set_random_seed(1)
    model = SDCLR(conv_encoder(), projection_dim=4, projection_hidden_dim=8, prune_ratio=0.7, prune_scope=scope)
    kernels = [to_numpy(k) for k in prunable_kernels(model.encoder)]
    assert [k.shape for k in kernels] == [(3, 3, 3, 4), (3, 3, 4, 8)]
    if scope == "layer":
        want = [keep_top(k, 0.7) for k in kernels]
    else:
        flat = keep_top(np.concatenate([k.reshape(-1) for k in kernels]), 0.7)
        want = [m.reshape(k.shape) for m, k in zip(np.split(flat, [kernels[0].size]), kernels, strict=True)]
    for mask, w in zip(model.pruned_encoder.masks, want, strict=True):
        np.testing.assert_array_equal(to_numpy(mask), w)
    # Only the named layers are pruned.
    only = SDCLR(conv_encoder(), projection_dim=4, projection_hidden_dim=8, prune_layers=["conv1"])
    assert [tuple(m.shape) for m in only.pruned_encoder.masks] == [(3, 3, 4, 8)]


# ------------------------------------------------------------------------- (b) one step vs numpy
def _bn(x, gamma, beta):
    mean, var = x.mean(0), x.var(0)  # training mode: batch statistics, biased variance (Keras)
    return (x - mean) / np.sqrt(var + EPS) * gamma + beta, mean, var


def _forward(p, views, branch):
    """Projector outputs and pre-BN batch statistics of one branch in float64 numpy."""
    kernel = p["fc"] * (p["mask"] if branch == "pruned" else 1.0)
    h, m1, v1 = _bn(views.reshape(len(views), -1) @ kernel, p[f"{branch}_g"], p[f"{branch}_b"])
    h = np.maximum(h, 0.0)
    u, m2, v2 = _bn(h @ p["p0"], p[f"{branch}_pg"], p[f"{branch}_pb"])
    z = np.maximum(u, 0.0) @ p["p1"] + p["p1_bias"]
    return z, (m1, v1, m2, v2)


def _nt_xent(z1, z2, t):
    z = np.concatenate([z1, z2]) / np.linalg.norm(np.concatenate([z1, z2]), axis=1, keepdims=True)
    b = len(z1)
    sim = z @ z.T / t
    np.fill_diagonal(sim, -np.inf)
    partner = np.concatenate([np.arange(b) + b, np.arange(b)])
    lse = np.log(np.exp(sim).sum(1))
    return float(np.mean(lse - sim[np.arange(2 * b), partner]))


def _loss(p, v1, v2, t=0.5):
    return _nt_xent(_forward(p, v1, "dense")[0], _forward(p, v2, "pruned")[0], t)


def _numeric_grad(p, key, v1, v2, h=1e-6):
    grad = np.zeros_like(p[key])
    for i in np.ndindex(p[key].shape):
        up, down = {**p, key: p[key].copy()}, {**p, key: p[key].copy()}
        up[key][i] += h
        down[key][i] -= h
        grad[i] = (_loss(up, v1, v2) - _loss(down, v1, v2)) / (2 * h)
    return grad


def _tiny_model():
    keras.utils.set_random_seed(3)
    model = SDCLR(dense_encoder(), projection_dim=3, projection_hidden_dim=5, temperature=0.5, prune_ratio=0.5)
    rng = np.random.default_rng(5)
    enc, proj = model.encoder, model.projector
    enc.get_layer("fc").kernel.assign(rng.normal(size=(4, 6)).astype("float32"))
    bn, pbn = enc.get_layer("bn"), proj.get_layer("bn_0")
    # Distinct dense and twin BatchNorm parameters and statistics, so that mixing them up would show.
    for layer in (bn, pbn):
        n = layer.gamma.shape[0]
        layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
        layer.beta.assign(rng.normal(size=n).astype("float32") * 0.1)
        layer.moving_mean.assign(rng.normal(size=n).astype("float32"))
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
    for twin in (model.pruned_encoder, model.pruned_projector):
        for v in twin.bn_variables:
            if v.trainable:
                v.assign(to_numpy(v) + rng.normal(size=v.shape).astype("float32") * 0.3)
            else:
                v.assign(rng.uniform(0.5, 2.0, v.shape).astype("float32"))
    model.refresh_masks()
    return model


def _stats(model):
    bn, pbn = model.encoder.get_layer("bn"), model.projector.get_layer("bn_0")
    dense = [to_numpy(v).astype("float64") for v in (bn.moving_mean, bn.moving_variance)]
    dense += [to_numpy(v).astype("float64") for v in (pbn.moving_mean, pbn.moving_variance)]
    twin = [to_numpy(v).astype("float64") for v in model.pruned_encoder.statistics + model.pruned_projector.statistics]
    return dense, twin


def test_one_step_matches_a_numpy_derivation_of_loss_gradients_and_statistics():
    model = _tiny_model()
    views = np.random.default_rng(9).normal(size=(6, 2, 2, 2, 1)).astype("float32")
    v1, v2 = views[:, 0].astype("float64"), views[:, 1].astype("float64")
    p0 = sdclr_tiny_params(model)
    assert p0["mask"].sum() == 12  # half of the 24 weights
    dense0, twin0 = _stats(model)
    _, dense_batch = _forward(p0, v1, "dense")
    _, twin_batch = _forward(p0, v2, "pruned")
    want_loss = _loss(p0, v1, v2)

    model.compile(optimizer=keras.optimizers.SGD(1.0))  # w_new = w - gradient
    logs = model.train_on_batch({"views": views}, return_dict=True)
    assert logs["loss"] == pytest.approx(want_loss, rel=1e-5)

    p1 = sdclr_tiny_params(model)
    for key in ("fc", "dense_g", "pruned_g", "pruned_b", "p0", "pruned_pg", "p1"):
        np.testing.assert_allclose(p0[key] - p1[key], _numeric_grad(p0, key, v1, v2), atol=2e-5, err_msg=key)
    np.testing.assert_array_equal(p1["mask"], p0["mask"])  # masks change only at epoch starts

    # Each branch's statistics move with its own batch only (momentum 0.9), the dense ones with the dense branch.
    dense1, twin1 = _stats(model)
    for before, after, batch in ((dense0, dense1, dense_batch), (twin0, twin1, twin_batch)):
        for b, a, s in zip(before, after, batch, strict=True):
            np.testing.assert_allclose(a, 0.9 * b + 0.1 * s, rtol=1e-5, atol=1e-6)


def test_a_sam_step_moves_each_branch_statistics_once_from_the_first_pass():
    model = _tiny_model()
    views = np.random.default_rng(9).normal(size=(6, 2, 2, 2, 1)).astype("float32")
    p0 = sdclr_tiny_params(model)
    dense0, twin0 = _stats(model)
    _, dense_batch = _forward(p0, views[:, 0].astype("float64"), "dense")
    _, twin_batch = _forward(p0, views[:, 1].astype("float64"), "pruned")
    model.compile(optimizer=keras.optimizers.SGD(0.1), sharpness=ksl.rwsam.SAM(rho=0.5))
    logs = model.train_on_batch({"views": views}, return_dict=True)
    assert logs["loss"] == pytest.approx(_loss(p0, views[:, 0], views[:, 1]), rel=1e-5)
    assert logs["perturbed_loss"] > logs["loss"]
    dense1, twin1 = _stats(model)  # SAM's default bn_update="first": the statistics of the pass at w, once
    for before, after, batch in ((dense0, dense1, dense_batch), (twin0, twin1, twin_batch)):
        for b, a, s in zip(before, after, batch, strict=True):
            np.testing.assert_allclose(a, 0.9 * b + 0.1 * s, rtol=1e-5, atol=1e-6)


# -------------------------------------------------------- (c) refresh at epoch start, (d) fit with SAM
class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.kernels, self.masks = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.kernels.append([to_numpy(k) for k in prunable_kernels(self.model.encoder)])

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self.masks.append([to_numpy(m) for m in self.model.pruned_encoder.masks])


def test_fit_with_sam_refreshes_masks_at_each_epoch_start():
    keras.utils.set_random_seed(4)
    model = SDCLR(conv_encoder(), projection_dim=4, projection_hidden_dim=8, prune_ratio=0.5, prune_scope="layer")
    model.compile(optimizer=keras.optimizers.SGD(0.5), sharpness=ksl.rwsam.SAM(rho=0.05))
    x = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3)).astype("float32") / 255.0
    stats0 = [to_numpy(v) for v in model.pruned_encoder.statistics]
    recorder = _Recorder()
    history = model.fit(x, batch_size=4, epochs=2, verbose=0, callbacks=[recorder])
    assert np.all(np.isfinite(history.history["loss"])) and "perturbed_loss" in history.history
    assert len(recorder.masks) == 2
    for kernels, masks in zip(recorder.kernels, recorder.masks, strict=True):
        for k, m in zip(kernels, masks, strict=True):
            np.testing.assert_array_equal(m, keep_top(k, 0.5))
    assert any(np.any(a != b) for a, b in zip(*recorder.masks, strict=True)), "the masks should move with the weights"
    moved = [to_numpy(v) for v in model.pruned_encoder.statistics]
    assert all(np.any(a != b) for a, b in zip(stats0, moved, strict=True))
    # With SAM (bn_update="first") the twin's statistics are among those restored after the second pass.
    ids = {id(v) for v in model._batchnorm_variables()}
    assert all(id(v) in ids for v in model.pruned_encoder.statistics + model.pruned_projector.statistics)


def test_shared_bn_variant_moves_the_dense_statistics_with_both_branches():
    model = SDCLR(dense_encoder(), projection_dim=3, projection_hidden_dim=5, prune_ratio=0.5, dual_bn=False)
    assert model.pruned_encoder.bn_variables == [] and model.pruned_projector.bn_variables == []
    views = np.random.default_rng(2).normal(size=(6, 2, 2, 2, 1)).astype("float32")
    bn = model.encoder.get_layer("bn")
    m0 = to_numpy(bn.moving_mean).astype("float64")
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    model.train_on_batch({"views": views}, return_dict=True)
    w = to_numpy(model.encoder.get_layer("fc").kernel).astype("float64")
    mask = to_numpy(model.pruned_encoder.masks[0])
    dense_mean = (views[:, 0].reshape(6, -1) @ w).mean(0)
    pruned_mean = (views[:, 1].reshape(6, -1) @ (w * mask)).mean(0)
    want = 0.9 * (0.9 * m0 + 0.1 * dense_mean) + 0.1 * pruned_mean  # dense pass first, then the pruned one
    np.testing.assert_allclose(to_numpy(bn.moving_mean), want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------- saving and bad arguments
def test_config_round_trip_and_keras_saving_keep_masks_and_twin_batchnorm(tmp_path):
    keras.utils.set_random_seed(6)
    model = SDCLR(
        conv_encoder(), projection_dim=4, projection_hidden_dim=8, prune_ratio=0.6, prune_layers=["conv0", "conv1"]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    x = np.random.default_rng(1).random((4, 8, 8, 3)).astype("float32")
    model.train_on_batch(x)
    model.pruned_encoder.masks[0].assign(np.ones(model.pruned_encoder.masks[0].shape, "float32"))  # not recomputable
    loaded = run_serialization_test(model, x, tmp_path)
    config = loaded.get_config()
    assert (config["prune_ratio"], config["prune_layers"], config["prune_scope"], config["dual_bn"]) == (
        0.6,
        ["conv0", "conv1"],
        "global",
        True,
    )
    np.testing.assert_array_equal(to_numpy(loaded.pruned_encoder.masks[0]), 1.0)
    np.testing.assert_allclose(loaded.per_example_losses(x), model.per_example_losses(x), rtol=1e-6)


def test_bad_arguments_are_refused_by_name():
    def build(**kw):
        return SDCLR(dense_encoder(), projection_dim=3, projection_hidden_dim=5, **kw)

    for bad in (1.0, -0.1, "0.5", True):
        with pytest.raises(ValueError, match="prune_ratio"):
            build(prune_ratio=bad)
    with pytest.raises(ValueError, match=r"prune_scope.*'global', 'layer'"):
        build(prune_scope="local")
    for bad in ("fc", [], ["fc", "fc"], [3]):
        with pytest.raises(ValueError, match="prune_layers"):
            build(prune_layers=bad)
    with pytest.raises(ValueError, match=r"prune_layers.*\['nope'\].*\['fc'\]"):
        build(prune_layers=["nope"])
    with pytest.raises(ValueError, match="dual_bn"):
        build(dual_bn="yes")
    for bad in (0.0, {"schedule": "linear"}):
        with pytest.raises(ValueError, match=r"temperature|schedule"):
            build(temperature=bad)
    assert build(
        temperature={"schedule": "cosine", "tau_min": 0.1, "tau_max": 1.0, "period_epochs": 4}
    ).temperature_scheduled
    with pytest.raises(ValueError, match="no Conv/Dense kernel"):
        PrunedTwin(keras.Sequential([keras.Input((3,)), keras.layers.ReLU()]), 0.5)
