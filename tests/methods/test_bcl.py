"""BCL: the momentum losses against numpy, the strength mapping, boosted views, fit / SAM, saving, bad input.

Kept quick for the suite: a Dense encoder, an augmenter with a padded crop, no colour jitter and three RandAugment
ops, steps compiled on JAX (eager JAX compiles op by op) and eager on TensorFlow and PyTorch (where compiling
would dominate these few steps); the compiled fit on TensorFlow and PyTorch is BCL's doctest.
"""

import keras
import numpy as np
import pytest
from helpers import LastStepRecorder, np_boost_strength, replay_momentum, run_serialization_test, to_numpy
from keras import ops

import keras_ssl_lt as ksl
from keras_ssl_lt.augment.boosted import BoostedViewAugmenter, bcl_cifar
from keras_ssl_lt.methods.bcl import BCL, boost_strength
from keras_ssl_lt.rwsam import sharpness

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (8, 8, 8, 3), dtype=np.uint8)
FEW_OPS = ["rotate", "invert", "equalize"]  # a few RandAugment ops keep compiles short
EAGER = keras.backend.backend() != "jax"


def _encoder():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)))  # BatchNorm: in the projector


def _augmenter(cls=BoostedViewAugmenter):
    return cls(**{**bcl_cifar(crop_size=8, seed=0, crop="pad", jitter=None, ops=FEW_OPS).get_config(), "name": None})


@keras.saving.register_keras_serializable(package="test_bcl")
class _Recording(LastStepRecorder, BCL):
    """BCL that keeps the last step's per-example losses and indices in variables (read between steps, also when
    the step is compiled), and notes whether a training step handed `make_views` the batch's index."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.views_had_index = False

    def make_views(self, images, training=True, index=None):
        self.views_had_index = self.views_had_index or index is not None  # at trace time when compiled
        return super().make_views(images, training=training, index=index)

    def recorded(self):
        self._ksl_sync_state()
        return to_numpy(self.last_loss.value).astype("float64"), to_numpy(self.last_index.value)


class _Record(keras.callbacks.Callback):
    """Each step's recorded losses and indices during `fit`, and the strength table after each step."""

    def __init__(self):
        super().__init__()
        self.steps, self.strengths = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(self.model.recorded())
        self.strengths.append(self.model.get_boost_strength())


def _model(cls=_Recording, num_examples=12, augmenter=None, **kwargs):
    return cls(
        _encoder(),
        augmenter=augmenter or _augmenter(),
        projection_dim=8,
        projection_hidden_dim=16,
        num_examples=num_examples,
        rankme=False,  # tested elsewhere; its first use runs the model eagerly (seconds on JAX)
        **kwargs,
    )


def test_boost_strength_matches_numpy():
    # Tables of 12, as the models below: on JAX the eager ops compile once per shape.
    m = RNG.random(12) * 5
    seen = np.arange(12) % 3 != 0
    np.testing.assert_allclose(
        to_numpy(boost_strength(m.astype("float32"), seen)), np_boost_strength(m, seen), atol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(boost_strength(m.astype("float32"))), np_boost_strength(m, np.ones(12, bool)), atol=1e-6
    )
    # Equal losses or a single example seen: 1/2 where seen (the code would divide by zero).
    np.testing.assert_allclose(to_numpy(boost_strength(np.ones(12, "float32"), seen)), np.where(seen, 0.5, 0.0))
    one = np.arange(12) == 4
    np.testing.assert_allclose(to_numpy(boost_strength(m.astype("float32"), one)), np.where(one, 0.5, 0.0))


def test_momentum_losses_over_two_steps_and_two_epochs_with_sam_match_numpy_and_are_saved(tmp_path):
    # One model and one compiled step (on JAX) for the whole story: an epoch of two steps, a fit of two epochs,
    # then saving; every step goes through `fit`, whose batches all have the same structure (no recompiles).
    beta = 0.8
    model = _model(beta=beta, boosted_views="second", temperature=0.3)
    sam = sharpness.SAM(rho=0.05)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), sharpness=sam, run_eagerly=EAGER)

    # One epoch of two steps: the momentum loss is the loss at first sight, then its moving average (examples 5 and
    # 3 are seen twice); the strengths stay 0 until the epoch's end, then come from the momentum losses.
    record = _Record()
    index = np.array([0, 3, 5, 7, 5, 3, 9, 10])
    history = model.fit({"images": IMAGES, "index": index}, batch_size=4, shuffle=False, verbose=0, callbacks=[record])
    (l1, i1), (l2, i2) = record.steps
    np.testing.assert_array_equal(i1, index[:4])
    np.testing.assert_array_equal(i2, index[4:])
    assert model.views_had_index  # the training step drew its views with the batch's index
    assert np.all(record.strengths[-1] == 0) and history.history["strength"] == [0.0]
    m = np.zeros(12)
    m[i1] = l1
    m[[9, 10]] = l2[2:]
    m[[5, 3]] = beta * m[[5, 3]] + (1 - beta) * l2[:2]
    seen = np.isin(np.arange(12), index)
    np.testing.assert_allclose(model.get_momentum_losses(), m, rtol=1e-5)
    np.testing.assert_array_equal(to_numpy(model.momentum_seen) > 0, seen)
    strength = np_boost_strength(m, seen)
    np.testing.assert_allclose(model.get_boost_strength(), strength, atol=1e-5)
    np.testing.assert_allclose(model.update_boost_strength(), strength, atol=1e-5)  # as a custom loop calls it

    # Two epochs over examples 2..9 (1 and 11 are never seen): the momentum losses go on from the steps above, the
    # strengths are set from them at each epoch's end, and the strength logged for an epoch is the mean strength
    # its steps looked up.
    record, index = _Record(), np.arange(8) + 2
    history = model.fit(
        {"images": IMAGES, "index": index}, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[record]
    )
    strength, logged = replay_momentum(record.steps, index, beta, m, seen, strength)
    np.testing.assert_allclose(model.get_momentum_losses(), m, rtol=1e-5)
    np.testing.assert_array_equal(to_numpy(model.momentum_seen) > 0, seen)
    assert not seen[[1, 11]].any()
    np.testing.assert_allclose(model.get_boost_strength(), strength, atol=1e-5)
    np.testing.assert_allclose(history.history["strength"], logged, atol=1e-5)
    for key in ("loss", "z_std", "perturbed_loss"):
        assert np.all(np.isfinite(history.history[key])), key

    loaded = run_serialization_test(model, IMAGES, tmp_path)
    assert (loaded.beta, loaded.boosted_views, loaded.temperature) == (0.8, "second", 0.3)
    assert loaded.sharpness.get_config() == sam.get_config()
    np.testing.assert_array_equal(loaded.get_momentum_losses(), model.get_momentum_losses())
    np.testing.assert_array_equal(loaded.get_boost_strength(), model.get_boost_strength())


class _Spy(BoostedViewAugmenter):
    """Records each call's `training` and `strength`; computes the views on TensorFlow and PyTorch only (eager
    JAX would compile every operation of the augmenter for this one check)."""

    compute = keras.backend.backend() != "jax"

    def call(self, inputs, training=False, strength=None):
        self.calls.append((training, None if strength is None else to_numpy(strength)))
        if self.compute:
            return super().call(inputs, training=training, strength=strength)
        return ops.cast(inputs, "float32")


def test_views_use_each_examples_strength():
    table = np.linspace(0.0, 1.0, 12).astype("float32")
    index = np.array([11, 0, 6, 9])
    s, x = table[index], IMAGES[:4]

    def views(model, **kwargs):
        model.augmenter.calls = []
        return [to_numpy(v) for v in model.make_views(x, **kwargs)], model.augmenter.calls

    def check(got, calls, expected, reference):  # expected: (training, strength or None) per view
        assert len(calls) == len(expected)
        for (training, strength), (want_training, want_strength) in zip(calls, expected, strict=True):
            assert training == want_training
            assert (strength is None) == (want_strength is None)
            if want_strength is not None:
                np.testing.assert_allclose(strength, want_strength)
        if _Spy.compute:  # the views themselves: an augmenter with the same seeds and stream, called that way
            for view, (training, strength) in zip(got, expected, strict=True):
                want = reference(x, training=training, strength=strength)
                np.testing.assert_allclose(view, to_numpy(want), atol=1e-5)

    for boosted_views, boosted in (("both", (1, 1)), ("first", (1, 0)), ("second", (0, 1)), ("none", (0, 0))):
        model = _model(BCL, boosted_views=boosted_views, augmenter=_augmenter(_Spy))
        model.boost_strengths.assign(table)
        reference = _augmenter()
        got, calls = views(model, index=index)  # as a training step calls it
        check(got, calls, [(True, s if b else None) for b in boosted], reference)
    # Without an index (evaluation) the views are plain; training=False gives the inference preprocessing.
    check(*views(model), [(True, None), (True, None)], reference)
    check(*views(model, training=False, index=index), [(False, None), (False, None)], reference)


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


def test_a_batch_without_index_or_repeating_an_example_is_refused():
    model = _model(BCL)
    model.compile(optimizer="sgd", run_eagerly=True)
    with pytest.raises(ValueError, match=r"BCL keeps per-example state.*'index'"):
        model.train_on_batch({"images": IMAGES[:4]})
    with pytest.raises(ValueError, match="index"):
        model.train_on_batch({"images": IMAGES[:4], "index": np.array([0, 1, 2, 12])})
    with pytest.raises(ValueError, match=r"must not repeat an example; got position\(s\) \[3\]"):
        model.train_on_batch({"images": IMAGES[:4], "index": np.array([3, 1, 3, 2])})
    assert np.all(model.get_momentum_losses() == 0)
    assert float(ops.sum(model.momentum_seen)) == 0.0
