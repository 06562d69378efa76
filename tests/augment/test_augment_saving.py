"""Serialisation (`get_config` / `from_config`, `.keras` files) and mixed precision of every layer and preset.

Uses the suite's shared checks (`tests/helpers.py`), plus what is particular to random layers: the seed.
"""

import keras
import numpy as np
import pytest
from augment_helpers import IMGS, to_np
from helpers import run_precision_test, run_serialization_test

from keras_ssl_lt import augment
from keras_ssl_lt.augment import (
    RandomColorJitter,
    RandomCropWithPadding,
    RandomGaussianBlur,
    RandomResizedCrop,
    ViewAugmenter,
)

LAYERS = {
    "resized_crop": lambda: RandomResizedCrop(
        16, scale=(0.3, 0.9), ratio=(0.5, 2.0), center_crop_fraction=0.75, seed=1
    ),
    "pad_crop": lambda: RandomCropWithPadding(16, padding=2, seed=1),
    "jitter": lambda: RandomColorJitter(0.1, 0.2, 0.3, 0.05, p=0.5, random_order=False, seed=1),
    "blur": lambda: RandomGaussianBlur(0.5, sigma=(0.2, 1.0), kernel_size=5, seed=1),
    "simsiam": lambda: augment.simsiam_cifar(seed=1),
    "simclr": lambda: augment.simclr_cifar(seed=1, scale=(0.08, 1.0)),
    "moco": lambda: augment.moco_v2_imagenet(size=32, seed=1),
    "supervised": lambda: augment.supervised_cifar(seed=1),
    "unseeded": lambda: ViewAugmenter(crop_size=16, jitter=None, blur_p=0.3, blur_kernel_size=3),
}


def _inputs(layer):
    return IMGS if isinstance(layer, ViewAugmenter) else IMGS.astype("float32") / 255


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_round_trip(name, tmp_path):
    layer = LAYERS[name]()
    inputs = _inputs(layer)
    layer(inputs, training=True)  # a used layer: its config must not depend on its state
    loaded = run_serialization_test(layer, inputs, tmp_path)
    assert loaded.get_config() == layer.get_config()
    if layer.get_config()["seed"] is not None:
        # Keras does not write `SeedGenerator` states into `.keras` files: a loaded layer restarts its
        # random stream from its `seed`, so its draws equal those of a new layer from the same config.
        fresh = type(layer).from_config(layer.get_config())
        np.testing.assert_allclose(to_np(loaded(inputs, training=True)), to_np(fresh(inputs, training=True)), atol=1e-5)


@pytest.mark.parametrize("name", ["resized_crop", "pad_crop", "jitter", "blur", "moco", "supervised"])
def test_mixed_bfloat16(name):
    """Float32 maths inside, the output in the compute dtype (bfloat16), in both modes."""
    inputs = _inputs(LAYERS[name]())
    layer = run_precision_test(LAYERS[name], inputs)
    out = layer(inputs, training=True)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert np.all(np.isfinite(to_np(out)))
