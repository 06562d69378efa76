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
import sys
import time
from pathlib import Path

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
    from keras_ssl_lt.evaluation import extract_features

    with np.load(CIFAR) as f:
        x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    enc = _encoder()
    t = time.perf_counter()
    xtr = extract_features(enc, x_train, batch_size=500)
    xte = extract_features(enc, x_test, batch_size=500)
    print(f"feature extraction: {time.perf_counter() - t:.1f} s (cached to {CACHE})")
    np.savez(CACHE, xtr=xtr, ytr=y_train.astype("int32"), xte=xte, yte=y_test.astype("int32"))
    return xtr, y_train.astype("int32"), xte, y_test.astype("int32")


def bench_knn(xtr, ytr, xte, yte, k, temperature, skip_sklearn):
    from keras_ssl_lt.evaluation import knn_predict

    # Floor: one float32 matrix product plus numpy top-k (argpartition), no voting.
    t = time.perf_counter()
    a = xtr / np.linalg.norm(xtr, axis=1, keepdims=True)
    b = xte / np.linalg.norm(xte, axis=1, keepdims=True)
    sim = b @ a.T
    np.argpartition(-sim, k - 1, axis=1)[:, :k]
    t_floor = time.perf_counter() - t
    del sim
    print(f"kNN floor (numpy matmul + argpartition): {t_floor:.2f} s")

    knn_predict(xtr[:1000], ytr[:1000], xte[:100], 10, k=k)  # warm-up (compilation, allocation)
    t = time.perf_counter()
    pred = knn_predict(xtr, ytr, xte, 10, k=k, temperature=temperature)
    t_ours = time.perf_counter() - t
    acc = float(np.mean(pred == yte))
    print(f"kNN keras_ssl_lt ({BACKEND}): {t_ours:.2f} s, acc {acc:.4f}, "
          f"{t_ours / t_floor:.2f}x the floor")
    if not skip_sklearn:
        from sklearn.neighbors import KNeighborsClassifier

        t = time.perf_counter()
        sk = KNeighborsClassifier(
            n_neighbors=k, metric="cosine", algorithm="brute",
            weights=lambda d: np.exp((1.0 - d) / temperature),
        ).fit(xtr, ytr)
        sk_pred = sk.predict(xte)
        t_sk = time.perf_counter() - t
        same = float(np.mean(sk_pred == pred))
        print(f"kNN sklearn brute cosine: {t_sk:.2f} s, acc {np.mean(sk_pred == yte):.4f}; "
              f"identical predictions: {same * 100:.2f}% ; sklearn / ours = {t_sk / t_ours:.2f}x")


def bench_probe(xtr, ytr, xte, yte, l2, skip_sklearn):
    from keras_ssl_lt.evaluation import fit_logistic_regression

    fit_logistic_regression(xtr[:500], ytr[:500], l2=l2, max_iter=10)  # warm-up
    t = time.perf_counter()
    clf = fit_logistic_regression(xtr, ytr, l2=l2)
    t_ours = time.perf_counter() - t
    acc = clf.score(xte, yte)
    print(f"probe keras_ssl_lt ({BACKEND}, l2={l2}): {t_ours:.1f} s, {clf.n_iter} iterations, "
          f"converged={clf.converged}, top-1 {acc * 100:.2f}%")
    if not skip_sklearn:
        from sklearn.linear_model import LogisticRegression

        mu, sd = xtr.mean(0), xtr.std(0)
        sd = np.where(sd > 0, sd, 1.0)
        t = time.perf_counter()
        sk = LogisticRegression(C=1.0 / (l2 * len(xtr)), max_iter=1000)
        sk.fit((xtr - mu) / sd, ytr)
        t_sk = time.perf_counter() - t
        acc_sk = sk.score((xte - mu) / sd, yte)
        print(f"probe sklearn lbfgs (C={1.0 / (l2 * len(xtr)):.3g}): {t_sk:.1f} s, "
              f"{int(sk.n_iter_[0])} iterations, top-1 {acc_sk * 100:.2f}%")
        print(f"probe: accuracy difference {abs(acc - acc_sk) * 100:.2f} points; "
              f"sklearn / ours = {t_sk / t_ours:.2f}x")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--l2", type=float, default=1e-4)
    p.add_argument("--k", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--skip-knn", action="store_true")
    p.add_argument("--skip-probe", action="store_true")
    p.add_argument("--skip-sklearn", action="store_true", help="skip the sklearn baselines")
    args = p.parse_args()
    import keras

    BACKEND = keras.backend.backend()
    xtr, ytr, xte, yte = load_features()
    print(f"features: train {xtr.shape}, test {xte.shape}; backend {BACKEND}; "
          f"{os.cpu_count()} CPU cores visible")
    if not args.skip_knn:
        bench_knn(xtr, ytr, xte, yte, args.k, args.temperature, args.skip_sklearn)
    if not args.skip_probe:
        bench_probe(xtr, ytr, xte, yte, args.l2, args.skip_sklearn)
