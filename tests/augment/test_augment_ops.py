"""The pure image maths of `keras_ssl_lt.augment.ops` against PyTorch, numpy and colorsys references."""

import colorsys

import numpy as np
import pytest
from augment_helpers import RNG, to_np, torch_resize
from keras import ops

from keras_ssl_lt.augment import ops as aug_ops


@pytest.mark.parametrize(("size", "antialias"), [(12, True), (12, False), (40, True)])
def test_crop_and_resize_matches_pytorch_interpolate(size, antialias):
    x = RNG.random((3, 20, 24, 2)).astype("float32")
    boxes = np.array([[0, 0, 20, 24], [3, 5, 9, 17], [10, 2, 10, 7]], "float32")
    got = to_np(aug_ops.crop_and_resize(x, boxes, size, antialias=antialias))
    for i, (t, l, h, w) in enumerate(boxes.astype(int)):
        ref = torch_resize(x[i, t : t + h, l : l + w], size, antialias)
        np.testing.assert_allclose(got[i], ref, atol=1e-5)


def test_colour_ops_match_numpy_and_colorsys():
    x_np = RNG.random((2, 5, 6, 3)).astype("float32")
    x = ops.convert_to_tensor(x_np)
    f_np = np.array([0.7, 1.3], "float32")
    f = ops.convert_to_tensor(f_np)
    gray = x_np @ np.array([0.2989, 0.587, 0.114])
    np.testing.assert_allclose(to_np(aug_ops.grayscale(x))[..., 0], gray, atol=1e-6)
    fb = f_np[:, None, None, None]
    np.testing.assert_allclose(to_np(aug_ops.adjust_brightness(x, f)), np.clip(fb * x_np, 0, 1), atol=1e-6)
    m = gray.mean(axis=(1, 2))[:, None, None, None]
    np.testing.assert_allclose(to_np(aug_ops.adjust_contrast(x, f)), np.clip(fb * x_np + (1 - fb) * m, 0, 1), atol=1e-6)
    ref = np.clip(fb * x_np + (1 - fb) * gray[..., None], 0, 1)
    np.testing.assert_allclose(to_np(aug_ops.adjust_saturation(x, f)), ref, atol=1e-6)
    shift = np.array([0.08, -0.1], "float32")
    ref = np.zeros_like(x_np, dtype="float64")
    for b in range(2):
        for i in range(5):
            for j in range(6):
                hh, ss, vv = colorsys.rgb_to_hsv(*x_np[b, i, j])
                ref[b, i, j] = colorsys.hsv_to_rgb((hh + shift[b]) % 1.0, ss, vv)
    np.testing.assert_allclose(to_np(aug_ops.adjust_hue(x, ops.convert_to_tensor(shift))), ref, atol=1e-5)


def test_gaussian_blur_matches_numpy_reference():
    x = RNG.random((2, 9, 11, 3)).astype("float32")
    sigma = np.array([0.5, 1.7], "float32")
    got = to_np(aug_ops.gaussian_blur(ops.convert_to_tensor(x), ops.convert_to_tensor(sigma), 5))
    for b in range(2):
        k = np.exp(-0.5 * (np.arange(-2, 3) / sigma[b]) ** 2)
        k /= k.sum()
        p = np.pad(x[b].astype("float64"), ((2, 2), (2, 2), (0, 0)), mode="reflect")
        v = sum(k[d] * p[d : d + 9] for d in range(5))
        ref = sum(k[d] * v[:, d : d + 11] for d in range(5))
        np.testing.assert_allclose(got[b], ref, atol=1e-5)


def test_center_boxes_default_kernel_and_normalize():
    np.testing.assert_array_equal(to_np(aug_ops.center_boxes(2, 30, 20, 0.5)), [[10, 5, 10, 10]] * 2)
    assert [aug_ops.default_blur_kernel(s) for s in (32, 96, 224)] == [3, 9, 23]
    x = RNG.random((1, 2, 2, 3)).astype("float32")
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    np.testing.assert_allclose(to_np(aug_ops.normalize(x, mean, std)), (x - mean) / np.array(std), atol=1e-6)


def test_to_float01_scales_integers_only_and_rejects_bad_shapes():
    np.testing.assert_allclose(to_np(aug_ops.to_float01(np.full((1, 1, 1, 3), 51, "uint8"))), 0.2, atol=1e-7)
    np.testing.assert_allclose(to_np(aug_ops.to_float01(np.full((1, 1, 1, 3), 51.0, "float32"))), 51.0)
    with pytest.raises(ValueError, match="batch"):
        aug_ops.to_float01(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="RGB"):
        aug_ops.require_rgb(np.zeros((1, 4, 4, 1)))
    with pytest.raises(ValueError, match="size"):
        aug_ops.crop_and_resize(np.zeros((1, 4, 4, 3)), np.array([[0, 0, 4, 4]]), 0)
