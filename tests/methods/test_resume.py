"""Training resumed from a saved pre-trainer continues its augmentation stream, on the current backend."""

import keras
import numpy as np
import pytest
from helpers import to_numpy

import keras_ssl_lt as ksl

TINY = {"projection_dim": 16, "projection_hidden_dim": 16, "prediction_hidden_dim": 8}


def build():
    keras.utils.set_random_seed(11)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    encoder = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x)))
    # seed=None: the augmenter's generators start from a random state, so a reloaded model (built afresh
    # from its config) could only continue the stream if the file carries it.
    augmenter = ksl.augment.simsiam_cifar(crop_size=16)
    model = ksl.SimSiam(encoder, augmenter=augmenter, **TINY)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), run_eagerly=True)
    return model


def states(model):
    return [to_numpy(v) for v in model._seed_generator_states()]


def test_resume_continues_the_augmentation_stream(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype="uint8")
    model = build()
    first = states(model)
    assert first, "the augmenter holds random-generator states"
    for _ in range(2):  # k = 2 steps
        model.train_on_batch(x)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)

    # the stream continues where it was: the states equal the saved model's and differ from the first step's
    for a, b in zip(states(model), states(loaded), strict=True):
        np.testing.assert_array_equal(b, a)
    assert any(not np.array_equal(b, f) for b, f in zip(states(loaded), first, strict=True))
    # so the views of step k + 1 are the uninterrupted run's, not those of step 1
    fresh = build()
    first_views = [to_numpy(v) for v in fresh.make_views(x)]
    views = [to_numpy(v) for v in model.make_views(x)]
    resumed_views = [to_numpy(v) for v in loaded.make_views(x)]
    for v, r in zip(views, resumed_views, strict=True):
        np.testing.assert_array_equal(r, v)
    assert not np.allclose(resumed_views[0], first_views[0])

    # one more training step each: the resumed model takes the uninterrupted run's step
    model.train_on_batch(x)
    loaded.train_on_batch(x)
    for a, b in zip(model.trainable_variables, loaded.trainable_variables, strict=True):
        np.testing.assert_allclose(to_numpy(b), to_numpy(a), rtol=1e-6, atol=1e-7)
    for a, b in zip(states(model), states(loaded), strict=True):
        np.testing.assert_array_equal(b, a)
    # and evaluation draws from the same fixed state as before saving
    np.testing.assert_array_equal(loaded.per_example_losses(x), model.per_example_losses(x))


def test_weights_files_carry_the_states_too(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (8, 16, 16, 3), dtype="uint8")
    model = build()
    model(x)  # builds the model
    model.make_views(x)  # moves the training random state, as a step does
    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    other = build()
    other(x)  # builds the model (inference: the training random state does not move)
    other.load_weights(path)
    for a, b in zip(states(model), states(other), strict=True):
        np.testing.assert_array_equal(b, a)


def test_files_without_states_warn_and_mismatched_states_are_refused():
    model = build()
    with pytest.warns(UserWarning, match="random-generator states"):
        model.load_own_variables({})  # as a file saved before the states were kept
    with pytest.raises(ValueError, match="random-generator states"):
        model.load_own_variables({"seed_generator_state_0": np.zeros(2, "int64")})
