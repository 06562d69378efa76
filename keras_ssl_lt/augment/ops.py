"""Pure image maths for the augmentation layers: float32 tensors, batches `(B, H, W, C)`, no randomness.

Every function works per example (factors are `(B,)` vectors) with `keras.ops` only, so it runs
on TensorFlow, JAX and PyTorch, inside or outside a compiled step. The random layers in this package
draw their parameters and call these functions.

Example:

>>> import numpy as np
>>> x = np.full((1, 2, 2, 3), 0.5, "float32")
>>> float(np.asarray(adjust_brightness(x, np.array([1.5], "float32"))).max())
0.75
"""

import keras
import numpy as np
from keras import ops

from keras_ssl_lt._checks import check_positive_int

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "GRAY_WEIGHTS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "center_boxes",
    "crop_and_resize",
    "default_blur_kernel",
    "gaussian_blur",
    "grayscale",
    "normalize",
    "require_rgb",
    "to_float01",
]

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ITU-R 601 luma weights: the ones `keras.ops.image.rgb_to_grayscale` and torchvision use.
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


def to_float01(images, integer_scale=255.0):
    """A float32 batch `(B, H, W, C)` with known height and width; integer inputs are divided by `integer_scale`.

    >>> import numpy as np
    >>> float(np.asarray(to_float01(np.full((1, 1, 1, 3), 255, "uint8"))).max())
    1.0
    """
    x = ops.convert_to_tensor(images)
    if len(x.shape) != 4:
        raise ValueError(f"`images` must be a batch (B, H, W, C); got shape {tuple(x.shape)}")
    if x.shape[1] is None or x.shape[2] is None:
        raise ValueError(f"`images` must have a known height and width; got shape {tuple(x.shape)}")
    if "int" in keras.backend.standardize_dtype(x.dtype):
        return ops.cast(x, "float32") / integer_scale
    return ops.cast(x, "float32")


def require_rgb(x):
    """Raise a ValueError unless `x` has 3 channels (last axis); returns `x`.

    >>> import numpy as np
    >>> require_rgb(np.zeros((1, 2, 2, 3))).shape
    (1, 2, 2, 3)
    """
    if x.shape[-1] != 3:
        raise ValueError(f"colour augmentations need RGB images (B, H, W, 3); got shape {tuple(x.shape)}")
    return x


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
    computed as `Wy @ image @ Wx^T` with per-example resampling matrices (no gather; differentiable).

    Example:

    >>> import numpy as np
    >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    >>> np.asarray(crop_and_resize(x, np.array([[1, 1, 2, 2]]), 2))[0, :, :, 0]
    array([[ 5.,  6.],
           [ 9., 10.]], dtype=float32)
    """
    size = check_positive_int(size, "size")
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


def center_boxes(batch, height, width, fraction):
    """`(batch, 4)` copies of the central square box whose side is `fraction` of the shorter side.

    >>> import numpy as np
    >>> np.asarray(center_boxes(1, 32, 40, 0.875)).tolist()
    [[2.0, 6.0, 28.0, 28.0]]
    """
    side = max(1, round(min(height, width) * fraction))
    top = round((height - side) / 2.0)
    left = round((width - side) / 2.0)
    box = ops.convert_to_tensor(np.array([[top, left, side, side]], "float32"))
    return ops.tile(box, [batch, 1])


def grayscale(x):
    """The luma `0.2989 R + 0.587 G + 0.114 B` as one channel `(B, H, W, 1)`.

    >>> import numpy as np
    >>> round(float(np.asarray(grayscale(np.ones((1, 1, 1, 3), "float32"))).item()), 4)
    0.9999
    """
    w = ops.convert_to_tensor(np.array(GRAY_WEIGHTS, "float32"))
    return ops.sum(ops.multiply(_float(x), w), axis=-1, keepdims=True)


def _float(x):
    return ops.cast(ops.convert_to_tensor(x), "float32")


def _per_example(f):
    return ops.reshape(ops.cast(f, "float32"), (-1, 1, 1, 1))


def adjust_brightness(x, factor):
    """torchvision's brightness: `clip(f * x, 0, 1)` with one factor per example `(B,)`.

    >>> import numpy as np
    >>> np.asarray(adjust_brightness(np.full((1, 1, 1, 3), 0.8, "float32"), np.array([2.0]))).ravel().tolist()
    [1.0, 1.0, 1.0]
    """
    return ops.clip(_float(x) * _per_example(factor), 0.0, 1.0)


def adjust_contrast(x, factor):
    """torchvision's contrast: blend with the mean gray level of each image, `clip(f * x + (1 - f) * mean)`.

    >>> import numpy as np
    >>> x = np.array([[[[0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0]]]], "float32")
    >>> np.round(np.asarray(adjust_contrast(x, np.array([0.0])))[..., 0].ravel(), 3).tolist()
    [0.5, 0.5]
    """
    x = _float(x)
    mean = ops.mean(grayscale(x), axis=(1, 2, 3), keepdims=True)
    f = _per_example(factor)
    return ops.clip(f * x + (1.0 - f) * mean, 0.0, 1.0)


def adjust_saturation(x, factor):
    """torchvision's saturation: blend with the gray image, `clip(f * x + (1 - f) * gray)`.

    >>> import numpy as np
    >>> y = np.asarray(adjust_saturation(np.random.rand(1, 2, 2, 3).astype("float32"), np.array([0.0])))
    >>> bool(np.allclose(y[..., 0], y[..., 1]))
    True
    """
    x, f = _float(x), _per_example(factor)
    return ops.clip(f * x + (1.0 - f) * grayscale(x), 0.0, 1.0)


def adjust_hue(x, shift):
    """torchvision's hue: rotate the HSV hue by `shift` (a fraction of the circle, per example).

    >>> import numpy as np
    >>> red = np.array([[[[1.0, 0.0, 0.0]]]], "float32")
    >>> np.round(np.asarray(adjust_hue(red, np.array([1 / 3]))).ravel(), 4).tolist()  # red -> green
    [0.0, 1.0, 0.0]
    """
    hsv = ops.image.rgb_to_hsv(_float(x), data_format="channels_last")
    hue = hsv[..., 0:1] + _per_example(shift)
    hue = hue - ops.floor(hue)
    return ops.image.hsv_to_rgb(ops.concatenate([hue, hsv[..., 1:]], axis=-1), data_format="channels_last")


def _reflect_index(n, r):
    idx = np.arange(-r, n + r)
    idx = np.where(idx < 0, -idx, idx)
    idx = np.where(idx > n - 1, 2 * (n - 1) - idx, idx)
    return idx.astype("int32")


def gaussian_blur(x, sigma, kernel_size):
    """Separable Gaussian blur with one sigma per example `(B,)` and reflect padding (torchvision's rule).

    The kernel is the sampled Gaussian `exp(-d^2 / (2 sigma^2))` at offsets `d = -r..r`, `r = (kernel_size - 1) / 2`,
    normalised to sum 1; `r` must be smaller than the image's height and width.

    >>> import numpy as np
    >>> x = np.zeros((1, 5, 5, 1), "float32"); x[0, 2, 2, 0] = 1.0
    >>> round(float(np.asarray(gaussian_blur(x, np.array([1.0], "float32"), 3)).sum()), 5)
    1.0
    """
    x = _float(x)
    r = (kernel_size - 1) // 2
    offsets = ops.arange(-r, r + 1, dtype="float32")
    sigma = ops.reshape(ops.cast(sigma, "float32"), (-1,))
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


def default_blur_kernel(size):
    """An odd kernel size about 10% of the image side: 23 for 224 (torchvision / SimCLR), 3 for 32.

    >>> default_blur_kernel(224), default_blur_kernel(32)
    (23, 3)
    """
    return 2 * int(0.05 * size) + 1


def normalize(x, mean, std):
    """`(x - mean) / std` per channel, with `mean`, `std` as 3-tuples.

    >>> import numpy as np
    >>> np.asarray(normalize(np.ones((1, 1, 1, 3), "float32"), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))).ravel().tolist()
    [1.0, 1.0, 1.0]
    """
    mean = ops.convert_to_tensor(np.array(mean, "float32"))
    std = ops.convert_to_tensor(np.array(std, "float32"))
    return (_float(x) - mean) / std
