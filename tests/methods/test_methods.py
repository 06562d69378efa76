"""Pre-trainers on the current backend: training on real CIFAR-10, state updates, saving, precision."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import run_precision_test, run_serialization_test, to_numpy
from keras import ops

import keras_ssl_lt as ksl
from keras_ssl_lt import losses
from keras_ssl_lt.methods.base import batchnorm_variables
from keras_ssl_lt.rwsam import sharpness

TINY = {
    "SimSiam": {"projection_dim": 64, "projection_hidden_dim": 64, "prediction_hidden_dim": 16},
    "SimCLR": {"projection_dim": 32, "projection_hidden_dim": 64},
    "MoCoV2": {"projection_dim": 32, "queue_size": 64, "momentum": 0.9},
    "BYOL": {"projection_dim": 32, "projection_hidden_dim": 64, "prediction_hidden_dim": 64, "momentum": 0.9},
    "Supervised": {"num_classes": 10},
}


# Most tests check semantics over a few steps: running the step eagerly avoids a compile per model
# (seconds to tens of seconds each on 2 cores). The compiled path (tf.function/XLA, jax.jit) is
# exercised by test_fit_on_pipeline_with_rwsam_logs here and by tests/test_sharpness.py.
EAGER = {"run_eagerly": True}


def npv(v):
    return np.array(ops.convert_to_numpy(v.value if hasattr(v, "value") else v))


def tiny_encoder():
    """Two conv blocks with BatchNorm: the smallest encoder that exercises every mechanism, and
    quick to compile (JAX compiles each new model's step; a ResNet takes tens of seconds on 2 cores)."""
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for i, filters in enumerate((8, 16)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
        x = keras.layers.ReLU()(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="tiny")


def make(name, augmenter="default", encoder="tiny", **overrides):
    keras.utils.set_random_seed(7)
    if augmenter == "default":
        augmenter = ksl.augment.supervised_cifar() if name == "Supervised" else ksl.augment.simsiam_cifar()
    encoder = tiny_encoder() if encoder == "tiny" else ksl.backbones.small_resnet(width=0.25)
    kwargs = dict(TINY[name], **overrides)
    return getattr(ksl, name)(encoder, augmenter=augmenter, **kwargs)


def batch_of(data, n=32):
    return {
        "images": data["x_train"][:n],
        "labels": data["y_train"][:n],
        "index": np.arange(n, dtype="int32"),
    }


@pytest.mark.parametrize("name", list(TINY))
def test_loss_finite_decreases_and_reaches_encoder(name, cifar10_small):
    """Fixed views (no augmentation) make the decrease deterministic; real CIFAR-10 images."""
    model = make(name, augmenter=None)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), **EAGER)
    batch = batch_of(cifar10_small, 16)
    batch["images"] = batch["images"].astype("float32") / 255.0
    before = [npv(v) for v in model.encoder.trainable_variables]
    history = []
    queue0 = npv(model.queue) if name == "MoCoV2" else None
    for _ in range(6):
        logs = model.train_on_batch(batch, return_dict=True)
        history.append(float(logs["loss"]))
        if queue0 is not None:
            # On a repeated batch the queue fills with the batch's own keys, which makes InfoNCE rise
            # by design; hold the negatives fixed to see the encoder learn (the queue update itself
            # is checked exactly in test_moco_queue_and_momentum_update_exact).
            model.queue.assign(queue0)
        assert np.isfinite(logs["z_std"]) and logs["z_std"] > 0
    assert np.all(np.isfinite(history))
    assert history[-1] < history[0], history
    after = [npv(v) for v in model.encoder.trainable_variables]
    changed = [not np.allclose(a, b) for a, b in zip(before, after, strict=True)]
    assert all(changed), "every encoder variable must receive a gradient"


def test_fit_on_pipeline_with_rwsam_logs(cifar10_small):
    x, y = cifar10_small["x_train"], cifar10_small["y_train"]
    source = ksl.data.from_arrays(x, y)
    subset = ksl.data.make_subset(source.labels, profile="exp", ratio=0.1, max_per_class=64)
    ds = ksl.data.ssl_dataset(source, subset, batch_size=32, seed=0)
    model = make("SimSiam", encoder="small_resnet", num_examples=len(source))
    weights = ksl.rwsam.weights.class_rank_weights(source.labels, base=1.2)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        sharpness=sharpness.RWSAM(rho=2.0, adaptive=True, weights=weights),
    )
    history = model.fit(ds, epochs=1, verbose=0)
    for key in ("loss", "z_std", "perturbed_loss", "weighted_loss"):
        assert np.isfinite(history.history[key][0]), key
    np.testing.assert_allclose(model.get_example_weights(), weights, rtol=1e-6)


def test_sam_keeps_first_pass_batchnorm_statistics(cifar10_small):
    """With bn_update='first' the moving statistics after a SAM step equal those of a plain step."""
    batch = batch_of(cifar10_small, 16)
    stats = {}
    batch["images"] = batch["images"].astype("float32") / 255.0
    cases = (("plain", None), ("sam", sharpness.SAM(rho=0.5)), ("both", sharpness.SAM(rho=0.5, bn_update="both")))
    for label, sharp in cases:
        model = make("SimSiam", augmenter=None)
        model.compile(optimizer=keras.optimizers.SGD(0.0), sharpness=sharp, **EAGER)
        model.train_on_batch(batch)
        stats[label] = [npv(v) for v in model._batchnorm_variables()]
    for p, s in zip(stats["plain"], stats["sam"], strict=True):
        np.testing.assert_allclose(s, p, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(p, b, atol=1e-6) for p, b in zip(stats["plain"], stats["both"], strict=True))


def test_moco_queue_and_momentum_update_exact(cifar10_small):
    model = make("MoCoV2", augmenter=None, momentum=0.9)
    model.compile(optimizer=keras.optimizers.SGD(0.1), **EAGER)
    x = cifar10_small["x_train"][:8].astype("float32") / 255.0
    queue0 = npv(model.queue)
    key0 = [npv(v) for v in model.key_encoder.weights]
    keys = losses.l2_normalize(model.key_projector(model.key_encoder(x, training=True), training=True))
    keys = npv(keys)
    model.train_on_batch(x)
    queue1 = npv(model.queue)
    np.testing.assert_allclose(queue1[:8], keys, atol=1e-5)
    np.testing.assert_array_equal(queue1[8:], queue0[:-8])
    for k0, k1, q1, q in zip(
        key0, model.key_encoder.weights, model.encoder.weights, model.encoder.weights, strict=True
    ):
        if q.trainable:
            np.testing.assert_allclose(npv(k1), 0.9 * k0 + 0.1 * npv(q1), rtol=1e-5, atol=1e-6)


def test_byol_ema_exact(cifar10_small):
    model = make("BYOL", augmenter=None, momentum=0.9)
    model.compile(optimizer=keras.optimizers.SGD(0.1), **EAGER)
    x = cifar10_small["x_train"][:8].astype("float32") / 255.0
    t0 = [npv(v) for v in model.target_projector.weights]
    model.train_on_batch(x)
    for t, v0, o in zip(model.target_projector.weights, t0, model.projector.weights, strict=True):
        if o.trainable:
            np.testing.assert_allclose(npv(t), 0.9 * v0 + 0.1 * npv(o), rtol=1e-5, atol=1e-6)
    scheduled = make("BYOL", augmenter=None, momentum=0.9, total_steps=10)
    scheduled.compile(optimizer=keras.optimizers.SGD(0.1), **EAGER)
    scheduled.train_on_batch(x)  # iterations is 1 after the step: tau = 1 - 0.1 * (cos(pi/10) + 1) / 2
    np.testing.assert_allclose(float(scheduled.current_momentum()), 1 - 0.1 * (np.cos(np.pi / 10) + 1) / 2, rtol=1e-6)


@pytest.mark.parametrize("name, augmenter", [("SimSiam", "default"), ("MoCoV2", None)])
def test_keras_save_load_round_trip(name, augmenter, cifar10_small, tmp_path):
    model = make(name, augmenter=augmenter, num_examples=100)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        sharpness=sharpness.RWSAM(rho=1.0, adaptive=True, weights=np.linspace(1, 2, 100)),
        **EAGER,
    )
    batch = batch_of(cifar10_small, 16)
    if augmenter is None:
        batch["images"] = batch["images"].astype("float32") / 255.0
    model.train_on_batch(batch)
    loaded = run_serialization_test(model, batch["images"][:8], tmp_path)
    np.testing.assert_array_equal(loaded.get_example_weights(), model.get_example_weights())
    assert isinstance(loaded.sharpness, sharpness.RWSAM) and loaded.sharpness.rho == 1.0
    if augmenter is None:  # (one resumed step is enough: each compile costs seconds)
        loaded.train_on_batch(batch)  # resumes training


def test_mixed_bfloat16_step(cifar10_small):
    batch = batch_of(cifar10_small, 16)
    batch["images"] = batch["images"].astype("float32") / 255.0

    def build():
        model = make("SimSiam", augmenter=None)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), sharpness=sharpness.SAM(0.05), **EAGER)
        return model

    def train(model):
        logs = model.train_on_batch(batch, return_dict=True)
        assert "perturbed_loss" in logs
        return logs

    run_precision_test(build, batch["images"][:4], train=train)


def test_evaluate_is_reproducible_and_leaves_training_state_alone(cifar10_small):
    """`evaluate` draws its random views from a fixed state: same loss each call, augmenter seeds untouched."""
    batch = batch_of(cifar10_small, 16)

    def fresh():
        model = make("SimSiam")  # with the SimSiam augmenter: random views
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
        return model

    model = fresh()
    seeds = [to_numpy(v) for v in model.augmenter.non_trainable_variables]
    assert seeds, "the augmenter must hold its random state in variables"
    first = model.evaluate(batch, batch_size=8, verbose=0, return_dict=True)
    second = model.evaluate(batch, batch_size=8, verbose=0, return_dict=True)
    assert first["loss"] == second["loss"] and first["z_std"] == second["z_std"]
    for before, v in zip(seeds, model.augmenter.non_trainable_variables, strict=True):
        np.testing.assert_array_equal(to_numpy(v), before)
    # ... so a training step after an evaluation is the step it would have been without one
    model.train_on_batch(batch)
    reference = fresh()
    reference.train_on_batch(batch)
    for a, b in zip(model.trainable_variables, reference.trainable_variables, strict=True):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    # training mode still draws fresh views: the training random state moved
    assert any(
        not np.array_equal(to_numpy(v), s) for v, s in zip(model.augmenter.non_trainable_variables, seeds, strict=True)
    )
    # and per-example losses are reproducible too
    np.testing.assert_array_equal(
        model.per_example_losses(batch["images"][:8]), model.per_example_losses(batch["images"][:8])
    )


class _HiddenBatchNorm(keras.layers.Layer):
    """A plain Layer holding a BatchNormalization: not reachable through `keras.Model.layers`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(8)
        self.bn = keras.layers.BatchNormalization()

    def call(self, x, training=False):
        return self.bn(self.dense(x), training=training)


def test_batchnorm_walk_is_public_and_refuses_hidden_statistics():
    model = make("SimSiam", augmenter=None)
    found = {id(v) for v in batchnorm_variables(model)}
    # every BatchNormalization of the encoder and the heads, reached through Model.layers
    expected = [
        v
        for m in (model.encoder, model.projector, model.predictor)
        for layer in m.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for v in layer.non_trainable_variables
    ]
    assert expected and found == {id(v) for v in expected}
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    encoder = keras.Model(inputs, _HiddenBatchNorm()(x))
    hidden = ksl.SimSiam(encoder, **TINY["SimSiam"])
    with pytest.raises(ValueError, match="BatchNormalization"):
        hidden.compile(optimizer="sgd", sharpness=sharpness.SAM(0.05))
    hidden.compile(optimizer="sgd", sharpness=sharpness.SAM(0.05, bn_update="both"))  # nothing to keep: fine
    hidden.compile(optimizer="sgd")  # plain steps do not need the walk


def test_bad_input_raises(cifar10_small):
    with pytest.raises(ValueError, match="encoder"):
        ksl.SimSiam(keras.Sequential([keras.layers.Dense(3)]))
    with pytest.raises(ValueError, match="num_classes"):
        ksl.Supervised(ksl.backbones.small_resnet(width=0.25), num_classes=1)
    for name, bad, match in (
        ("SimSiam", {"projection_dim": 0}, "projection_dim"),
        ("SimSiam", {"projector_layers": True}, "projector_layers"),
        ("SimCLR", {"temperature": 0.0}, "temperature"),
        ("MoCoV2", {"momentum": 1.5}, "momentum"),
        ("MoCoV2", {"queue_size": 2.5}, "queue_size"),
        ("BYOL", {"total_steps": 0}, "total_steps"),
    ):
        with pytest.raises(ValueError, match=match):
            make(name, augmenter=None, **bad)
    model = make("SimSiam", augmenter=None)
    with pytest.raises(ValueError, match="loss"):
        model.compile(optimizer="sgd", loss="mse", **EAGER)
    with pytest.raises(ValueError, match="RWSAM needs per-example weights"):
        model.compile(optimizer="sgd", sharpness=sharpness.RWSAM(), **EAGER)
    sup = make("Supervised", augmenter=None)
    sup.compile(optimizer="sgd", **EAGER)
    with pytest.raises(ValueError, match="labels"):
        sup.train_on_batch(cifar10_small["x_train"][:8])


def test_methods_import_without_tensorflow():
    if keras.backend.backend() == "tensorflow":
        pytest.skip("this check runs under the jax and torch backends")
    code = (
        # Block TensorFlow as an absent install does: an import finder that refuses it (a `None` entry in
        # sys.modules would instead make Keras' own layers believe TensorFlow is loaded and then fail).
        # Keras and its backend load first (PyTorch's dynamo probes installed modules with find_spec while it
        # imports); the final assertion still catches any TensorFlow import by Keras or by this package.
        "import sys, importlib.abc, keras\n"
        "class _NoTF(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'tensorflow' or name.startswith('tensorflow.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (blocked by the test)')\n"
        "sys.meta_path.insert(0, _NoTF())\n"
        "import numpy as np, keras_ssl_lt as ksl\n"
        "if keras.backend.backend() == 'torch':\n"
        "    import torch; torch.backends.mkldnn.enabled = False  # see tests/conftest.py\n"
        "from keras_ssl_lt.callbacks import KNNMonitor, LinearProbe\n"
        "aug = ksl.augment.simsiam_cifar()\n"
        "x = np.random.randint(0, 256, (8, 32, 32, 3), dtype='uint8')\n"
        "views = np.asarray(aug(x, training=True))\n"
        "m = ksl.SimSiam(ksl.backbones.small_resnet(width=0.25), projection_dim=16, projection_hidden_dim=16,"
        " prediction_hidden_dim=8)\n"
        "m.compile(optimizer='sgd', sharpness=ksl.SAM(0.05))\n"
        "print(m.train_on_batch(views, return_dict=True))\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
