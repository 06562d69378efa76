"""BCL-D (BCL on SDCLR): the momentum losses from SDCLR's dense-vs-pruned loss against numpy, fit, saving, bad input.

BCL's own mechanics (strength mapping, boosted views, SAM) are tested in test_bcl.py and SDCLR's (masks, gradients,
twin BatchNorm) in test_sdclr.py; this file checks what the combination adds: which per-example loss feeds the
momentum, with the masks refreshed and the strengths updated in the same `fit`. Steps are compiled on JAX and eager
on TensorFlow and PyTorch, as in test_bcl.py.
"""

import keras
import numpy as np
import pytest
from helpers import (
    LastStepRecorder,
    np_boost_strength,
    replay_momentum,
    run_serialization_test,
    sdclr_tiny_params,
    to_numpy,
)
from keras import ops

import keras_ssl_lt as ksl
from keras_ssl_lt.augment.boosted import BoostedViewAugmenter, bcl_cifar
from keras_ssl_lt.methods.bcl import BCLD, _BoostStrengthUpdate
from keras_ssl_lt.methods.pruning import magnitude_masks, prunable_kernels
from keras_ssl_lt.methods.sdclr import PruneMaskRefresh

EPS = 1e-5
EAGER = keras.backend.backend() != "jax"
IMAGES = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3), dtype=np.uint8)


def _augmenter():
    return bcl_cifar("D", crop_size=8, seed=0, crop="pad", jitter=None, ops=["rotate", "invert", "equalize"])


# ------------------------------------------------------- the momentum losses against a hand derivation
def _hand_model(beta):
    """Flatten -> Dense(6, no bias) -> BN -> ReLU on (2, 2, 1) views, distinct dense and twin BatchNorm."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((2, 2, 1))
    x = keras.layers.Dense(6, use_bias=False, name="fc")(keras.layers.Flatten()(inputs))
    x = keras.layers.BatchNormalization(epsilon=EPS, name="bn")(x)
    encoder = keras.Model(inputs, keras.layers.ReLU()(x))
    model = BCLD(
        encoder,
        augmenter=_augmenter(),  # not used: the batches carry pre-made views
        projection_dim=3,
        projection_hidden_dim=5,
        temperature=0.5,
        prune_ratio=0.5,
        beta=beta,
        num_examples=8,
        rankme=False,
    )
    rng = np.random.default_rng(5)
    encoder.get_layer("fc").kernel.assign(rng.normal(size=(4, 6)).astype("float32"))
    for twin in (model.pruned_encoder, model.pruned_projector):
        for v in twin.bn_variables:
            if v.trainable:  # twin gamma / beta unlike the dense ones, so that mixing them up would show
                v.assign(to_numpy(v) + rng.normal(size=v.shape).astype("float32") * 0.3)
    model.refresh_masks()
    return model


def _bn(x, gamma, beta):
    return (x - x.mean(0)) / np.sqrt(x.var(0) + EPS) * gamma + beta  # training mode: the batch's statistics


def _project(p, views, branch):
    kernel = p["fc"] * (p["mask"] if branch == "pruned" else 1.0)
    h = np.maximum(_bn(views.reshape(len(views), -1) @ kernel, p[f"{branch}_g"], p[f"{branch}_b"]), 0.0)
    u = np.maximum(_bn(h @ p["p0"], p[f"{branch}_pg"], p[f"{branch}_pb"]), 0.0)
    return u @ p["p1"] + p["p1_bias"]


def _per_example_nt_xent(z1, z2, t):
    """NT-Xent per example: the mean of its two anchors' losses (view 1 against all, view 2 against all)."""
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    b = len(z1)
    sim = z @ z.T / t
    np.fill_diagonal(sim, -np.inf)
    partner = np.concatenate([np.arange(b) + b, np.arange(b)])
    anchor = np.log(np.exp(sim).sum(1)) - sim[np.arange(2 * b), partner]
    return (anchor[:b] + anchor[b:]) / 2


def test_momentum_losses_are_sdclr_dense_vs_pruned_losses_and_strengths_match_numpy():
    beta = 0.8
    model = _hand_model(beta)
    model.compile(optimizer=keras.optimizers.SGD(0.5), run_eagerly=EAGER)
    views = np.random.default_rng(9).normal(size=(8, 2, 2, 2, 1)).astype("float32")
    steps = [np.array([0, 3, 5, 7]), np.array([5, 3, 1, 2])]  # 5 and 3 seen twice: the moving average
    m, seen = np.zeros(8), np.zeros(8, bool)
    for i, index in enumerate(steps):
        p = sdclr_tiny_params(model)
        v = views[4 * i : 4 * i + 4].astype("float64")
        want = _per_example_nt_xent(_project(p, v[:, 0], "dense"), _project(p, v[:, 1], "pruned"), 0.5)
        # The check tells the losses apart: SimCLR's dense-vs-dense loss is not it.
        other = _per_example_nt_xent(_project(p, v[:, 0], "dense"), _project(p, v[:, 1], "dense"), 0.5)
        assert np.abs(other - want).max() > 1e-2
        logs = model.train_on_batch({"views": views[4 * i : 4 * i + 4], "index": index}, return_dict=True)
        assert logs["loss"] == pytest.approx(float(np.mean(want)), rel=1e-5)
        m[index] = np.where(seen[index], beta * m[index] + (1 - beta) * want, want)
        seen[index] = True
        np.testing.assert_allclose(model.get_momentum_losses(), m, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(to_numpy(model.momentum_seen) > 0, seen)
    assert np.all(model.get_boost_strength() == 0)  # until the epoch's end
    np.testing.assert_allclose(model.update_boost_strength(), np_boost_strength(m, seen), atol=1e-5)
    np.testing.assert_allclose(model.get_boost_strength(), np_boost_strength(m, seen), atol=1e-5)


# ------------------------------------------------------------------ fit, saving
@keras.saving.register_keras_serializable(package="test_bcl_d")
class _Recording(LastStepRecorder, BCLD):
    """BCL-D that keeps the last step's per-example losses and indices in variables (read between steps)."""


class _Record(keras.callbacks.Callback):
    """Each step's losses and indices, the encoder's kernel at each epoch start and the mask its first step used."""

    def __init__(self):
        super().__init__()
        self.steps, self.kernels, self.masks = [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.model._ksl_sync_state()
        self.kernels.append([to_numpy(k) for k in prunable_kernels(self.model.encoder)])

    def on_train_batch_end(self, batch, logs=None):
        self.model._ksl_sync_state()
        self.steps.append((to_numpy(self.model.last_loss).astype("float64"), to_numpy(self.model.last_index)))
        if batch == 0:
            self.masks.append([to_numpy(mask) for mask in self.model.pruned_encoder.masks])


def test_fit_refreshes_masks_and_strengths_and_saving_keeps_the_state(tmp_path):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 3))
    encoder = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)))
    beta = 0.9
    model = _Recording(
        encoder,
        augmenter=_augmenter(),
        projection_dim=8,
        projection_hidden_dim=16,
        prune_ratio=0.7,
        beta=beta,
        boosted_views="second",
        num_examples=12,
        rankme=False,
    )
    assert [type(c) for c in model.fit_callbacks()] == [PruneMaskRefresh, _BoostStrengthUpdate]
    model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9), run_eagerly=EAGER)
    record, index = _Record(), np.arange(8) + 2  # 0, 1, 10 and 11 are never seen
    history = model.fit(
        {"images": IMAGES, "index": index}, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[record]
    )
    # SDCLR's masks come from each epoch's starting weights; BCL's strengths from the momentum losses at its end.
    for kernels, masks in zip(record.kernels, record.masks, strict=True):
        for want, got in zip(magnitude_masks(kernels, 0.7), masks, strict=True):
            np.testing.assert_array_equal(got, want)
    m, seen = np.zeros(12), np.zeros(12, bool)
    strength, logged = replay_momentum(record.steps, index, beta, m, seen, np.zeros(12))
    np.testing.assert_allclose(model.get_momentum_losses(), m, rtol=1e-5)
    np.testing.assert_allclose(model.get_boost_strength(), strength, atol=1e-5)
    np.testing.assert_allclose(history.history["strength"], logged, atol=1e-5)
    assert history.history["strength"][0] == 0.0 and history.history["strength"][1] > 0.0
    assert np.all(np.isfinite(history.history["loss"]))

    loaded = run_serialization_test(model, IMAGES, tmp_path)
    config = loaded.get_config()
    assert (config["beta"], config["boosted_views"], config["prune_ratio"], config["temperature"]) == (
        beta,
        "second",
        0.7,
        0.2,
    )
    assert isinstance(loaded.augmenter, BoostedViewAugmenter)
    assert loaded.augmenter.get_config() == model.augmenter.get_config()
    np.testing.assert_array_equal(loaded.get_momentum_losses(), model.get_momentum_losses())
    np.testing.assert_array_equal(loaded.get_boost_strength(), model.get_boost_strength())
    for a, b in zip(loaded.pruned_encoder.masks, model.pruned_encoder.masks, strict=True):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


# ------------------------------------------------------------------ bad input, registry
def test_bad_batches_and_arguments_are_refused():
    model = _hand_model(0.97)
    model.compile(optimizer="sgd", run_eagerly=True)
    views = np.zeros((4, 2, 2, 2, 1), "float32")
    with pytest.raises(ValueError, match=r"BCLD keeps per-example state.*'index'"):
        model.train_on_batch({"views": views})
    with pytest.raises(ValueError, match=r"BCL-D records one momentum loss.*got position\(s\) \[3\]"):
        model.train_on_batch({"views": views, "index": np.array([3, 1, 3, 2])})
    assert np.all(model.get_momentum_losses() == 0) and float(ops.sum(model.momentum_seen)) == 0.0
    encoder = model.encoder
    with pytest.raises(ValueError, match="`augmenter` of BCL-D must be"):
        BCLD(encoder, augmenter=ksl.augment.simclr_cifar(crop_size=8), num_examples=8)
    with pytest.raises(ValueError, match="BCL-D keeps one momentum loss per example"):
        BCLD(encoder, augmenter=_augmenter())
    with pytest.raises(ValueError, match="prune_ratio"):
        BCLD(encoder, augmenter=_augmenter(), num_examples=8, prune_ratio=1.0)


def test_registry_and_protocol_build_bcl_d_with_bcl_d_views():
    from keras_ssl_lt.experiments import grids
    from keras_ssl_lt.experiments.build import build_pretrainer
    from keras_ssl_lt.methods import registry

    assert registry.get_method("bcl_d") is BCLD and ksl.BCLD is BCLD
    cfg = grids.longtail_config("smoke")
    assert cfg["methods"]["bcl_d"] == dict(cfg["methods"]["simclr"], prune_ratio=0.9, beta=0.97)
    assert "bcl_d" in grids.LONGTAIL_ARMS and "bcl_d" not in grids.LONGTAIL["cpu"]["arms"]
    model = build_pretrainer("bcl_d", cfg, num_classes=10, num_examples=20, seed=0)
    assert type(model) is BCLD and (model.prune_ratio, model.beta) == (0.9, 0.97)
    aug = model.augmenter.get_config()
    assert (aug["num_ops"], aug["min_magnitude"], aug["magnitude_jitter"]) == (2, 5.0, True)
    assert build_pretrainer("bcl", cfg, num_classes=10, num_examples=20, seed=0).augmenter.get_config()["num_ops"] == 1


def test_a_temperature_schedule_keeps_its_callback_beside_the_masks_and_the_strengths():
    from keras_ssl_lt.methods.bcl import BCL
    from keras_ssl_lt.methods.sdclr import SDCLR
    from keras_ssl_lt.methods.temperature import TemperatureCallback

    encoder = _hand_model(0.97).encoder
    ts = ksl.methods.CosineTemperature(tau_min=0.1, tau_max=1.0, period_epochs=4)
    boost = dict(augmenter=_augmenter(), num_examples=8)
    for cls, kwargs, want in (
        (SDCLR, {}, [TemperatureCallback, PruneMaskRefresh]),
        (BCL, boost, [TemperatureCallback, _BoostStrengthUpdate]),
        (BCLD, boost, [TemperatureCallback, PruneMaskRefresh, _BoostStrengthUpdate]),
    ):
        model = cls(encoder, projection_dim=3, projection_hidden_dim=5, temperature=ts, **kwargs)
        assert [type(c) for c in model.fit_callbacks()] == want, cls.__name__
