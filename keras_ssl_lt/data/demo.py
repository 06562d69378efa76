"""Small synthetic labelled images for examples, docs and quick trials: no download, no file.

`demo_images` draws CIFAR-like uint8 images whose class is carried by a colour, an oriented stripe pattern
and a bright blob, under per-image brightness, stripe phase, blob shift, a smooth random background and pixel
noise. Each class looks the same for every seed and image count (its look is a fixed function of its id), so
two seeds give a train and a test split of one task; a nearest-neighbour classifier on raw pixels beats
chance, but not by everything (a real encoder has something to learn). It is for trying the package and for
runnable docs, never a benchmark: results on it say nothing about CIFAR-10.
"""

from __future__ import annotations

import numpy as np

from keras_ssl_lt._checks import check_int

__all__ = ["demo_images"]

_CLASS_STREAM = 0x5EED  # default_rng([_CLASS_STREAM, c]): the look of class c, the same for every call


def _class_looks(num_classes):
    """Per class: mean colour (0..255), stripe angle, stripe cycles per image, blob centre (fractions)."""
    colours, angles, cycles, centres = [], [], [], []
    for c in range(num_classes):
        rng = np.random.default_rng([_CLASS_STREAM, c])
        colours.append(rng.uniform(90.0, 166.0, size=3))
        angles.append(rng.uniform(0.0, np.pi))
        cycles.append(rng.uniform(1.5, 5.0))
        centres.append(rng.uniform(0.25, 0.75, size=2))
    return np.array(colours), np.array(angles), np.array(cycles), np.array(centres)


def demo_images(
    num_examples: int = 1000, num_classes: int = 10, image_size: int = 32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`(images, labels)`: `num_examples` uint8 RGB images `(N, image_size, image_size, 3)` and int64 labels.

    Classes are balanced (each class gets `num_examples // num_classes` images, the first
    `num_examples % num_classes` classes one more) and the labels come shuffled. `seed` draws the examples;
    the classes look the same for every seed, so `seed=0` and `seed=1` make a train and a test split of the
    same task. Pass the arrays to `keras_ssl_lt.data.from_arrays` to get a `Source`.

    Example (a 1-nearest-neighbour classifier on raw pixels, 4 classes: chance is 25%):

    >>> x, y = demo_images(200, num_classes=4, image_size=16, seed=0)
    >>> x.shape, x.dtype, np.bincount(y).tolist()
    ((200, 16, 16, 3), dtype('uint8'), [50, 50, 50, 50])
    >>> x_test, y_test = demo_images(100, num_classes=4, image_size=16, seed=1)
    >>> a = x.reshape(200, -1).astype("float32"); b = x_test.reshape(100, -1).astype("float32")
    >>> d = (b**2).sum(1)[:, None] - 2 * b @ a.T + (a**2).sum(1)[None]
    >>> bool((y[d.argmin(1)] == y_test).mean() > 0.5)
    True
    """
    n = check_int(num_examples, "num_examples", low=1)
    num_classes = check_int(num_classes, "num_classes", low=1)
    size = check_int(image_size, "image_size", low=4)
    seed = check_int(seed, "seed", low=0)
    if n < num_classes:
        raise ValueError(f"`num_examples` must be at least `num_classes` ({num_classes}); got {n}")
    colours, angles, cycles, centres = _class_looks(num_classes)
    rng = np.random.default_rng([seed, 1])
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    yy, xx = (np.mgrid[0:size, 0:size].astype("float32") + 0.5) / size  # pixel centres in (0, 1)
    phase = rng.uniform(0.0, 2 * np.pi, n)[:, None, None]
    proj = np.cos(angles[labels])[:, None, None] * xx + np.sin(angles[labels])[:, None, None] * yy
    stripes = np.sin(2 * np.pi * cycles[labels][:, None, None] * proj + phase)
    cy, cx = (centres[labels] + rng.uniform(-0.12, 0.12, size=(n, 2))).T
    blob = np.exp(-((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2) / 0.02)
    # a smooth random background: a 4x4 random field, upsampled by nearest neighbour
    cells = (np.arange(size) * 4) // size
    field = rng.uniform(-1.0, 1.0, (n, 4, 4, 3))[:, cells][:, :, cells]
    img = colours[labels][:, None, None, :] * rng.uniform(0.6, 1.4, (n, 1, 1, 1)) + 60.0 * field
    img = img + 25.0 * stripes[..., None] + 40.0 * blob[..., None] + rng.normal(0.0, 30.0, (n, size, size, 3))
    return np.clip(np.rint(img), 0, 255).astype("uint8"), labels.astype("int64")
