"""What Keras' own augmentation layers do per example.

`ViewAugmenter` uses `keras.layers.RandomFlip("horizontal")` and `keras.layers.RandomGrayscale(factor=p)`
because they draw per example; it does not use Keras' `RandomCrop` and `RandomGaussianBlur`, which draw
once per batch. A Keras release that changes any of this fails here.
"""

import keras
import numpy as np
from augment_helpers import RNG, per_example_equal, to_np

from keras_ssl_lt.augment import ops as aug_ops


def test_keras_random_flip_flips_each_example_with_probability_one_half():
    x = RNG.random((400, 4, 5, 3)).astype("float32")
    layer = keras.layers.RandomFlip("horizontal", seed=1)
    out = to_np(layer(x, training=True))
    flipped = per_example_equal(out, x[:, :, ::-1])
    assert np.all(flipped | per_example_equal(out, x))  # each example: left-right flip or unchanged
    assert 0.42 < flipped.mean() < 0.58  # per example, not one coin for the batch
    second = per_example_equal(to_np(layer(x, training=True)), x[:, :, ::-1])
    assert not np.array_equal(flipped, second)  # the seed generator advances
    np.testing.assert_array_equal(to_np(layer(x, training=False)), x)


def test_keras_random_grayscale_is_per_example_with_itu601_weights():
    x = RNG.random((400, 4, 4, 3)).astype("float32")
    out = to_np(keras.layers.RandomGrayscale(factor=0.2, seed=2)(x, training=True))
    gray = np.repeat(to_np(aug_ops.grayscale(x)), 3, axis=-1)
    is_gray = per_example_equal(out, gray, atol=1e-5)
    assert np.all(is_gray | per_example_equal(out, x))  # each example: our grayscale (3 channels) or unchanged
    assert 0.13 < is_gray.mean() < 0.27
    assert out.shape == x.shape
    np.testing.assert_array_equal(to_np(keras.layers.RandomGrayscale(factor=1.0)(x, training=False)), x)


def test_keras_random_crop_and_blur_are_not_per_example():
    """Why the package has its own crop and blur layers: Keras' draw one window / one sigma per batch."""
    x = np.tile(RNG.random((1, 16, 16, 3)).astype("float32"), (32, 1, 1, 1))
    crops = to_np(keras.layers.RandomCrop(8, 8, seed=1)(x, training=True))
    assert len({c.tobytes() for c in crops}) == 1  # one window for the whole batch
    blur = keras.layers.RandomGaussianBlur(factor=1.0, kernel_size=5, sigma=(0.5, 2.0), value_range=(0, 1), seed=1)
    blurred = to_np(blur(x, training=True))
    assert len({np.round(b, 5).tobytes() for b in blurred}) <= 2  # blurred with one sigma, or unchanged
