"""`get_config` / `from_config` and `.keras` round trips of every augmentation layer and preset."""

import keras
import numpy as np
import pytest
from augment_helpers import IMGS, to_np

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


def assert_round_trip(layer, inputs, tmp_path):
    """Config round trip, then a `.keras` file: same config, same inference output, same seeded draws.

    Keras does not write `SeedGenerator` states into `.keras` files, so a loaded layer restarts its
    random stream from its `seed`: its draws equal those of a fresh layer built from the config.
    """
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model = keras.Sequential([keras.Input(inputs.shape[1:], dtype=str(inputs.dtype)), layer])
    path = tmp_path / "layer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    restored = loaded.layers[0]
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), atol=1e-6)
    if layer.get_config()["seed"] is not None:
        np.testing.assert_allclose(
            to_np(restored(inputs, training=True)), to_np(clone(inputs, training=True)), atol=1e-5
        )


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_round_trip(name, tmp_path):
    layer = LAYERS[name]()
    inputs = IMGS if isinstance(layer, ViewAugmenter) else IMGS.astype("float32") / 255
    layer(inputs, training=True)  # a used layer: its config must not depend on its state
    assert_round_trip(layer, inputs, tmp_path)
