"""Writes a class-balanced random slice of a CIFAR-10 .npz, small enough to travel with the GPU check.

    python benchmarks/make_cifar_slice.py ../shared/data/cifar10.npz gpu_data/cifar10_slice.npz \
        --n-train 14000 --n-test 2000

Keeps `n/10` images of each class from `x_train` and from `x_test` (seeded), shuffled, uint8, compressed
(about 0.82 of the raw 3,072 bytes per image). The device tool carries at most 64 MiB of working tree, so keep
the slice under about 45 MiB.
"""

import argparse
from pathlib import Path

import numpy as np


def balanced(y, n, rng):
    classes = np.unique(y)
    if n % len(classes):
        raise ValueError(f"the slice size {n} must be a multiple of the {len(classes)} classes")
    per = n // len(classes)
    idx = []
    for c in classes:
        pool = np.flatnonzero(y == c)
        if len(pool) < per:
            raise ValueError(f"class {c} has {len(pool)} images; {per} asked")
        idx.append(rng.choice(pool, per, replace=False))
    return rng.permutation(np.concatenate(idx))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--n-train", type=int, default=14000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    with np.load(a.src) as f:
        ytr, yte = f["y_train"].reshape(-1), f["y_test"].reshape(-1)
        itr, ite = balanced(ytr, a.n_train, rng), balanced(yte, a.n_test, rng)
        out = {
            "x_train": f["x_train"][itr],
            "y_train": ytr[itr].astype("int32"),
            "x_test": f["x_test"][ite],
            "y_test": yte[ite].astype("int32"),
        }
    Path(a.dst).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(a.dst, **out)
    size = Path(a.dst).stat().st_size / 2**20
    print(f"wrote {a.dst}: {a.n_train} train + {a.n_test} test images, {size:.1f} MiB")


if __name__ == "__main__":
    main()
