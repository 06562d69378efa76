"""Evaluation speed benchmark: kNN monitor and linear probe against their baselines.

Features: a random-init, ResNet-ish CIFAR encoder (no training; 512-d global-average-pooled
features) applied to real CIFAR-10 (/work/shared/data/cifar10.npz or $KSL_CIFAR10_NPZ):
50,000 train x 512 and 10,000 test x 512, cached under /tmp so reruns are quick.

Each figure is printed beside its baseline measured in the same run:
  * kNN (cosine, k=200, T=0.1, weighted votes) vs sklearn brute-force KNeighborsClassifier (same k,
    cosine) and vs the numpy floor (one float32 matrix product + argpartition top-k).
  * Linear probe (keras.ops full-batch solver) vs sklearn LogisticRegression(lbfgs), same L2.

Usage:
    KERAS_BACKEND=jax python benchmarks/eval.py [--skip-sklearn-knn] [--l2 1e-4]
"""

import argparse
import os
import time
from pathlib import Path

import sys

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CIFAR = Path(os.environ.get("KSL_CIFAR10_NPZ", "/work/shared/data/cifar10.npz"))
CACHE = Path(os.environ.get("KSL_EVAL_CACHE", "/tmp/ksl_eval_features_resnetish_random.npz"))


def _encoder():
    import keras
    from keras import layers

    init = keras.initializers.HeNormal(seed=0)

    def conv(x, f, s=1, k=3):
        return layers.Conv2D(f, k, strides=s, padding="same", kernel_initializer=init)(x)

    inp = keras.Input((32, 32, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    x = layers.ReLU()(conv(x, 32))
    for f in (32, 64, 128, 256):
        s = 1 if f == 32 else 2
        h = layers.ReLU()(conv(x, f, s))
        h = conv(h, f)
        sc = x if (s == 1 and x.shape[-1] == f) else conv(x, f, s, k=1)
        x = layers.ReLU()(layers.Add()([h, sc]))
    x = layers.ReLU()(conv(x, 512, k=1))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, x, name="resnetish_random")


def load_features():
    if CACHE.exists():
        with np.load(CACHE) as f:
            return f["xtr"], f["ytr"], f["xte"], f["yte"]
    from keras_ssl_lt.features import extract_features

    with np.load(CIFAR) as f:
        x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    enc = _encoder()
    t = time.perf_counter()
    xtr = extract_features(enc, x_train, batch_size=500)
    xte = extract_features(enc, x_test, batch_size=500)
    print(f"feature extraction: {time.perf_counter() - t:.1f} s (cached to {CACHE})")
    np.savez(CACHE, xtr=xtr, ytr=y_train.astype("int32"), xte=xte, yte=y_test.astype("int32"))
    return xtr, y_train.astype("int32"), xte, y_test.astype("int32")


if __name__ == "__main__":
    xtr, ytr, xte, yte = load_features()
    print(xtr.shape, xte.shape)
