"""Images per second delivered by `ssl_dataset` on CIFAR-10-LT, beside a plain numpy baseline.

Builds CIFAR-10-LT (exp profile, r=0.01 by default: 12,406 images) from the real CIFAR-10 .npz,
then, in the same run and on the same data:

- baseline: a fresh `numpy.random.Generator.permutation` per epoch and fancy indexing per batch
  (images, labels, index) of the gathered uint8 arrays;
- each pipeline path (`tf`: tf.data, batches converted to numpy as `fit` does on JAX / PyTorch;
  `numpy`: the `keras.utils.PyDataset`), iterated for the same number of epochs.

With `--consumer fit` the same contenders are consumed by `model.fit` on the current KERAS_BACKEND (a
one-weight model that reads every image, so the step costs almost nothing and the figure is the input
path as `fit` sees it: on TensorFlow `fit` reads tf.data in its graph and a PyDataset through a Python
generator; on JAX / PyTorch it converts tf.data batches to numpy); the baseline is then `fit` on the
gathered arrays (Keras' own array path, `shuffle=True`).

Contenders are timed in turns (`--repeats` rounds, order rotated each round, same thread settings)
and the median of the rounds is printed with its spread (IQR and range): images/s for each and the
median per-round ratio pipeline / baseline; a figure whose range exceeds its median is printed as
NOT TRUSTWORTHY (see `_common.py`). One warm-up epoch per contender is not timed. Timings depend on
the machine and its load; quote them with the command and the hardware.

    python benchmarks/pipeline.py --data ../shared/data/cifar10.npz --epochs 10 --repeats 5
    KERAS_BACKEND=jax python benchmarks/pipeline.py --consumer fit --epochs 3 --repeats 3
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import _common as C

from keras_ssl_lt.data import from_npz, make_subset, ssl_dataset


def baseline_epochs(images, labels, index, batch_size, epochs, seed=0):
    """Numpy reference: permutation + fancy indexing per batch; returns images delivered."""
    n = len(labels)
    steps = n // batch_size
    delivered = 0
    checksum = 0
    for e in range(epochs):
        perm = np.random.default_rng([seed, e]).permutation(n)
        for k in range(steps):
            pos = perm[k * batch_size : (k + 1) * batch_size]
            batch = {"images": images[pos], "labels": labels[pos], "index": index[pos]}
            checksum += int(batch["images"][0, 0, 0, 0])
            delivered += len(pos)
    return delivered, checksum


def pipeline_epochs(ds, backend, epochs):
    delivered = 0
    checksum = 0
    for _ in range(epochs):
        for batch in ds:
            if backend == "tf":
                batch = {k: v.numpy() for k, v in batch.items()}
            checksum += int(batch["images"][0, 0, 0, 0])
            delivered += len(batch["index"])
    return delivered, checksum


def _tiny_model():
    """One weight; reads every image and index of the batch, so the whole batch is delivered to the device."""
    import keras

    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.w = self.add_weight(shape=(), initializer="zeros")

        def call(self, batch):
            ops = keras.ops
            x = ops.mean(ops.cast(batch["images"], "float32")) + 0.0 * ops.mean(ops.cast(batch["index"], "float32"))
            return x * self.w

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return keras.ops.square(y_pred - 1.0)

    model = Tiny()
    model.compile(optimizer=keras.optimizers.SGD(1e-6))
    return model


def fit_epochs(ds, model, epochs, batch_size=None):
    """`model.fit` for `epochs` epochs on a dataset (or, with `batch_size`, on a dict of arrays)."""
    if batch_size is not None:
        model.fit(ds, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
    else:
        model.fit(ds, epochs=epochs, verbose=0, shuffle=False)


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cifar10.npz"))
    p.add_argument("--profile", default="exp")
    p.add_argument("--ratio", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--epochs", type=int, default=10, help="timed epochs per contender per round")
    p.add_argument("--repeats", type=int, default=C.DEFAULT_REPEATS, help="rounds; the median is reported")
    p.add_argument("--threads", type=int, default=None, help="threads (default: all CPUs)")
    p.add_argument("--paths", nargs="+", default=["tf", "numpy"], choices=["tf", "numpy"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--consumer", default="iterate", choices=["iterate", "fit"], help="iterate batches or model.fit")
    args = p.parse_args(argv)
    if args.repeats < 3:
        p.error("--repeats must be >= 3")
    C.pin_threads(args.threads)
    threads = C.apply_thread_settings()

    if not os.path.exists(args.data):
        sys.exit(f"CIFAR-10 .npz not found at {args.data}; pass --data")
    t0 = time.perf_counter()
    src = from_npz(args.data)
    sub = make_subset(src.labels, args.profile, ratio=args.ratio, seed=args.seed)
    t_subset = time.perf_counter() - t0
    images = src.images(sub.indices)
    labels = src.labels[sub.indices].astype(np.int32)
    index = sub.indices.astype(np.int32)
    print(
        f"CIFAR-10-LT {args.profile} r={args.ratio}: n={sub.n}, batch {args.batch_size}, "
        f"{sub.n // args.batch_size} steps/epoch; "
        f"labels + subset built in {t_subset:.2f} s; cpu count {os.cpu_count()}"
    )

    fit = args.consumer == "fit"
    base_name = "fit on arrays (Keras, shuffle=True)" if fit else "numpy baseline (perm + fancy index)"
    contenders = {base_name: None}
    models = {}
    steps = sub.n // args.batch_size
    for path in args.paths:
        ds = ssl_dataset(src, sub, batch_size=args.batch_size, seed=args.seed, backend=path)
        contenders[f"ssl_dataset backend={path!r}"] = (ds, path)
    if fit:
        import keras

        print(f"consumer: model.fit on the {keras.backend.backend()} backend")
        models = {name: _tiny_model() for name in contenders}
        arrays = {"images": images, "labels": labels, "index": index}

    def run(name, epochs):
        if contenders[name] is None:
            if fit:  # Keras keeps the last partial batch: count every image
                fit_epochs(arrays, models[name], epochs, batch_size=args.batch_size)
                return len(labels) * epochs
            return baseline_epochs(images, labels, index, args.batch_size, epochs)[0]
        ds, path = contenders[name]
        if fit:
            fit_epochs(ds, models[name], epochs)
            return steps * args.batch_size * epochs
        return pipeline_epochs(ds, path, epochs)[0]

    names = list(contenders)
    for name in names:
        run(name, 1)  # warm-up (tf.data builds its graph here)
    rates = {name: [] for name in names}
    for r in range(args.repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            delivered, seconds = timed(run, name, args.epochs)
            rates[name].append(delivered / seconds)
    print(f"{C.hardware()}; load average {C.load_average()[0]:.1f}; threads: {C.describe_threads(threads)}")
    print(f"images/s, median [IQR | range] of {args.repeats} rounds of {args.epochs} epochs:")
    for name in names:
        line = f"  {name:38s} {C.verdict(C.summarize(rates[name]), ' images/s', 0)}"
        if name != names[0]:
            line += f"   ratio to baseline {C.verdict(C.summarize(C.ratios(rates[name], rates[names[0]])), 'x', 2)}"
        print(line)


if __name__ == "__main__":
    main()
