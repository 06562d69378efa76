"""Per-example random crops: torchvision's random resized crop and CIFAR's pad-and-crop.

Keras' `keras.layers.RandomCrop` picks one window per batch and has no resized crop, so both are
written here; every example of a batch gets its own box.
"""

import math

import keras
from keras import ops

from keras_ssl_lt._checks import check_bool, check_non_negative_int, check_number, check_positive_int, check_range
from keras_ssl_lt.augment.base import AugmentLayer
from keras_ssl_lt.augment.ops import center_boxes, crop_and_resize, to_float01

__all__ = ["RandomCropWithPadding", "RandomResizedCrop"]

_CROP_TRIES = 10


def _resized_crop_boxes(seed_generator, batch, height, width, scale, ratio):
    """torchvision's `RandomResizedCrop.get_params`, vectorised over the batch and the 10 tries."""
    area = float(height * width)
    shape = (batch, _CROP_TRIES)
    target = area * keras.random.uniform(shape, scale[0], scale[1], seed=seed_generator)
    log_r = keras.random.uniform(shape, math.log(ratio[0]), math.log(ratio[1]), seed=seed_generator)
    aspect = ops.exp(log_r)
    w = ops.round(ops.sqrt(target * aspect))
    h = ops.round(ops.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    tries = ops.arange(_CROP_TRIES, dtype="int32")[None, :]
    first = ops.min(ops.where(fits, tries, _CROP_TRIES), axis=1)  # first try that fits
    pick = ops.cast(tries == first[:, None], "float32")  # all zero when none fits
    any_fit = first < _CROP_TRIES
    w = ops.sum(pick * w, axis=1)
    h = ops.sum(pick * h, axis=1)
    # torchvision's fallback: the central crop with the aspect ratio clamped to `ratio`.
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fw, fh = round(height * ratio[1]), height
    else:
        fw, fh = width, height
    w = ops.where(any_fit, w, float(fw))
    h = ops.where(any_fit, h, float(fh))
    u_top = keras.random.uniform((batch,), seed=seed_generator)
    u_left = keras.random.uniform((batch,), seed=seed_generator)
    top = ops.minimum(ops.floor(u_top * (height - h + 1.0)), height - h)
    left = ops.minimum(ops.floor(u_left * (width - w + 1.0)), width - w)
    top = ops.where(any_fit, top, float((height - fh) // 2))
    left = ops.where(any_fit, left, float((width - fw) // 2))
    return ops.stack([top, left, h, w], axis=1)


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class RandomResizedCrop(AugmentLayer):
    """Per-example random resized crop (torchvision's sampling rule), bilinear to `size x size`.

    Training: each example gets its own box. The area fraction is uniform in `scale`, the aspect
    ratio log-uniform in `ratio`, width and height are rounded to whole pixels, and up to 10 tries
    must fit the image, otherwise the central crop with the ratio clamped to `ratio` is used (the 10
    tries are drawn at once and the first that fits is taken: torchvision's distribution). The crop
    is resampled with `crop_and_resize` (bilinear, antialiased when shrinking if `antialias`).
    Inference: the central square crop whose side is `center_crop_fraction` of the shorter side,
    resized to `size` (1.0: the whole square image; 0.875: ImageNet's resize-256 / centre-crop-224
    region, with one interpolation instead of two).

    Inputs: float images in [0, 1] (integer inputs are divided by 255); output `(B, size, size, C)`.
    Keras has no per-example resized crop (`keras.layers.RandomCrop` takes one window per batch).

    Example:

    >>> import numpy as np
    >>> layer = RandomResizedCrop(16, scale=(0.2, 1.0), seed=0)
    >>> tuple(layer(np.random.rand(2, 32, 32, 3).astype("float32"), training=True).shape)
    (2, 16, 16, 3)
    """

    def __init__(
        self,
        size,
        scale=(0.08, 1.0),
        ratio=(3.0 / 4.0, 4.0 / 3.0),
        antialias=True,
        center_crop_fraction=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        self.size = check_positive_int(size, "size")
        self.scale = check_range(scale, "scale", positive=True, high=1.0)
        self.ratio = check_range(ratio, "ratio", positive=True)
        self.antialias = check_bool(antialias, "antialias")
        self.center_crop_fraction = check_number(center_crop_fraction, "center_crop_fraction", 0, 1, low_open=True)

    def sample_boxes(self, batch_size, height, width):
        """Draw `(batch_size, 4)` float boxes `(top, left, height, width)` in whole pixels."""
        return _resized_crop_boxes(self.seed_generator, batch_size, height, width, self.scale, self.ratio)

    def call(self, inputs, training=False):
        x = to_float01(inputs)
        batch, h, w = ops.shape(x)[0], x.shape[1], x.shape[2]
        if training:
            boxes = self.sample_boxes(batch, h, w)
        else:
            boxes = center_boxes(batch, h, w, self.center_crop_fraction)
        return self.output_cast(crop_and_resize(x, boxes, self.size, antialias=self.antialias))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            size=self.size,
            scale=self.scale,
            ratio=self.ratio,
            antialias=self.antialias,
            center_crop_fraction=self.center_crop_fraction,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class RandomCropWithPadding(AugmentLayer):
    """Per-example random `size x size` crop of the image zero-padded by `padding` (CIFAR's pad-4 crop).

    Training: every example gets its own window, uniform over all positions in the padded image.
    Inference: the central `size x size` crop (the identity when `size` equals the image size).
    Unlike `keras.layers.RandomCrop` (one window per batch, no padding), the windows differ per example.

    Example:

    >>> import numpy as np
    >>> tuple(RandomCropWithPadding(32, padding=4, seed=0)(np.zeros((2, 32, 32, 3), "float32"), training=True).shape)
    (2, 32, 32, 3)
    """

    def __init__(self, size, padding=4, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.size = check_positive_int(size, "size")
        self.padding = check_non_negative_int(padding, "padding")

    def _random_crop(self, x):
        p, size = self.padding, self.size
        batch, h, w = ops.shape(x)[0], x.shape[1], x.shape[2]
        hp, wp = h + 2 * p, w + 2 * p
        if size > hp or size > wp:
            raise ValueError(
                f"`size` ({size}) must not exceed the padded image ({hp}x{wp}); lower `size` or raise `padding`"
            )
        if p:
            x = ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        u = keras.random.uniform((batch, 2), seed=self.seed_generator)
        top = ops.minimum(ops.floor(u[:, 0] * (hp - size + 1.0)), float(hp - size))
        left = ops.minimum(ops.floor(u[:, 1] * (wp - size + 1.0)), float(wp - size))
        full = ops.full_like(top, float(size))
        # Unit-scale boxes give exact one-hot resampling matrices: a pure crop, no gather.
        return crop_and_resize(x, ops.stack([top, left, full, full], axis=1), size, antialias=False)

    def call(self, inputs, training=False):
        x = to_float01(inputs)
        if training:
            return self.output_cast(self._random_crop(x))
        h, w = x.shape[1], x.shape[2]
        if self.size > h or self.size > w:
            raise ValueError(f"`size` ({self.size}) must not exceed the image ({h}x{w}) in inference")
        top, left = (h - self.size) // 2, (w - self.size) // 2
        return self.output_cast(x[:, top : top + self.size, left : left + self.size, :])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, padding=self.padding)
        return config
