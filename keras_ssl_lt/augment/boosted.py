"""`BoostedViewAugmenter`: SimCLR's views plus BCL's per-example RandAugment, and BCL's CIFAR preset."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from keras_ssl_lt.augment.ops import CIFAR10_MEAN, CIFAR10_STD, normalize, require_rgb, to_float01
from keras_ssl_lt.augment.strength import StrengthRandAugment
from keras_ssl_lt.augment.views import ViewAugmenter

__all__ = ["BoostedViewAugmenter", "bcl_cifar"]


def _boost_seed(seed):
    """A seed for the boost stage, far from the five `ViewAugmenter` stage seeds (None stays None)."""
    if seed is None:
        return None
    return int(np.random.SeedSequence((seed % 2**32, 6)).generate_state(1)[0]) % (2**31 - 1)


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class BoostedViewAugmenter(ViewAugmenter):
    """A `ViewAugmenter` with BCL's strength-driven RandAugment (`StrengthRandAugment`) before the normalisation.

    `augmenter(images, training=True, strength=s)` runs the `ViewAugmenter` stages (crop, flip, jitter,
    grayscale, blur), then `StrengthRandAugment` with the per-example strength `s` `(B,)` in [0, 1], then
    normalises: the order of BCL's released code (`data/memoboosted_cifar100.py`: RandAugment after the
    SimCLR transforms, on both views). Without `strength` (or with `training=False`) it is exactly the
    `ViewAugmenter` with the same arguments (the boost stage draws nothing), so `predict` and plain
    pre-trainers can use it too.

    Args:
        num_ops, min_magnitude, max_magnitude, magnitude_jitter, ops: the boost stage's arguments
            (`StrengthRandAugment`; defaults BCL-I's: 1 op, magnitude 10..30, no jitter, all 15 ops).
        **view_kwargs: the `ViewAugmenter` arguments (crop, jitter, ..., `seed`).

    Example:

    >>> import numpy as np
    >>> aug = BoostedViewAugmenter(crop_size=8, crop="pad", jitter=None, ops=["invert"], seed=0)  # a quick example
    >>> views = aug(np.zeros((2, 8, 8, 3), "uint8"), training=True, strength=np.array([0.0, 1.0], "float32"))
    >>> tuple(views.shape)
    (2, 8, 8, 3)
    """

    def __init__(
        self,
        num_ops: int = 1,
        min_magnitude: float = 10.0,
        max_magnitude: float = 30.0,
        magnitude_jitter: bool = False,
        ops: tuple[str, ...] | list[str] | None = None,
        **view_kwargs: Any,
    ) -> None:
        super().__init__(**view_kwargs)
        self.boost_layer = StrengthRandAugment(
            num_ops=num_ops,
            min_magnitude=min_magnitude,
            max_magnitude=max_magnitude,
            magnitude_jitter=magnitude_jitter,
            ops=ops,
            seed=_boost_seed(self.seed),
            dtype="float32",
        )

    def call(self, inputs, training=False, strength=None):
        if not training or strength is None:
            return super().call(inputs, training=training)
        x = require_rgb(to_float01(inputs, integer_scale=1.0) / 255.0)  # 0..255 in, whatever the dtype
        x = self.crop_layer(x, training=True)
        for layer in self.stages[1:]:
            x = layer(x, training=True)
        x = self.boost_layer(x, strength, training=True)
        return ops.cast(normalize(x, self.mean, self.std), self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(self.boost_layer.options())  # the boost stage's arguments (its seed follows the view seed)
        return config


def bcl_cifar(
    variant: str = "I", crop_size: int = 32, seed: int | None = None, **overrides: Any
) -> BoostedViewAugmenter:
    """BCL's CIFAR views (MediaBrain-SJTU/BCL `data/memoboosted_cifar100.py`): resized crop scale 0.1-1, flip,
    jitter 0.4/0.4/0.4/0.1 p=0.8, grayscale p=0.2, no blur, then RandAugment driven by the strength.

    `variant="I"` (BCL-I, on SimCLR): 1 op, magnitude `10 + 20 s`; `"D"` (BCL-D, on SDCLR): 2 ops, magnitude
    `5 + 25 s u` with `u` uniform. Differences from the code: the crop resamples bilinearly with antialiasing
    (the code: bicubic), and the views are normalised with the CIFAR-10 mean/std (the code feeds [0, 1]
    tensors), as every preset of this package does. Keyword `overrides` replace any argument.

    Example:

    >>> bcl_cifar("D", seed=0).get_config()["num_ops"]
    2
    """
    variants = {
        "I": {"num_ops": 1, "min_magnitude": 10.0, "magnitude_jitter": False},
        "D": {"num_ops": 2, "min_magnitude": 5.0, "magnitude_jitter": True},
    }
    if variant not in variants:
        raise ValueError(f"`variant` must be one of {tuple(variants)} (BCL-I or BCL-D); got {variant!r}")
    config = {
        "crop_size": crop_size,
        "crop": "resized",
        "scale": (0.1, 1.0),
        "flip": True,
        "jitter": (0.4, 0.4, 0.4, 0.1),
        "jitter_p": 0.8,
        "grayscale_p": 0.2,
        "blur_p": 0.0,
        "mean": CIFAR10_MEAN,
        "std": CIFAR10_STD,
        "max_magnitude": 30.0,
        "seed": seed,
        **variants[variant],
    }
    config.update(overrides)
    return BoostedViewAugmenter(**config)
