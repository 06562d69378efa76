"""Pre-trainers refuse what would train silently to garbage, on the current backend.

NaN inputs or a too-large SAM radius stop `fit` with a FloatingPointError (not NaN weights); a method whose
loss needs several examples refuses a smaller batch; `compile(optimizer=None)` is refused at compile time.
"""

import keras
import numpy as np
import pytest
from helpers import to_numpy

import keras_ssl_lt as ksl
from keras_ssl_lt.rwsam import sharpness

TINY = {
    "SimSiam": {"projection_dim": 16, "projection_hidden_dim": 16, "prediction_hidden_dim": 8},
    "SimCLR": {"projection_dim": 16, "projection_hidden_dim": 16},
    "BYOL": {"projection_dim": 16, "projection_hidden_dim": 16, "prediction_hidden_dim": 16},
    "MoCoV2": {"projection_dim": 16, "queue_size": 32},
    "Supervised": {"num_classes": 10},
}
EAGER = {"run_eagerly": True}  # the checks do not depend on compilation; eager steps skip a compile per model


def encoder():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x)))


def make(name, sharp=None, **compile_kwargs):
    keras.utils.set_random_seed(3)
    model = getattr(ksl, name)(encoder(), **TINY[name])
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), sharpness=sharp, **compile_kwargs)
    return model


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 8, 8, 3)).astype("float32")


# ------------------------------------------------------------------ non-finite loss
@pytest.mark.parametrize(("bad_batch", "step"), [(0, 1), (1, 2)])
def test_nan_pixel_stops_fit_naming_the_step(bad_batch, step):
    """A NaN pixel in batch 1 is caught one call late (during step 2); in the last batch at the end of fit."""
    x = images(16)
    x[8 * bad_batch + 3, 4, 4, 1] = np.nan
    model = make("SimSiam", **EAGER)
    with pytest.raises(FloatingPointError, match=f"non-finite training loss at training step {step} of this fit"):
        model.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0)


def test_nan_stops_fit_compiled_and_names_the_sam_radius():
    x = images(16)
    x[0, 0, 0, 0] = np.inf
    model = make("SimCLR", sharpness.SAM(rho=0.05))  # compiled (tf.function / jax.jit)
    with pytest.raises(FloatingPointError, match=r"step 1 of this fit .*NaN or Inf in the input.*rho=0\.05"):
        model.fit(x, batch_size=8, epochs=2, shuffle=False, verbose=0)


def test_nan_stops_train_on_batch():
    x = images(8)
    x[2] = np.nan
    model = make("Supervised", **EAGER)
    with pytest.raises(FloatingPointError, match="train_on_batch"):
        model.train_on_batch(x, np.arange(8) % 10)


def test_finite_training_is_not_disturbed():
    model = make("SimSiam", sharpness.SAM(rho=0.05), **EAGER)
    history = model.fit(images(16), batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"])) and len(history.history["loss"]) == 2


def test_huge_rho_is_refused_at_construction():
    with pytest.raises(ValueError, match="`rho` must be a finite number in"):
        sharpness.SAM(rho=1e30)
    config = keras.saving.serialize_keras_object(sharpness.SAM(rho=0.05))
    config["config"]["rho"] = 1e30  # as in an edited compile config of a saved model
    model = ksl.SimSiam(encoder(), **TINY["SimSiam"])
    with pytest.raises(ValueError, match="rho"):
        model.compile(optimizer="sgd", sharpness=config)


# ------------------------------------------------------------------ batches too small for the loss
@pytest.mark.parametrize("name", ["SimSiam", "SimCLR", "BYOL"])
def test_batch_of_one_is_refused(name):
    model = make(name, **EAGER)
    before = [to_numpy(v) for v in model.trainable_variables]
    with pytest.raises(ValueError, match=f"{name} needs training batches of at least 2 examples"):
        model.train_on_batch(images(1))
    for b, v in zip(before, model.trainable_variables, strict=True):
        np.testing.assert_array_equal(to_numpy(v), b)
    # fit on arrays is refused before the first step when its last batch would hold one example
    with pytest.raises(ValueError, match="batch_size=8 would end each epoch on a batch of 1"):
        model.fit(images(17), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="would end each epoch on a batch of 1"):
        model.fit(images(1), verbose=0)


def test_last_partial_batch_of_one_from_a_dataset_is_refused():
    """A batch size only known when the step runs (a generator's last batch) is refused too."""

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return images(8 if i == 0 else 1, seed=i)

    model = make("SimSiam")
    # JAX, PyTorch and TensorFlow with a static shape refuse the batch when its step is built (ValueError);
    # TensorFlow with an open batch dimension makes the step's loss NaN, reported as non-finite (with the cause).
    with pytest.raises((ValueError, FloatingPointError), match=r"at least 2 examples|batch smaller than 2"):
        model.fit(Batches(), epochs=1, verbose=0)


@pytest.mark.parametrize("name", ["MoCoV2", "Supervised"])
def test_batch_of_one_is_fine_where_the_loss_is_defined(name):
    model = make(name, **EAGER)
    x = images(1)
    logs = model.train_on_batch(x, np.array([3]), return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["loss"] > 0


# ------------------------------------------------------------------ compile
def test_compile_refuses_a_missing_optimizer():
    model = ksl.SimSiam(encoder(), **TINY["SimSiam"])
    with pytest.raises(ValueError, match=r"`optimizer`.*got None"):
        model.compile(optimizer=None)
