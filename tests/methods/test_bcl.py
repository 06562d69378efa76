"""BCL: the momentum losses against numpy, the strength mapping, boosted views, fit / SAM, saving, bad input."""

import keras
import numpy as np
import pytest
from helpers import run_serialization_test, to_numpy
from keras import ops

import keras_ssl_lt as ksl
from keras_ssl_lt.augment.boosted import bcl_cifar
from keras_ssl_lt.methods.bcl import BCL, boost_strength
from keras_ssl_lt.rwsam import sharpness

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (8, 8, 8, 3), dtype=np.uint8)
FEW_OPS = ["rotate", "invert", "equalize"]  # a few RandAugment ops keep compiles short


def _encoder():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x)))


class _Recording(BCL):
    """BCL that keeps each step's per-example losses and indices (eager steps only)."""

    def after_optimizer_step(self, terms):
        self.recorded.append((to_numpy(terms["loss"]).astype("float64"), to_numpy(terms["index"])))
        super().after_optimizer_step(terms)


def _model(cls=BCL, num_examples=12, **kwargs):
    model = cls(
        _encoder(),
        augmenter=bcl_cifar(crop_size=8, seed=0, ops=FEW_OPS),
        projection_dim=8,
        projection_hidden_dim=16,
        num_examples=num_examples,
        **kwargs,
    )
    model.recorded = []
    return model


def _np_strength(m, seen):
    out = np.zeros_like(m)
    v = m[seen]
    z = (v - v.mean()) / v.std(ddof=1)
    out[seen] = z / np.abs(z).max() / 2 + 0.5
    return out


def test_boost_strength_matches_numpy():
    m = RNG.random(10) * 5
    seen = np.arange(10) % 3 != 0
    np.testing.assert_allclose(to_numpy(boost_strength(m.astype("float32"), seen)), _np_strength(m, seen), atol=1e-6)
    np.testing.assert_allclose(
        to_numpy(boost_strength(m.astype("float32"))), _np_strength(m, np.ones(10, bool)), atol=1e-6
    )
    # Equal losses or a single example seen: 1/2 where seen (the code would divide by zero).
    np.testing.assert_allclose(to_numpy(boost_strength(np.ones(4, "float32"), [1, 1, 0, 1])), [0.5, 0.5, 0, 0.5])
    np.testing.assert_allclose(to_numpy(boost_strength(np.ones(3, "float32"), [0, 1, 0])), [0, 0.5, 0])


def test_momentum_losses_over_two_steps_and_epochs_match_numpy():
    beta = 0.9
    model = _model(_Recording, beta=beta)
    model.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=True)
    first, second = np.array([0, 3, 5, 7]), np.array([5, 3, 9, 10])
    model.train_on_batch({"images": IMAGES[:4], "index": first})
    model.train_on_batch({"images": IMAGES[4:], "index": second})
    (l1, i1), (l2, i2) = model.recorded
    np.testing.assert_array_equal(i1, first)
    np.testing.assert_array_equal(i2, second)
    want = np.zeros(12)
    want[first] = l1  # first sight: the loss itself
    want[[9, 10]] = l2[2:]
    want[[5, 3]] = beta * want[[5, 3]] + (1 - beta) * l2[:2]
    np.testing.assert_allclose(model.get_momentum_losses(), want, rtol=1e-5)
    seen = np.isin(np.arange(12), [0, 3, 5, 7, 9, 10])
    np.testing.assert_array_equal(to_numpy(model.momentum_seen) > 0, seen)
    assert np.all(model.get_boost_strength() == 0)  # strengths change only at an epoch's end
    np.testing.assert_allclose(model.update_boost_strength(), _np_strength(want, seen), atol=1e-5)

    # Through fit: two epochs over 8 examples, strengths from the final momentum losses at the end.
    model = _model(_Recording, beta=beta, num_examples=8)
    model.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=True)
    index = np.arange(8)
    model.fit({"images": IMAGES, "index": index}, batch_size=4, epochs=2, shuffle=False, verbose=0)
    m = np.zeros(8)
    for step, (loss, idx) in enumerate(model.recorded):
        m[idx] = loss if step < 2 else beta * m[idx] + (1 - beta) * loss
    np.testing.assert_allclose(model.get_momentum_losses(), m, rtol=1e-5)
    np.testing.assert_allclose(model.get_boost_strength(), _np_strength(m, np.ones(8, bool)), atol=1e-5)


@pytest.mark.parametrize("boosted_views", ["both", "first"])
def test_views_use_each_examples_strength(boosted_views):
    model = _model(boosted_views=boosted_views)
    table = np.linspace(0.0, 1.0, 12).astype("float32")
    model.boost_strengths.assign(table)
    index = np.array([11, 0, 6, 9])
    reference = bcl_cifar(crop_size=8, seed=0, ops=FEW_OPS)  # same seeds, same random stream
    views = [to_numpy(v) for v in model.make_views(IMAGES[:4], index=index)]  # as a training step calls it
    s = table[index]
    want = [reference(IMAGES[:4], training=True, strength=s)]
    want.append(reference(IMAGES[:4], training=True, strength=s if boosted_views == "both" else None))
    for got, expected in zip(views, want, strict=True):
        np.testing.assert_allclose(got, to_numpy(expected), atol=1e-5)


def test_fit_compiled_and_with_sam():
    for sharp in (None, sharpness.SAM(rho=0.05)):
        model = _model()
        # The plain fit runs compiled; the SAM one eagerly, except on JAX (where eager steps are the slower).
        eager = sharp is not None and keras.backend.backend() != "jax"
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), sharpness=sharp, run_eagerly=eager)
        history = model.fit({"images": IMAGES, "index": np.arange(8) + 2}, batch_size=4, epochs=2, verbose=0)
        for key in ("loss", "z_std", "strength"):
            assert np.all(np.isfinite(history.history[key])), key
        assert history.history["strength"][0] == 0.0 and history.history["strength"][1] > 0.0
        m = model.get_momentum_losses()
        assert np.all(m[2:10] > 0) and np.all(m[[0, 1, 10, 11]] == 0)  # examples never seen are left alone
        if sharp is not None:
            assert np.isfinite(history.history["perturbed_loss"][-1])


def test_config_round_trip_and_saving_keep_the_state(tmp_path):
    model = _model(beta=0.8, boosted_views="second", temperature=0.3)
    model.compile(optimizer=keras.optimizers.SGD(0.05), run_eagerly=True)
    model.fit({"images": IMAGES, "index": np.arange(8)}, batch_size=4, epochs=1, verbose=0)
    loaded = run_serialization_test(model, IMAGES, tmp_path)
    assert (loaded.beta, loaded.boosted_views, loaded.temperature) == (0.8, "second", 0.3)
    np.testing.assert_array_equal(loaded.get_momentum_losses(), model.get_momentum_losses())
    np.testing.assert_array_equal(loaded.get_boost_strength(), model.get_boost_strength())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"beta": 1.0}, "`beta`"),
        ({"beta": -0.1}, "`beta`"),
        ({"boosted_views": "all"}, "`boosted_views`"),
        ({"num_examples": None}, "`num_examples=`"),
        ({"augmenter": ksl.augment.simclr_cifar(crop_size=8)}, "`augmenter` of BCL must be"),
        ({"augmenter": None}, "`augmenter` of BCL must be"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, match):
    args = {"augmenter": bcl_cifar(crop_size=8), "num_examples": 8, **kwargs}
    with pytest.raises(ValueError, match=match):
        BCL(_encoder(), projection_dim=8, projection_hidden_dim=16, **args)


def test_a_batch_without_index_is_refused():
    model = _model()
    model.compile(optimizer="sgd", run_eagerly=True)
    with pytest.raises(ValueError, match=r"BCL keeps per-example state.*'index'"):
        model.train_on_batch({"images": IMAGES[:4]})
    with pytest.raises(ValueError, match="index"):
        model.train_on_batch({"images": IMAGES[:4], "index": np.array([0, 1, 2, 12])})
    assert np.all(model.get_momentum_losses() == 0)
    assert float(ops.sum(model.momentum_seen)) == 0.0
