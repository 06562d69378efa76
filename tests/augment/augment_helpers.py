"""Shared helpers of the augmentation tests."""

import numpy as np
import pytest
from keras import ops

RNG = np.random.default_rng(0)
IMGS = RNG.integers(0, 256, size=(8, 32, 32, 3)).astype("uint8")


def to_np(x):
    return np.asarray(ops.convert_to_numpy(x)).astype("float64")


def per_example_equal(a, b, atol=1e-6):
    """(B,) booleans: example i of `a` equals example i of `b`."""
    return np.all(np.isclose(a, b, atol=atol), axis=tuple(range(1, a.ndim)))


def torch_resize(img, size, antialias):
    """PyTorch's bilinear `interpolate` of one (H, W, C) image, the reference for the resampling."""
    torch = pytest.importorskip("torch")
    t = torch.tensor(img, dtype=torch.float64).permute(2, 0, 1)[None]
    out = torch.nn.functional.interpolate(
        t, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias
    )
    return out[0].permute(1, 2, 0).numpy()
