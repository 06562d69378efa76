"""Evaluation speed: the kNN monitor and the linear probe against their baselines, interleaved and repeated.

Features: a random-init, ResNet-ish CIFAR encoder (no training; 512-d global-average-pooled features) applied to
real CIFAR-10 (../shared/data/cifar10.npz or $KSL_CIFAR10_NPZ), 50,000 train x 512 and 10,000 test x 512,
cached under /tmp so reruns are quick. Lower dimensions (`--dims 128`) are a fixed Gaussian random projection of
those features (seed 0), so that low- and high-dimensional kNN run on the same images.

Contenders, timed in rotated rounds (`--repeats`, median and spread printed) with the same thread settings:

* kNN (cosine, k = 200, T = 0.1, exp-weighted votes; `--n-bank` bank rows, `--n-query` queries):
  `keras_ssl_lt`'s `knn_predict` on the current Keras backend (`compute="auto"`, the host path on a CPU; and
  `compute="device"`, the `keras.ops` path), the numpy floor (one float32 matrix product of
  the normalised features plus `argpartition` top-k, no voting, in blocks of 1,000 queries) and scikit-learn's brute-force cosine
  `KNeighborsClassifier` with the same weights; the ratio ours / floor (target <= 1.2) and scikit-learn / ours.
* Linear probe (`--n-probe` training rows): `fit_logistic_regression` against scikit-learn's
  `LogisticRegression` (lbfgs) on the same standardised features and objective; the speed-up and the agreement
  of the test predictions.

    KERAS_BACKEND=jax python benchmarks/eval.py                     # kNN at 128-d and 512-d, probe on 10,000
    KERAS_BACKEND=torch python benchmarks/eval.py --skip-probe --repeats 7
    KERAS_BACKEND=jax python benchmarks/eval.py --n-bank 50000 --n-query 10000 --n-probe 50000 --repeats 5
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as C

CACHE = Path(os.environ.get("KSL_EVAL_CACHE", "/tmp/ksl_eval_features_resnetish_random.npz"))
KNN_TARGET = 1.2
# The floor works through the queries in blocks: a (5000, 20000) float32 product at once is 400 MB, freshly
# allocated and paged in each round, and its time then varied 4-fold between rounds on the 2-core machine.
FLOOR_CHUNK = 1000


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


def load_features(data=None):
    if CACHE.exists():
        with np.load(CACHE) as f:
            return f["xtr"], f["ytr"], f["xte"], f["yte"]
    from keras_ssl_lt.evaluation import extract_features

    path = Path(data or os.environ.get("KSL_CIFAR10_NPZ", C.DEFAULT_DATA))
    with np.load(path) as f:
        x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    enc = _encoder()
    t = time.perf_counter()
    xtr = extract_features(enc, x_train, batch_size=500)
    xte = extract_features(enc, x_test, batch_size=500)
    print(f"feature extraction: {time.perf_counter() - t:.1f} s (cached to {CACHE})")
    np.savez(CACHE, xtr=xtr, ytr=y_train.astype("int32"), xte=xte, yte=y_test.astype("int32"))
    return xtr, y_train.astype("int32"), xte, y_test.astype("int32")


def project(x, dim):
    """`x` itself at its own dimension, else a fixed Gaussian random projection to `dim` columns."""
    if dim == x.shape[1]:
        return x
    rng = np.random.default_rng(0)
    return (x @ rng.standard_normal((x.shape[1], dim)).astype("float32") / np.sqrt(dim)).astype("float32")


def bench_knn(a, xtr, ytr, xte, yte, dim):
    from keras_ssl_lt.evaluation import knn_predict

    bank, lab = project(xtr[: a.n_bank], dim), ytr[: a.n_bank]
    queries = project(xte[: a.n_query], dim)
    num_classes = int(ytr.max() + 1)
    out = {}

    def ours():  # compute="auto": the host path on a CPU, the device path on an accelerator
        out["ours"] = knn_predict(bank, lab, queries, num_classes, k=a.k, temperature=a.temperature)

    def ours_device():  # the keras.ops path on the backend's device, for comparison
        out["ours (device)"] = knn_predict(
            bank, lab, queries, num_classes, k=a.k, temperature=a.temperature, compute="device"
        )

    def floor():  # per block of FLOOR_CHUNK queries: one (block, bank) array at a time, as ours
        b = bank / np.linalg.norm(bank, axis=1, keepdims=True)
        q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        for s in range(0, len(q), FLOOR_CHUNK):
            np.argpartition(-(q[s : s + FLOOR_CHUNK] @ b.T), a.k - 1, axis=1)[:, : a.k]

    contenders = {"ours": ours, "ours (device)": ours_device, "numpy floor": floor}
    if not a.skip_sklearn:
        from sklearn.neighbors import KNeighborsClassifier

        sk = KNeighborsClassifier(
            n_neighbors=a.k, metric="cosine", algorithm="brute", weights=lambda d: np.exp((1.0 - d) / a.temperature)
        )

        def sklearn():
            out["sklearn"] = sk.fit(bank, lab).predict(queries)

        contenders["scikit-learn"] = sklearn
    ours()  # warm-up with the timed shapes (compilation, allocation)
    ours_device()
    times = C.interleave({k: _timed(f) for k, f in contenders.items()}, a.repeats)
    print(f"\nkNN, {dim}-d: bank {len(bank)}, {len(queries)} queries, k = {a.k}; seconds, median [IQR | range]")
    for name, v in times.items():
        print(f"  {name:14s} {C.verdict(C.summarize(v), ' s', 3)}")
    same = np.mean(out["ours"] == out["ours (device)"]) * 100
    print(
        f"  ours (device) / numpy floor: {C.verdict(C.summarize(C.ratios(times['ours (device)'], times['numpy floor'])), 'x', 2)}; predictions agree with ours on {same:.2f}%"
    )
    r = C.summarize(C.ratios(times["ours"], times["numpy floor"]))
    flag = C.verdict(r, "x", 2)
    met = (
        ""
        if flag.startswith(C.NOT_TRUSTWORTHY)
        else (" (target met)" if r["median"] <= KNN_TARGET else " (target NOT met)")
    )
    print(f"  ours / numpy floor: {flag}; target <= {KNN_TARGET}x{met}")
    if "sklearn" in out:
        print(
            f"  scikit-learn / ours: {C.verdict(C.summarize(C.ratios(times['scikit-learn'], times['ours'])), 'x', 2)}"
            f"; predictions agree on {np.mean(out['sklearn'] == out['ours']) * 100:.2f}% of {len(queries)}; "
            f"accuracy ours {np.mean(out['ours'] == yte[: a.n_query]) * 100:.2f}%, scikit-learn "
            f"{np.mean(out['sklearn'] == yte[: a.n_query]) * 100:.2f}%"
        )


def bench_probe(a, xtr, ytr, xte, yte):
    from keras_ssl_lt.evaluation import fit_logistic_regression as fit_lr

    x, y = xtr[: a.n_probe], ytr[: a.n_probe]
    num_classes = int(ytr.max() + 1)
    out = {}

    def ours():
        clf = fit_lr(x, y, num_classes, l2=a.l2)
        out["ours"] = clf.predict(xte)
        out["iters"] = (clf.n_iter, clf.converged)

    contenders = {"ours": ours}
    if not a.skip_sklearn:
        from sklearn.linear_model import LogisticRegression

        mu, sd = x.mean(0), x.std(0)
        sd = np.where(sd > 0, sd, 1.0)
        sk = LogisticRegression(C=1.0 / (a.l2 * len(x)), max_iter=1000)

        def sklearn():
            out["sklearn"] = sk.fit((x - mu) / sd, y).predict((xte - mu) / sd)
            out["sk_iters"] = int(sk.n_iter_[0])

        contenders["scikit-learn"] = sklearn
    ours()  # warm-up with the timed shapes
    times = C.interleave({k: _timed(f) for k, f in contenders.items()}, a.repeats)
    print(f"\nlinear probe: {len(x)} x {x.shape[1]}, {num_classes} classes, l2 = {a.l2}; seconds, median [IQR | range]")
    print(f"  ours          {C.verdict(C.summarize(times['ours']), ' s', 2)}; iterations, converged: {out['iters']}")
    if "sklearn" in out:
        print(
            f"  scikit-learn  {C.verdict(C.summarize(times['scikit-learn']), ' s', 2)}; "
            f"{out['sk_iters']} lbfgs iterations"
        )
        r = C.summarize(C.ratios(times["scikit-learn"], times["ours"]))
        print(
            f"  scikit-learn / ours: {C.verdict(r, 'x', 2)}; test predictions agree on "
            f"{np.mean(out['sklearn'] == out['ours']) * 100:.2f}%; top-1 ours "
            f"{np.mean(out['ours'] == yte) * 100:.2f}%, scikit-learn {np.mean(out['sklearn'] == yte) * 100:.2f}%"
        )


def _timed(fn):
    def run():
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dims", default="128,512", help="feature dimensions for the kNN (comma list)")
    p.add_argument("--n-bank", type=int, default=20000)
    p.add_argument("--n-query", type=int, default=5000)
    p.add_argument("--n-probe", type=int, default=10000, help="training rows of the probe")
    p.add_argument("--k", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--l2", type=float, default=1e-4)
    p.add_argument("--repeats", type=int, default=C.DEFAULT_REPEATS)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--skip-knn", action="store_true")
    p.add_argument("--skip-probe", action="store_true")
    p.add_argument("--skip-sklearn", action="store_true", help="skip the scikit-learn baselines")
    p.add_argument("--data", default=None)
    a = p.parse_args(argv)
    if a.repeats < 3:
        p.error("--repeats must be >= 3")
    C.pin_threads(a.threads)
    import keras

    threads = C.apply_thread_settings(torch_mkldnn=False if keras.backend.backend() == "torch" else None)
    xtr, ytr, xte, yte = load_features(a.data)
    print(
        f"evaluation speed, backend {keras.backend.backend()}; {C.hardware()}; load average "
        f"{C.load_average()[0]:.1f}; {a.repeats} interleaved rounds; threads: {C.describe_threads(threads)}"
    )
    if not a.skip_knn:
        for dim in (int(d) for d in a.dims.split(",")):
            bench_knn(a, xtr, ytr, xte, yte, dim)
    if not a.skip_probe:
        bench_probe(a, xtr, ytr, xte, yte)


if __name__ == "__main__":
    main()
