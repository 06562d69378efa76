"""RandAugment's PIL operations as per-example `keras.ops` maths on float images in [0, 1].

BCL (Zhou et al., ICML 2022) boosts its views with the RandAugment operations of its released code
(MediaBrain-SJTU/BCL, `data/randaug.py`, itself from ildoonet/pytorch-randaugment), which run on PIL
images. The functions here compute the same operations on a float32 batch `(B, H, W, 3)` with one
parameter per example `(B,)`, so they run inside a compiled step on every backend:

* geometry (`affine_nearest`, `shear_matrix`, `translate_matrix`, `rotate_matrix`): PIL's
  `Image.transform(AFFINE, NEAREST)` / `Image.rotate` convention: output pixel `(col, row)` takes the input
  pixel at `floor(a (col + 0.5) + b (row + 0.5) + c, d (col + 0.5) + e (row + 0.5) + f)`, black outside;
* colour (`auto_contrast`, `invert`, `equalize`, `solarize`, `posterize`) as `PIL.ImageOps`;
* enhancers (`enhance_contrast`, `enhance_color`, `enhance_brightness`, `enhance_sharpness`) as
  `PIL.ImageEnhance`: `blend(degenerate, image, factor)` clipped to [0, 1];
* `cutout`: a gray square (RandAugment's `CutoutAbs`).

PIL rounds to uint8 after each operation; these keep floats (on uint8-valued inputs they agree with PIL
to one grey level, checked in tests/augment/test_strength.py). `posterize` and `equalize` are defined on
the 256 grey levels, so they quantise their input first.

Example:

>>> import numpy as np
>>> x = np.full((1, 2, 2, 3), 0.25, "float32")
>>> np.asarray(invert(x))[0, 0, 0].tolist()
[0.75, 0.75, 0.75]
"""

import math

import numpy as np
from keras import ops

__all__ = [
    "CUTOUT_FILL",
    "PIL_GRAY_WEIGHTS",
    "affine_nearest",
    "auto_contrast",
    "cutout",
    "enhance_brightness",
    "enhance_color",
    "enhance_contrast",
    "enhance_sharpness",
    "equalize",
    "invert",
    "pil_grayscale",
    "posterize",
    "rotate_matrix",
    "shear_matrix",
    "solarize",
    "translate_matrix",
]

# PIL's RGB -> L conversion (ITU-R 601-2 luma, `L = R * 299/1000 + G * 587/1000 + B * 114/1000`).
PIL_GRAY_WEIGHTS = (0.299, 0.587, 0.114)
# RandAugment's CutoutAbs fill colour (BCL data/randaug.py), on the 0..255 scale.
CUTOUT_FILL = (125, 123, 114)


def _float(x):
    return ops.cast(ops.convert_to_tensor(x), "float32")


def _col(v):
    """A per-example `(B,)` parameter as `(B, 1, 1, 1)`."""
    return ops.reshape(_float(v), (-1, 1, 1, 1))


def _blend(degenerate, x, factor):
    """PIL's `Image.blend(degenerate, x, factor)`: `degenerate + factor (x - degenerate)`, clipped to [0, 1]."""
    return ops.clip(degenerate + _col(factor) * (x - degenerate), 0.0, 1.0)


def _levels(x):
    """The 256 grey levels of [0, 1] values, as int32 in 0..255."""
    return ops.cast(ops.clip(ops.round(_float(x) * 255.0), 0.0, 255.0), "int32")


# ------------------------------------------------------------------ geometry
def shear_matrix(v, axis):
    """PIL affine coefficients `(B, 6)` of a shear by `v` (per example) along `axis` ("x" or "y").

    `ShearX` is `(1, v, 0, 0, 1, 0)`: the output pixel at `(x, y)` reads the input at `(x + v y, y)`.

    >>> np.asarray(shear_matrix(np.array([0.5], "float32"), "x")).tolist()
    [[1.0, 0.5, 0.0, 0.0, 1.0, 0.0]]
    """
    v = ops.reshape(_float(v), (-1,))
    one, zero = ops.ones_like(v), ops.zeros_like(v)
    parts = (one, v, zero, zero, one, zero) if axis == "x" else (one, zero, zero, v, one, zero)
    return ops.stack(parts, axis=1)


def translate_matrix(dx, dy):
    """PIL affine coefficients `(B, 6)` of a translation: the output at `(x, y)` reads the input at `(x + dx, y + dy)`.

    >>> np.asarray(translate_matrix(np.array([2.0], "float32"), np.array([0.0], "float32"))).tolist()
    [[1.0, 0.0, 2.0, 0.0, 1.0, 0.0]]
    """
    dx, dy = ops.reshape(_float(dx), (-1,)), ops.reshape(_float(dy), (-1,))
    one, zero = ops.ones_like(dx), ops.zeros_like(dx)
    return ops.stack((one, zero, dx, zero, one, dy), axis=1)


def rotate_matrix(degrees, height, width):
    """PIL affine coefficients `(B, 6)` of `Image.rotate(degrees)`: counter-clockwise about the centre `(w/2, h/2)`.

    As PIL builds it: with `r = -radians(degrees)`, `(cos r, sin r, c, -sin r, cos r, f)` where `c`, `f` keep
    the centre fixed.

    >>> (np.round(np.asarray(rotate_matrix(np.array([90.0], "float32"), 4, 4)), 6) + 0.0).tolist()
    [[0.0, -1.0, 4.0, 1.0, 0.0, 0.0]]
    """
    r = -ops.reshape(_float(degrees), (-1,)) * (math.pi / 180.0)
    # PIL rounds the coefficients to 15 decimals, which makes sin 30 exactly 0.5 and cos 90 exactly 0; rounding
    # float32 values to 6 decimals does the same here (so pixel centres that land on a boundary agree).
    cos, sin = ops.round(ops.cos(r) * 1e6) / 1e6, ops.round(ops.sin(r) * 1e6) / 1e6
    cx, cy = width / 2.0, height / 2.0
    c = -cos * cx - sin * cy + cx
    f = sin * cx - cos * cy + cy
    return ops.stack((cos, sin, c, -sin, cos, f), axis=1)


def affine_nearest(x, matrix):
    """PIL's `Image.transform(size, AFFINE, matrix)` with NEAREST sampling, one matrix `(B, 6)` per example.

    Output pixel `(col, row)` takes the input pixel at `(floor(a (col + .5) + b (row + .5) + c),
    floor(d (col + .5) + e (row + .5) + f))`; pixels mapped outside the image are black (PIL's fill).
    The identity matrix `(1, 0, 0, 0, 1, 0)` returns `x` exactly.

    >>> x = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
    >>> np.asarray(affine_nearest(x, translate_matrix(np.array([1.0]), np.array([0.0]))))[0, :, :, 0].tolist()
    [[1.0, 0.0], [3.0, 0.0]]
    """
    x = _float(x)
    batch = ops.shape(x)[0]
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    m = ops.reshape(_float(matrix), (-1, 6, 1, 1))
    cols = (ops.arange(w, dtype="float32") + 0.5)[None, None, :]
    rows = (ops.arange(h, dtype="float32") + 0.5)[None, :, None]
    xin = ops.floor(m[:, 0] * cols + m[:, 1] * rows + m[:, 2])  # (B, H, W)
    yin = ops.floor(m[:, 3] * cols + m[:, 4] * rows + m[:, 5])
    inside = (xin >= 0) & (xin < w) & (yin >= 0) & (yin < h)
    flat = ops.cast(ops.clip(yin, 0, h - 1) * w + ops.clip(xin, 0, w - 1), "int32")
    flat = ops.broadcast_to(ops.reshape(flat, (batch, h * w, 1)), (batch, h * w, c))
    taken = ops.take_along_axis(ops.reshape(x, (batch, h * w, c)), flat, axis=1)
    taken = ops.reshape(taken, (batch, h, w, c))
    return ops.where(inside[..., None], taken, 0.0)


# ------------------------------------------------------------------ ImageOps
def pil_grayscale(x):
    """PIL's luma `L = 0.299 R + 0.587 G + 0.114 B` as one channel `(B, H, W, 1)` (not rounded).

    >>> round(float(np.asarray(pil_grayscale(np.ones((1, 1, 1, 3), "float32"))).item()), 6)
    1.0
    """
    weights = ops.convert_to_tensor(np.array(PIL_GRAY_WEIGHTS, "float32"))
    return ops.sum(_float(x) * weights, axis=-1, keepdims=True)


def invert(x):
    """`PIL.ImageOps.invert`: `1 - x`.

    >>> np.asarray(invert(np.zeros((1, 1, 1, 3), "float32"))).ravel().tolist()
    [1.0, 1.0, 1.0]
    """
    return 1.0 - _float(x)


def auto_contrast(x):
    """`PIL.ImageOps.autocontrast` (cutoff 0): each channel stretched so its min maps to 0 and its max to 1.

    A constant channel is left unchanged.

    >>> x = np.array([0.2, 0.6], "float32").reshape(1, 2, 1, 1) * np.ones((1, 1, 1, 3), "float32")
    >>> np.round(np.asarray(auto_contrast(x))[0, :, 0, 0], 6).tolist()
    [0.0, 1.0]
    """
    x = _float(x)
    lo = ops.min(x, axis=(1, 2), keepdims=True)
    hi = ops.max(x, axis=(1, 2), keepdims=True)
    stretched = (x - lo) / ops.maximum(hi - lo, 1e-12)
    return ops.where(hi > lo, stretched, x)


def solarize(x, threshold):
    """`PIL.ImageOps.solarize`: values at or above `threshold` (0..256 grey levels, per example) are inverted.

    >>> x = np.array([0.2, 0.8], "float32").reshape(1, 1, 2, 1)
    >>> [round(float(v), 6) for v in np.asarray(solarize(x, np.array([128.0])))[0, 0, :, 0]]
    [0.2, 0.2]
    """
    x = _float(x)
    return ops.where(x * 255.0 < _col(threshold), x, 1.0 - x)


def posterize(x, bits):
    """`PIL.ImageOps.posterize`: keep the top `bits` (1..8, per example) of each 8-bit grey level.

    >>> x = np.full((1, 1, 1, 1), 200 / 255, "float32")
    >>> round(float(np.asarray(posterize(x, np.array([4])))[0, 0, 0, 0]) * 255)
    192
    """
    step = ops.power(2.0, 8.0 - ops.clip(_col(bits), 1.0, 8.0))
    return ops.floor(ops.cast(_levels(x), "float32") / step) * step / 255.0


def equalize(x):
    """`PIL.ImageOps.equalize`: histogram equalisation of each channel on its 256 grey levels.

    As PIL computes it: with the channel's histogram `h`, `step = (n - h[last used level]) // 255` and level `i`
    mapped to `min(255, (step // 2 + sum(h[:i])) // step)`; a channel with one used level or `step == 0` is
    left unchanged.

    >>> x = (np.arange(512) % 128).astype("float32").reshape(1, 16, 32, 1) / 255  # levels 0..127, 4 pixels each
    >>> y = np.asarray(equalize(x))[0, :, :, 0] * 255
    >>> [int(round(float(y.ravel()[i]))) for i in (0, 10, 63, 127)]  # level i -> min(255, (0 + 4 i) // 1)
    [0, 40, 252, 255]
    """
    x = _float(x)
    batch = ops.shape(x)[0]
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    levels = ops.transpose(ops.reshape(_levels(x), (batch, h * w, c)), (0, 2, 1))  # (B, C, N)
    channel = ops.reshape(ops.arange(batch * c, dtype="int32"), (batch, c, 1))
    ids = ops.reshape(channel * 256 + levels, (-1,))
    ones = ops.ones_like(ids, dtype="float32")
    hist = ops.reshape(ops.segment_sum(ones, ids, num_segments=batch * c * 256), (batch, c, 256))
    used = ops.sum(ops.cast(hist > 0, "float32"), axis=-1, keepdims=True)  # (B, C, 1)
    top = ops.max(levels, axis=-1, keepdims=True)
    last = ops.take_along_axis(hist, top, axis=-1)
    step = ops.floor((float(h * w) - last) / 255.0)
    below = ops.cumsum(hist, axis=-1) - hist  # pixels at lower levels
    safe = ops.maximum(step, 1.0)
    lut = ops.minimum(ops.floor((ops.floor(step / 2.0) + below) / safe), 255.0)  # (B, C, 256)
    mapped = ops.take_along_axis(lut, levels, axis=-1) / 255.0  # (B, C, N)
    mapped = ops.reshape(ops.transpose(mapped, (0, 2, 1)), (batch, h, w, c))
    keep = ops.reshape(ops.transpose((used <= 1) | (step <= 0), (0, 2, 1)), (batch, 1, 1, c))
    return ops.where(keep, x, mapped)


# ------------------------------------------------------------------ ImageEnhance
def enhance_brightness(x, factor):
    """`PIL.ImageEnhance.Brightness`: blend with black, `clip(factor x)`.

    >>> [round(float(v), 6) for v in np.asarray(enhance_brightness(np.full((1, 1, 1, 3), 0.4, "float32"), [1.5])).ravel()]
    [0.6, 0.6, 0.6]
    """
    x = _float(x)
    return _blend(ops.zeros_like(x), x, factor)


def enhance_color(x, factor):
    """`PIL.ImageEnhance.Color`: blend with the image's grayscale (PIL's luma), factor 0 = gray.

    >>> y = np.asarray(enhance_color(np.random.rand(1, 2, 2, 3).astype("float32"), np.array([0.0])))
    >>> bool(np.allclose(y[..., 0], y[..., 2]))
    True
    """
    x = _float(x)
    return _blend(ops.broadcast_to(pil_grayscale(x), ops.shape(x)), x, factor)


def enhance_contrast(x, factor):
    """`PIL.ImageEnhance.Contrast`: blend with the mean grey level of the image (PIL rounds it to a level).

    >>> x = np.array([0.0, 1.0], "float32").reshape(1, 1, 2, 1) * np.ones((1, 1, 1, 3), "float32")
    >>> np.round(np.asarray(enhance_contrast(x, np.array([0.0])))[0, 0, :, 0] * 255).tolist()
    [128.0, 128.0]
    """
    x = _float(x)
    mean = ops.mean(pil_grayscale(x), axis=(1, 2, 3), keepdims=True)
    mean = ops.floor(mean * 255.0 + 0.5) / 255.0
    return _blend(ops.broadcast_to(mean, ops.shape(x)), x, factor)


def enhance_sharpness(x, factor):
    """`PIL.ImageEnhance.Sharpness`: blend with PIL's SMOOTH filter (3x3 kernel `[1 1 1; 1 5 1; 1 1 1] / 13`,
    border pixels kept), factor 0 = smooth, 1 = unchanged, 2 = sharpened.

    >>> x = np.zeros((1, 3, 3, 1), "float32"); x[0, 1, 1, 0] = 1.0
    >>> round(float(np.asarray(enhance_sharpness(x, np.array([0.0])))[0, 1, 1, 0]), 6)
    0.384615
    """
    x = _float(x)
    h, w = x.shape[1], x.shape[2]
    if h < 3 or w < 3:
        return x  # PIL's 3x3 filter keeps every border pixel: nothing is smoothed
    inner = 4.0 * x[:, 1:-1, 1:-1]
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            inner = inner + x[:, dy : dy + h - 2, dx : dx + w - 2]
    smooth = inner / 13.0
    rows = ops.arange(h)[:, None]
    cols = ops.arange(w)[None, :]
    interior = ((rows > 0) & (rows < h - 1) & (cols > 0) & (cols < w - 1))[None, :, :, None]
    padded = ops.pad(smooth, ((0, 0), (1, 1), (1, 1), (0, 0)))
    degenerate = ops.where(interior, padded, x)
    return _blend(degenerate, x, factor)


# ------------------------------------------------------------------ cutout
def cutout(x, side, centre):
    """RandAugment's `CutoutAbs`: a gray `CUTOUT_FILL` square of `side` pixels (per example) at a centre.

    `centre` is `(B, 2)` of `(x, y)` pixel coordinates (the code draws them uniform in the image). As the
    code does: `x0 = int(max(0, cx - side / 2))`, `x1 = min(w, x0 + side)` (likewise y), and PIL's
    `rectangle` fills columns `x0..x1` and rows `y0..y1`, both ends included; `side <= 0` draws nothing.

    >>> y = np.asarray(cutout(np.zeros((1, 4, 4, 3), "float32"), np.array([2.0]), np.array([[2.0, 2.0]])))
    >>> int((y[0, :, :, 0] > 0).sum())
    9
    """
    x = _float(x)
    h, w = x.shape[1], x.shape[2]
    side = ops.reshape(_float(side), (-1, 1))
    centre = ops.reshape(_float(centre), (-1, 2))
    x0 = ops.floor(ops.maximum(centre[:, :1] - side / 2.0, 0.0))
    y0 = ops.floor(ops.maximum(centre[:, 1:] - side / 2.0, 0.0))
    x1 = ops.floor(ops.minimum(x0 + side, float(w)))
    y1 = ops.floor(ops.minimum(y0 + side, float(h)))
    cols = ops.arange(w, dtype="float32")[None, :]
    rows = ops.arange(h, dtype="float32")[None, :]
    in_cols = (cols >= x0) & (cols <= x1)  # (B, W)
    in_rows = (rows >= y0) & (rows <= y1)  # (B, H)
    box = in_rows[:, :, None, None] & in_cols[:, None, :, None] & (side > 0)[:, :, None, None]
    fill = ops.convert_to_tensor(np.array(CUTOUT_FILL, "float32") / 255.0)
    return ops.where(box, fill, x)
