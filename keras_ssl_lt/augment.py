"""On-device view augmentation with per-example randomness, for all three Keras backends.

The data pipeline only moves uint8 images; these layers turn a batch into random views inside
the (jit-compiled) train step. Every random choice (crop box, flip, jitter factors and order,
grayscale, blur sigma) is drawn **per example** with `keras.random` from a
`keras.random.SeedGenerator` owned by the layer, whose state is a non-trainable variable of any
model containing it (JAX stays functional). No Python randomness, no data-dependent Python
control flow, static output shapes. The maths is float32; the output is cast to the layer's
compute dtype (bfloat16 under `mixed_bfloat16`).

Value ranges: `ViewAugmenter` takes images on the 0..255 scale (uint8 or float) and returns
normalised float views. The building-block layers take float images in [0, 1] (integer inputs
are divided by 255) and return [0, 1] floats.

How the augmentations follow torchvision (the paper's code) and where they differ:

* `RandomResizedCrop` draws torchvision's box: area fraction uniform in `scale`, aspect ratio
  log-uniform in `ratio`, width/height rounded to whole pixels, up to 10 tries to fit the image and
  otherwise the central crop with the ratio clamped; the 10 tries are drawn at once and the first
  that fits is taken, so the distribution is the same as torchvision's. Resampling is bilinear
  with half-pixel centres and, when shrinking, a widened triangle filter (torchvision's
  `antialias=True`); it is computed as two small matrix products per example, so it is exact and
  needs no gather.
* `RandomColorJitter` applies brightness, contrast, saturation and hue with torchvision's formulas
  and factor ranges, in a random order drawn per example (torchvision draws it per image too).
* `RandomGaussianBlur` follows torchvision's `GaussianBlur` (sampled kernel of odd size, reflect
  padding, sigma uniform in (0.1, 2)); MoCo v2's code used PIL's blur with `radius=sigma`, whose
  kernel is similar but not identical.
* Grayscale uses the ITU-R 601 weights (0.2989, 0.587, 0.114) and keeps 3 channels.
"""

import math

import numpy as np
import keras
from keras import ops

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "crop_and_resize",
    "RandomResizedCrop",
    "RandomCropWithPadding",
    "RandomFlip",
    "RandomColorJitter",
    "RandomGrayscale",
    "RandomGaussianBlur",
    "ViewAugmenter",
    "simsiam_cifar",
    "simclr_cifar",
    "moco_v2_imagenet",
    "supervised_cifar",
]

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)
_CROP_TRIES = 10


# ----------------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------------
def _is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _check_prob(value, name):
    if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"`{name}` must be a probability in [0, 1]; got {value!r}")
    return float(value)


def _check_size(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive int; got {value!r}")
    return int(value)


def _check_range(value, name, low=None, high=None, positive=False):
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(_is_number(v) for v in value)
        or float(value[0]) > float(value[1])
        or (low is not None and float(value[0]) < low)
        or (high is not None and float(value[1]) > high)
        or (positive and float(value[0]) <= 0)
    ):
        bounds = []
        if positive:
            bounds.append("values > 0")
        if low is not None:
            bounds.append(f"values >= {low}")
        if high is not None:
            bounds.append(f"values <= {high}")
        extra = f" with {', '.join(bounds)}" if bounds else ""
        raise ValueError(f"`{name}` must be a pair (low, high) with low <= high{extra}; got {value!r}")
    return (float(value[0]), float(value[1]))


def _check_triple(value, name, positive=False):
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 3
        or not all(_is_number(v) for v in value)
        or (positive and any(float(v) <= 0 for v in value))
    ):
        req = "3 positive numbers" if positive else "3 numbers"
        raise ValueError(f"`{name}` must be {req} (one per RGB channel); got {value!r}")
    return tuple(float(v) for v in value)


def _check_seed(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"`seed` must be None or an int; got {seed!r}")
    return None if seed is None else int(seed)


# ----------------------------------------------------------------------------------------------
# pure functions (float32 tensors, images (B, H, W, C))
# ----------------------------------------------------------------------------------------------
def _to_float01(images, integer_scale=255.0):
    x = ops.convert_to_tensor(images)
    if len(x.shape) != 4:
        raise ValueError(f"`images` must be a batch (B, H, W, C); got shape {tuple(x.shape)}")
    if x.shape[1] is None or x.shape[2] is None:
        raise ValueError(f"`images` must have a known height and width; got shape {tuple(x.shape)}")
    dtype = keras.backend.standardize_dtype(x.dtype)
    if "int" in dtype:
        return ops.cast(x, "float32") / integer_scale
    return ops.cast(x, "float32")


def _check_rgb(x):
    if x.shape[-1] != 3:
        raise ValueError(f"colour augmentations need RGB images (B, H, W, 3); got shape {tuple(x.shape)}")


def _axis_weights(start, length, out_size, in_size, antialias):
    """Resampling matrices (B, out_size, in_size) for boxes [start, start + length) on one axis.

    Pixel k covers [k, k + 1) and has its centre at k + 0.5; output pixel i samples the box at
    start + (i + 0.5) * length / out_size. Weights are a triangle filter of half-width 1 (bilinear)
    or, with `antialias` and when shrinking, half-width length / out_size; pixels outside the box
    get weight 0 and the rest are renormalised (this is PyTorch's edge clamping).
    """
    scale = length / float(out_size)  # (B,)
    centres = start[:, None] + (ops.arange(out_size, dtype="float32")[None, :] + 0.5) * scale[:, None]
    support = ops.maximum(scale, 1.0) if antialias else ops.ones_like(scale)
    pix = ops.arange(in_size, dtype="float32") + 0.5  # (in,)
    w = ops.relu(1.0 - ops.abs(pix[None, None, :] - centres[:, :, None]) / support[:, None, None])
    inside = ops.logical_and(pix[None, :] > start[:, None], pix[None, :] < (start + length)[:, None])
    w = w * ops.cast(inside, "float32")[:, None, :]
    return w / ops.maximum(ops.sum(w, axis=-1, keepdims=True), 1e-12)


def crop_and_resize(images, boxes, size, antialias=True):
    """Crop each image to its own box and resize it bilinearly to `size x size`.

    Args:
        images: float tensor (B, H, W, C).
        boxes: tensor (B, 4) of whole-pixel boxes `(top, left, height, width)` inside the image.
        size: output side length.
        antialias: widen the bilinear filter when shrinking (torchvision's `antialias=True`).

    Equivalent to `resize(image[top:top+height, left:left+width], (size, size))` with PyTorch's
    `interpolate(mode="bilinear", align_corners=False, antialias=antialias)`, for every example,
    computed as `Wy @ image @ Wx^T` with per-example resampling matrices.

    Example:

    >>> import numpy as np
    >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    >>> np.asarray(crop_and_resize(x, np.array([[1, 1, 2, 2]]), 2))[0, :, :, 0]
    array([[ 5.,  6.],
           [ 9., 10.]], dtype=float32)
    """
    size = _check_size(size, "size")
    x = ops.cast(ops.convert_to_tensor(images), "float32")
    boxes = ops.cast(ops.convert_to_tensor(boxes), "float32")
    h_in, w_in = x.shape[1], x.shape[2]
    wy = _axis_weights(boxes[:, 0], boxes[:, 2], size, h_in, antialias)  # (B, S, H)
    wx = _axis_weights(boxes[:, 1], boxes[:, 3], size, w_in, antialias)  # (B, S, W)
    # Two batched matmuls (an einsum formulation hit a oneDNN memory-corruption bug in PyTorch's CPU
    # build: later convolution backward passes hung or crashed).
    b, c = ops.shape(x)[0], x.shape[3]
    y = ops.matmul(wy, ops.reshape(x, (b, h_in, w_in * c)))  # (B, S, W*C)
    y = ops.transpose(ops.reshape(y, (b, size, w_in, c)), (0, 2, 1, 3))  # (B, W, S, C)
    z = ops.matmul(wx, ops.reshape(y, (b, w_in, size * c)))  # (B, S_j, S_i*C)
    return ops.transpose(ops.reshape(z, (b, size, size, c)), (0, 2, 1, 3))


def _center_boxes(batch, height, width, fraction):
    side = max(1, int(round(min(height, width) * fraction)))
    top = int(round((height - side) / 2.0))
    left = int(round((width - side) / 2.0))
    box = ops.convert_to_tensor(np.array([[top, left, side, side]], "float32"))
    return ops.tile(box, [batch, 1])


def _sample_resized_crop_boxes(seed_generator, batch, height, width, scale, ratio):
    """torchvision's RandomResizedCrop.get_params, vectorised over the batch and the 10 tries."""
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
        fw, fh = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        fw, fh = int(round(height * ratio[1])), height
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


def _random_crop_with_padding(x, seed_generator, size, padding):
    batch = ops.shape(x)[0]
    h, w = x.shape[1], x.shape[2]
    if padding:
        x = ops.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    hp, wp = h + 2 * padding, w + 2 * padding
    if size > hp or size > wp:
        raise ValueError(
            f"`size` ({size}) must not exceed the padded image ({hp}x{wp}); lower `size` or raise `padding`"
        )
    u = keras.random.uniform((batch, 2), seed=seed_generator)
    top = ops.minimum(ops.floor(u[:, 0] * (hp - size + 1.0)), float(hp - size))
    left = ops.minimum(ops.floor(u[:, 1] * (wp - size + 1.0)), float(wp - size))
    full = ops.full_like(top, float(size))
    # Unit-scale boxes give exact one-hot resampling matrices: a pure crop.
    return crop_and_resize(x, ops.stack([top, left, full, full], axis=1), size, antialias=False)


def _random_flip(x, seed_generator, p):
    batch = ops.shape(x)[0]
    flip = keras.random.uniform((batch,), seed=seed_generator) < p
    return ops.where(flip[:, None, None, None], ops.flip(x, axis=2), x)


def _grayscale(x):
    w = ops.convert_to_tensor(np.array(_GRAY_WEIGHTS, "float32"))
    return ops.sum(ops.multiply(x, w), axis=-1, keepdims=True)


def _adjust_brightness(x, f):
    return ops.clip(x * f[:, None, None, None], 0.0, 1.0)


def _adjust_contrast(x, f):
    mean = ops.mean(_grayscale(x), axis=(1, 2, 3), keepdims=True)
    f = f[:, None, None, None]
    return ops.clip(f * x + (1.0 - f) * mean, 0.0, 1.0)


def _adjust_saturation(x, f):
    f = f[:, None, None, None]
    return ops.clip(f * x + (1.0 - f) * _grayscale(x), 0.0, 1.0)


def _adjust_hue(x, f):
    hsv = ops.image.rgb_to_hsv(x, data_format="channels_last")
    hue = hsv[..., 0:1] + f[:, None, None, None]
    hue = hue - ops.floor(hue)
    return ops.image.hsv_to_rgb(ops.concatenate([hue, hsv[..., 1:]], axis=-1), data_format="channels_last")


def _blend_stage(y, which, active, factors):
    """One brightness/contrast/saturation step per example: op `which` (0, 1, 2) where `active`.

    The three are blends `clip(f * y + (1 - f) * target)` with target 0, the mean gray level, or
    the gray image; an inactive example gets f = 1, which leaves [0, 1] values unchanged.
    """
    f = ops.take_along_axis(factors, which[:, None], axis=1)[:, 0]
    f = ops.where(active, f, 1.0)[:, None, None, None]
    gray = _grayscale(y)
    mean = ops.mean(gray, axis=(1, 2, 3), keepdims=True)
    w = which[:, None, None, None]
    target = ops.where(w == 0, 0.0, ops.where(w == 1, mean, gray))
    return ops.clip(f * y + (1.0 - f) * target, 0.0, 1.0)


def _color_jitter(x, seed_generator, strengths, p, random_order):
    batch = ops.shape(x)[0]
    b, c, s, h = strengths
    ranges = ((max(0.0, 1.0 - b), 1.0 + b), (max(0.0, 1.0 - c), 1.0 + c), (max(0.0, 1.0 - s), 1.0 + s), (-h, h))
    # A factor is drawn for every op (as torchvision does), so the random stream does not depend on
    # which strengths are zero; ops with strength 0 are then skipped.
    factors = [keras.random.uniform((batch,), lo, hi, seed=seed_generator) for lo, hi in ranges]
    apply = keras.random.uniform((batch,), seed=seed_generator) < p
    order_keys = keras.random.uniform((batch, 4), seed=seed_generator)
    enabled = [i for i, (lo, hi) in enumerate(ranges) if hi > lo]  # 0..2 blends, 3 hue
    blend_factors = ops.stack(factors[:3], axis=1)  # (B, 3)
    ones = ops.ones((batch,), dtype="bool")
    y = x
    if not random_order:
        for i in enabled:
            if i == 3:
                y = _adjust_hue(y, factors[3])
            else:
                y = _blend_stage(y, ops.full((batch,), i, dtype="int32"), ones, blend_factors)
        return ops.where(apply[:, None, None, None], y, x)
    # A random permutation of the enabled ops per example, as op ids.
    n = len(enabled)
    ids = ops.convert_to_tensor(np.array(enabled, "int32"))
    perm = ops.take(ids, ops.argsort(order_keys[:, :n], axis=1))  # (B, n)
    if 3 not in enabled:
        for t in range(n):
            y = _blend_stage(y, perm[:, t], ones, blend_factors)
        return ops.where(apply[:, None, None, None], y, x)
    # Hue is the costly op: run the blends that come before it, hue once, then the blends after
    # it (each example has its own split point), instead of every op at every position.
    pos = ops.sum(ops.where(perm == 3, ops.arange(n, dtype="int32")[None, :], 0), axis=1)  # (B,)
    for j in range(n - 1):  # j-th op before the hue
        which = ops.minimum(perm[:, j], 2)
        y = _blend_stage(y, which, j < pos, blend_factors)
    y = _adjust_hue(y, factors[3])
    for j in range(n - 1):  # j-th op after the hue
        idx = ops.minimum(pos + 1 + j, n - 1)
        which = ops.minimum(ops.take_along_axis(perm, idx[:, None], axis=1)[:, 0], 2)
        y = _blend_stage(y, which, pos + 1 + j < n, blend_factors)
    return ops.where(apply[:, None, None, None], y, x)


def _random_grayscale(x, seed_generator, p):
    batch = ops.shape(x)[0]
    gray = keras.random.uniform((batch,), seed=seed_generator) < p
    g = ops.repeat(_grayscale(x), 3, axis=-1)
    return ops.where(gray[:, None, None, None], g, x)


def _reflect_index(n, r):
    idx = np.arange(-r, n + r)
    idx = np.where(idx < 0, -idx, idx)
    idx = np.where(idx > n - 1, 2 * (n - 1) - idx, idx)
    return idx.astype("int32")


def _gaussian_blur(x, sigma, kernel_size):
    """Separable Gaussian blur with a per-example sigma (B,), reflect padding (torchvision)."""
    r = (kernel_size - 1) // 2
    offsets = ops.arange(-r, r + 1, dtype="float32")
    g = ops.exp(-0.5 * ops.square(offsets[None, :] / sigma[:, None]))  # (B, K)
    g = g / ops.sum(g, axis=1, keepdims=True)
    h, w = x.shape[1], x.shape[2]
    xp = ops.take(x, _reflect_index(h, r), axis=1)
    y = 0.0
    for k in range(kernel_size):
        y = y + g[:, k, None, None, None] * xp[:, k : k + h]
    yp = ops.take(y, _reflect_index(w, r), axis=2)
    z = 0.0
    for k in range(kernel_size):
        z = z + g[:, k, None, None, None] * yp[:, :, k : k + w]
    return z


def _random_gaussian_blur(x, seed_generator, p, sigma_range, kernel_size):
    batch = ops.shape(x)[0]
    sigma = keras.random.uniform((batch,), sigma_range[0], sigma_range[1], seed=seed_generator)
    blur = keras.random.uniform((batch,), seed=seed_generator) < p
    return ops.where(blur[:, None, None, None], _gaussian_blur(x, sigma, kernel_size), x)


def _default_blur_kernel(size):
    """An odd kernel about 10% of the image side (23 for 224, torchvision/SimCLR; 3 for 32)."""
    return 2 * int(0.05 * size) + 1


def _check_blur_kernel(kernel_size, size):
    if (
        isinstance(kernel_size, bool)
        or not isinstance(kernel_size, (int, np.integer))
        or kernel_size < 1
        or kernel_size % 2 == 0
        or (kernel_size - 1) // 2 >= size
    ):
        raise ValueError(
            f"`blur_kernel_size` must be None or an odd positive int with (k - 1) / 2 < image size {size}; "
            f"got {kernel_size!r}"
        )
    return int(kernel_size)


# ----------------------------------------------------------------------------------------------
# layers
# ----------------------------------------------------------------------------------------------
class _AugmentLayer(keras.layers.Layer):
    """Base: owns a SeedGenerator, never autocasts inputs, casts the output to the compute dtype."""

    def __init__(self, seed=None, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.seed = _check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        # No weights depend on the input shape: built at once, so `stateless_call` works before
        # any eager call (as a JAX train step uses it).
        self.built = True

    def _out(self, x):
        return ops.cast(x, self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class RandomResizedCrop(_AugmentLayer):
    """Per-example random resized crop (torchvision's sampling rule), bilinear to `size x size`.

    Training: each example gets its own box (area fraction in `scale`, log-uniform aspect ratio in
    `ratio`, see the module docstring). Inference: the central square crop whose side is
    `center_crop_fraction` of the shorter side, resized to `size` (1.0: the whole square image;
    0.875: ImageNet's resize-256 / centre-crop-224).

    Example:

    >>> import numpy as np
    >>> layer = RandomResizedCrop(16, scale=(0.2, 1.0), seed=0)
    >>> tuple(layer(np.random.rand(4, 32, 32, 3).astype("float32"), training=True).shape)
    (4, 16, 16, 3)
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
        self.size = _check_size(size, "size")
        self.scale = _check_range(scale, "scale", positive=True, high=1.0)
        self.ratio = _check_range(ratio, "ratio", positive=True)
        if not isinstance(antialias, bool):
            raise ValueError(f"`antialias` must be True or False; got {antialias!r}")
        self.antialias = antialias
        if not _is_number(center_crop_fraction) or not 0 < center_crop_fraction <= 1:
            raise ValueError(f"`center_crop_fraction` must be in (0, 1]; got {center_crop_fraction!r}")
        self.center_crop_fraction = float(center_crop_fraction)

    def sample_boxes(self, batch_size, height, width):
        """Draw `(batch_size, 4)` float boxes `(top, left, height, width)` in whole pixels."""
        return _sample_resized_crop_boxes(self.seed_generator, batch_size, height, width, self.scale, self.ratio)

    def _apply(self, x, training):
        batch = ops.shape(x)[0]
        h, w = x.shape[1], x.shape[2]
        if training:
            boxes = self.sample_boxes(batch, h, w)
        else:
            boxes = _center_boxes(batch, h, w, self.center_crop_fraction)
        return crop_and_resize(x, boxes, self.size, antialias=self.antialias)

    def call(self, inputs, training=False):
        return self._out(self._apply(_to_float01(inputs), training))

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
class RandomCropWithPadding(_AugmentLayer):
    """Per-example random `size x size` crop of the image zero-padded by `padding` (CIFAR's pad-4 crop).

    Inference: the central `size x size` crop (the identity when `size` equals the image size).

    Example:

    >>> import numpy as np
    >>> tuple(RandomCropWithPadding(32, padding=4, seed=0)(np.zeros((2, 32, 32, 3), "float32"), training=True).shape)
    (2, 32, 32, 3)
    """

    def __init__(self, size, padding=4, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.size = _check_size(size, "size")
        if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"`padding` must be a non-negative int; got {padding!r}")
        self.padding = int(padding)

    def _apply(self, x, training):
        if training:
            return _random_crop_with_padding(x, self.seed_generator, self.size, self.padding)
        h, w = x.shape[1], x.shape[2]
        if self.size > h or self.size > w:
            raise ValueError(f"`size` ({self.size}) must not exceed the image ({h}x{w}) in inference")
        top, left = (h - self.size) // 2, (w - self.size) // 2
        return x[:, top : top + self.size, left : left + self.size, :]

    def call(self, inputs, training=False):
        return self._out(self._apply(_to_float01(inputs), training))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, padding=self.padding)
        return config


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class RandomFlip(_AugmentLayer):
    """Per-example horizontal flip with probability `p` (training only).

    Example:

    >>> import numpy as np
    >>> x = np.arange(3, dtype="float32").reshape(1, 1, 3, 1) / 2
    >>> np.asarray(RandomFlip(p=1.0)(x, training=True)).ravel()
    array([1. , 0.5, 0. ], dtype=float32)
    """

    def __init__(self, p=0.5, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.p = _check_prob(p, "p")

    def call(self, inputs, training=False):
        x = _to_float01(inputs)
        return self._out(_random_flip(x, self.seed_generator, self.p) if training else x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["p"] = self.p
        return config


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class RandomColorJitter(_AugmentLayer):
    """Per-example colour jitter (torchvision's ColorJitter), applied with probability `p`.

    Factors: brightness and contrast and saturation uniform in `[max(0, 1 - s), 1 + s]`, hue shift
    uniform in `[-hue, hue]` (hue <= 0.5), each drawn per example; with `random_order` the four
    adjustments run in a per-example random order, otherwise brightness, contrast, saturation, hue.
    Inputs are RGB in [0, 1]; results are clipped to [0, 1] after each step, as torchvision does.

    Example:

    >>> import numpy as np
    >>> layer = RandomColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8, seed=0)
    >>> tuple(layer(np.random.rand(2, 8, 8, 3).astype("float32"), training=True).shape)
    (2, 8, 8, 3)
    """

    def __init__(
        self, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, p=0.8, random_order=True, seed=None, **kwargs
    ):
        super().__init__(seed=seed, **kwargs)
        for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not _is_number(value) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative number; got {value!r}")
        if not _is_number(hue) or not 0 <= hue <= 0.5:
            raise ValueError(f"`hue` must be a number in [0, 0.5]; got {hue!r}")
        if not isinstance(random_order, bool):
            raise ValueError(f"`random_order` must be True or False; got {random_order!r}")
        self.brightness, self.contrast = float(brightness), float(contrast)
        self.saturation, self.hue = float(saturation), float(hue)
        self.p = _check_prob(p, "p")
        self.random_order = random_order

    def call(self, inputs, training=False):
        x = _to_float01(inputs)
        _check_rgb(x)
        if training:
            strengths = (self.brightness, self.contrast, self.saturation, self.hue)
            x = _color_jitter(x, self.seed_generator, strengths, self.p, self.random_order)
        return self._out(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            brightness=self.brightness,
            contrast=self.contrast,
            saturation=self.saturation,
            hue=self.hue,
            p=self.p,
            random_order=self.random_order,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class RandomGrayscale(_AugmentLayer):
    """Per-example conversion to grayscale (kept as 3 equal channels) with probability `p`.

    Example:

    >>> import numpy as np
    >>> y = RandomGrayscale(p=1.0)(np.random.rand(2, 4, 4, 3).astype("float32"), training=True)
    >>> bool(np.allclose(np.asarray(y)[..., 0], np.asarray(y)[..., 2]))
    True
    """

    def __init__(self, p=0.2, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.p = _check_prob(p, "p")

    def call(self, inputs, training=False):
        x = _to_float01(inputs)
        _check_rgb(x)
        return self._out(_random_grayscale(x, self.seed_generator, self.p) if training else x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["p"] = self.p
        return config


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class RandomGaussianBlur(_AugmentLayer):
    """Per-example Gaussian blur with probability `p`, sigma uniform in `sigma` (torchvision's GaussianBlur).

    `kernel_size` is odd; None picks about 10% of the image side (23 for 224, 3 for 32).
    Reflect padding at the borders.

    Example:

    >>> import numpy as np
    >>> tuple(RandomGaussianBlur(p=1.0, seed=0)(np.random.rand(2, 32, 32, 3).astype("float32"), training=True).shape)
    (2, 32, 32, 3)
    """

    def __init__(self, p=0.5, sigma=(0.1, 2.0), kernel_size=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.p = _check_prob(p, "p")
        self.sigma = _check_range(sigma, "sigma", positive=True)
        if kernel_size is not None:
            _check_blur_kernel(kernel_size, 10**9)
        self.kernel_size = kernel_size

    def call(self, inputs, training=False):
        x = _to_float01(inputs)
        if training:
            k = self.kernel_size or _default_blur_kernel(min(x.shape[1], x.shape[2]))
            _check_blur_kernel(k, min(x.shape[1], x.shape[2]))
            x = _random_gaussian_blur(x, self.seed_generator, self.p, self.sigma, k)
        return self._out(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(p=self.p, sigma=self.sigma, kernel_size=self.kernel_size)
        return config


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class ViewAugmenter(_AugmentLayer):
    """The composed view augmentation: 0..255 images in, normalised float views out.

    Training (`training=True`), per example and in this order: crop (`crop="resized"`:
    RandomResizedCrop to `crop_size` with `scale`/`ratio`; `crop="pad"`: zero-pad by `padding` and
    take a random `crop_size` crop), horizontal flip (`flip`), colour jitter with strengths
    `jitter = (brightness, contrast, saturation, hue)` applied with probability `jitter_p`
    (None: no jitter), grayscale with probability `grayscale_p`, Gaussian blur with probability
    `blur_p` (sigma in `blur_sigma`, kernel `blur_kernel_size` or ~10% of `crop_size`), then
    `(x / 255 - mean) / std`. The flip commutes with the colour steps, so its place does not matter.

    Inference (`training=False`, the default and what `predict` uses): deterministic — the central
    square crop with side `eval_crop_fraction` times the shorter side resized to `crop_size`
    (`crop="resized"`), or the central `crop_size` crop (`crop="pad"`), then the normalisation.
    `keras.Sequential([augmenter, encoder]).predict(uint8_images)` therefore gives features.

    Example:

    >>> import numpy as np
    >>> aug = ViewAugmenter(crop_size=32, seed=0)
    >>> views = aug(np.zeros((4, 32, 32, 3), "uint8"), training=True)
    >>> tuple(views.shape)
    (4, 32, 32, 3)
    """

    def __init__(
        self,
        crop_size=32,
        crop="resized",
        scale=(0.2, 1.0),
        ratio=(3.0 / 4.0, 4.0 / 3.0),
        padding=4,
        flip=True,
        jitter=(0.4, 0.4, 0.4, 0.1),
        jitter_p=0.8,
        random_order=True,
        grayscale_p=0.2,
        blur_p=0.0,
        blur_sigma=(0.1, 2.0),
        blur_kernel_size=None,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        eval_crop_fraction=1.0,
        antialias=True,
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        self.crop_size = _check_size(crop_size, "crop_size")
        if crop not in ("resized", "pad"):
            raise ValueError(f"`crop` must be 'resized' or 'pad'; got {crop!r}")
        self.crop = crop
        self.scale = _check_range(scale, "scale", positive=True, high=1.0)
        self.ratio = _check_range(ratio, "ratio", positive=True)
        if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"`padding` must be a non-negative int; got {padding!r}")
        self.padding = int(padding)
        if not isinstance(flip, bool):
            raise ValueError(f"`flip` must be True or False; got {flip!r}")
        self.flip = flip
        if jitter is not None:
            if (
                not isinstance(jitter, (tuple, list))
                or len(jitter) != 4
                or not all(_is_number(v) and v >= 0 for v in jitter)
                or jitter[3] > 0.5
            ):
                raise ValueError(
                    "`jitter` must be None or (brightness, contrast, saturation, hue) non-negative "
                    f"numbers with hue <= 0.5; got {jitter!r}"
                )
            jitter = tuple(float(v) for v in jitter)
        self.jitter = jitter
        self.jitter_p = _check_prob(jitter_p, "jitter_p")
        if not isinstance(random_order, bool):
            raise ValueError(f"`random_order` must be True or False; got {random_order!r}")
        self.random_order = random_order
        self.grayscale_p = _check_prob(grayscale_p, "grayscale_p")
        self.blur_p = _check_prob(blur_p, "blur_p")
        self.blur_sigma = _check_range(blur_sigma, "blur_sigma", positive=True)
        self.blur_kernel_size = (
            None if blur_kernel_size is None else _check_blur_kernel(blur_kernel_size, self.crop_size)
        )
        self.mean = _check_triple(mean, "mean")
        self.std = _check_triple(std, "std", positive=True)
        if not _is_number(eval_crop_fraction) or not 0 < eval_crop_fraction <= 1:
            raise ValueError(f"`eval_crop_fraction` must be in (0, 1]; got {eval_crop_fraction!r}")
        self.eval_crop_fraction = float(eval_crop_fraction)
        if not isinstance(antialias, bool):
            raise ValueError(f"`antialias` must be True or False; got {antialias!r}")
        self.antialias = antialias

    def call(self, inputs, training=False):
        x = _to_float01(inputs, integer_scale=1.0) / 255.0  # 0..255 in, whatever the dtype
        _check_rgb(x)
        batch = ops.shape(x)[0]
        h, w = x.shape[1], x.shape[2]
        sg = self.seed_generator
        if not training:
            if self.crop == "resized":
                boxes = _center_boxes(batch, h, w, self.eval_crop_fraction)
                x = crop_and_resize(x, boxes, self.crop_size, antialias=self.antialias)
            else:
                if self.crop_size > h or self.crop_size > w:
                    raise ValueError(f"`crop_size` ({self.crop_size}) must not exceed the image ({h}x{w})")
                top, left = (h - self.crop_size) // 2, (w - self.crop_size) // 2
                x = x[:, top : top + self.crop_size, left : left + self.crop_size, :]
        else:
            if self.crop == "resized":
                boxes = _sample_resized_crop_boxes(sg, batch, h, w, self.scale, self.ratio)
                x = crop_and_resize(x, boxes, self.crop_size, antialias=self.antialias)
            else:
                x = _random_crop_with_padding(x, sg, self.crop_size, self.padding)
            if self.flip:
                x = _random_flip(x, sg, 0.5)
            if self.jitter is not None and self.jitter_p > 0 and any(v > 0 for v in self.jitter):
                x = _color_jitter(x, sg, self.jitter, self.jitter_p, self.random_order)
            if self.grayscale_p > 0:
                x = _random_grayscale(x, sg, self.grayscale_p)
            if self.blur_p > 0:
                k = self.blur_kernel_size or _default_blur_kernel(self.crop_size)
                x = _random_gaussian_blur(x, sg, self.blur_p, self.blur_sigma, k)
        mean = ops.convert_to_tensor(np.array(self.mean, "float32"))
        std = ops.convert_to_tensor(np.array(self.std, "float32"))
        return self._out((x - mean) / std)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.crop_size, self.crop_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            crop_size=self.crop_size,
            crop=self.crop,
            scale=self.scale,
            ratio=self.ratio,
            padding=self.padding,
            flip=self.flip,
            jitter=self.jitter,
            jitter_p=self.jitter_p,
            random_order=self.random_order,
            grayscale_p=self.grayscale_p,
            blur_p=self.blur_p,
            blur_sigma=self.blur_sigma,
            blur_kernel_size=self.blur_kernel_size,
            mean=self.mean,
            std=self.std,
            eval_crop_fraction=self.eval_crop_fraction,
            antialias=self.antialias,
        )
        return config


# ----------------------------------------------------------------------------------------------
# presets
# ----------------------------------------------------------------------------------------------
def simsiam_cifar(crop_size=32, seed=None, **overrides):
    """SimSiam's CIFAR views (the paper's code): resized crop scale 0.2-1, flip, jitter 0.4/0.4/0.4/0.1
    with p=0.8, grayscale p=0.2, no blur, CIFAR-10 mean/std. Keyword `overrides` replace any argument.

    Example:

    >>> simsiam_cifar(seed=0).get_config()["scale"]
    (0.2, 1.0)
    """
    config = dict(
        crop_size=crop_size,
        crop="resized",
        scale=(0.2, 1.0),
        flip=True,
        jitter=(0.4, 0.4, 0.4, 0.1),
        jitter_p=0.8,
        grayscale_p=0.2,
        blur_p=0.0,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        seed=seed,
    )
    config.update(overrides)
    return ViewAugmenter(**config)


def simclr_cifar(crop_size=32, seed=None, **overrides):
    """SimCLR's CIFAR views: the same as `simsiam_cifar` (SimCLR's CIFAR recipe also drops the blur;
    its crop scale is 0.08-1 in the SimCLR paper but 0.2-1 in the SimSiam-style CIFAR code the paper
    builds on, which is kept here so methods differ only in their loss).

    Example:

    >>> simclr_cifar(seed=0).get_config()["blur_p"]
    0.0
    """
    return simsiam_cifar(crop_size=crop_size, seed=seed, **overrides)


def moco_v2_imagenet(size=224, seed=None, **overrides):
    """MoCo v2's ImageNet views: resized crop scale 0.2-1, jitter 0.4/0.4/0.4/0.1 p=0.8, grayscale
    p=0.2, Gaussian blur p=0.5 (sigma 0.1-2, kernel ~10% of `size`), flip, ImageNet mean/std;
    inference: centre crop 0.875 of the shorter side (resize-256 / crop-224) resized to `size`.

    Example:

    >>> moco_v2_imagenet(seed=0).get_config()["blur_p"]
    0.5
    """
    config = dict(
        crop_size=size,
        crop="resized",
        scale=(0.2, 1.0),
        flip=True,
        jitter=(0.4, 0.4, 0.4, 0.1),
        jitter_p=0.8,
        grayscale_p=0.2,
        blur_p=0.5,
        blur_sigma=(0.1, 2.0),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        eval_crop_fraction=0.875,
        seed=seed,
    )
    config.update(overrides)
    return ViewAugmenter(**config)


def supervised_cifar(crop_size=32, seed=None, **overrides):
    """The standard supervised CIFAR recipe: zero-pad 4 and random 32x32 crop, flip, no colour
    augmentation, CIFAR-10 mean/std (per example).

    Example:

    >>> supervised_cifar(seed=0).get_config()["crop"]
    'pad'
    """
    config = dict(
        crop_size=crop_size,
        crop="pad",
        padding=4,
        flip=True,
        jitter=None,
        jitter_p=0.0,
        grayscale_p=0.0,
        blur_p=0.0,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        seed=seed,
    )
    config.update(overrides)
    return ViewAugmenter(**config)
