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


@pytest.fixture(scope="session")
def cifar10():
    """The real CIFAR-10 arrays from ../shared/data/cifar10.npz (skips when absent)."""
    if not CIFAR10_PATH.exists():
        pytest.skip(
            f"real CIFAR-10 not found at {CIFAR10_PATH}; set KSL_CIFAR10_NPZ to a .npz "
            "with x_train/y_train/x_test/y_test to run this test"
        )
    with np.load(CIFAR10_PATH) as f:
        return {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}


@pytest.fixture(scope="session")
def cifar10_small(cifar10):
    """A shuffled, class-balanced slice: 64 train and 32 test images per class (seeded)."""
    rng = np.random.default_rng(0)
    out = {}
    for split, per_class in (("train", 64), ("test", 32)):
        y = cifar10[f"y_{split}"]
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)]
        )
        rng.shuffle(idx)
        out[f"x_{split}"] = cifar10[f"x_{split}"][idx]
        out[f"y_{split}"] = y[idx].astype("int32")
    return out


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(1234)
    yield
