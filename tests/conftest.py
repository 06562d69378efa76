"""Shared fixtures. Every test runs under the backend named by KERAS_BACKEND."""

import os
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("KERAS_BACKEND") == "jax":
    # Many tests build a fresh model whose step compiles to the same XLA program: a persistent cache
    # lets later tests (and later runs on the same machine) reuse it.
    import jax

    jax.config.update(
        "jax_compilation_cache_dir",
        os.environ.get("KSL_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "keras_ssl_lt_jax")),
    )
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

CIFAR10_PATH = Path(
    os.environ.get(
        "KSL_CIFAR10_NPZ",
        Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10.npz",
    )
)


if os.environ.get("KERAS_BACKEND") == "torch":
    # Keras imports scikit-learn when it is installed, which loads a second OpenMP runtime beside
    # PyTorch's; with both in one process, PyTorch's oneDNN convolution backward intermittently hangs
    # or corrupts memory on this CPU build (seen with torch 2.13.0+cpu). The native kernels are
    # unaffected. See docs/performance.md ("Known issues").
    import torch

    torch.backends.mkldnn.enabled = False


def synthetic_cifar10(n_train_per_class=64, n_test_per_class=32, seed=0):
    """CIFAR-10-shaped uint8 images whose class is carried by colour, texture and layout, plus noise.

    Each class has its own mean colour, an oriented stripe pattern (orientation and frequency per class)
    and a bright blob in one of a few positions; every image also gets a random brightness, a random phase
    of the stripes, a random shift of the blob and pixel noise. A linear probe on random convolutional
    features separates the classes only partly, as on real CIFAR-10. Labels are shuffled (not sorted).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32].astype("float32")
    palette = rng.uniform(90, 166, size=(10, 3))
    angles = np.linspace(0, np.pi, 10, endpoint=False)
    freqs = 2 * np.pi / np.array([4, 6, 8, 5, 7, 9, 4.5, 6.5, 8.5, 5.5])
    blobs = rng.integers(6, 26, size=(10, 2))

    def make(per_class):
        y = np.repeat(np.arange(10), per_class)
        rng.shuffle(y)
        n = len(y)
        phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
        proj = np.cos(angles[y])[:, None, None] * xx + np.sin(angles[y])[:, None, None] * yy
        stripes = np.sin(freqs[y][:, None, None] * proj + phase)
        cy, cx = (blobs[y] + rng.integers(-4, 5, size=(n, 2))).T
        blob = np.exp(-((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2) / 18.0)
        # smooth random background (a 4x4 random field, upsampled): dark and bright regions as in photos
        field = rng.uniform(-1, 1, (n, 4, 4, 3)).repeat(8, axis=1).repeat(8, axis=2)
        img = palette[y][:, None, None, :] * rng.uniform(0.5, 1.3, (n, 1, 1, 1)) + 150 * field
        img = img + 14 * stripes[..., None] + 25 * blob[..., None] + rng.normal(0, 25, (n, 32, 32, 3))
        return np.clip(img, 0, 255).astype("uint8"), y.astype("int64")

    x_train, y_train = make(n_train_per_class)
    x_test, y_test = make(n_test_per_class)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


@pytest.fixture(scope="session")
def cifar10():
    """The real CIFAR-10 arrays from ../shared/data/cifar10.npz (skips when absent).

    Only for tests that need the real data set itself (its class counts, its file format); tests that
    need realistic images use `cifar10_small`, which falls back to synthetic images.
    """
    if not CIFAR10_PATH.exists():
        pytest.skip(
            f"real CIFAR-10 not found at {CIFAR10_PATH}; set KSL_CIFAR10_NPZ to a .npz "
            "with x_train/y_train/x_test/y_test to run this test"
        )
    with np.load(CIFAR10_PATH) as f:
        return {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}


@pytest.fixture(scope="session")
def cifar10_small():
    """A shuffled, class-balanced slice: 64 train and 32 test images per class (seeded).

    From the real CIFAR-10 when ../shared/data/cifar10.npz (or KSL_CIFAR10_NPZ) exists, else from
    `synthetic_cifar10` (same shapes, dtypes and class balance), so the tests that use it run everywhere.
    Set KSL_SYNTHETIC_CIFAR=1 to force the synthetic images.
    """
    if not CIFAR10_PATH.exists() or os.environ.get("KSL_SYNTHETIC_CIFAR") == "1":
        data = synthetic_cifar10()
        return {k: (v.astype("int32") if k.startswith("y") else v) for k, v in data.items()}
    with np.load(CIFAR10_PATH) as f:
        cifar10 = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    rng = np.random.default_rng(0)
    out = {}
    for split, per_class in (("train", 64), ("test", 32)):
        y = cifar10[f"y_{split}"]
        idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)])
        rng.shuffle(idx)
        out[f"x_{split}"] = cifar10[f"x_{split}"][idx]
        out[f"y_{split}"] = y[idx].astype("int32")
    return out


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(1234)
    yield
