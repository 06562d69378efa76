"""Pack the CIFAR-10 images one gap-study configuration needs, small enough to travel to a GPU machine.

    python scripts/make_sparse_cifar10.py ../shared/data/cifar10.npz .gpu/cifar10_gap.npz --sampling 0.5

Keeps every train image of the long-tailed subset (exp, r) at `--sampling` and of its balanced counterpart
(their union), a balanced kNN/probe bank drawn from that union, and a balanced test slice; stores the full
train label array so that `make_subset` draws exactly the same subsets there as here. Keys: `x_train`,
`y_train` (the union, usable as a plain CIFAR slice), `train_index` (their positions in the 50,000),
`y_train_full`, `bank_index`, `x_test`, `y_test`. `scripts/device_gap_run.py` reads it.
"""

import argparse

import numpy as np


def main(argv=None):
    from keras_ssl_lt.data import balanced_counterpart, make_subset

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--ratio", type=float, default=0.01)
    p.add_argument("--sampling", type=float, default=0.5)
    p.add_argument("--bank-per-class", type=int, default=500)
    p.add_argument("--test-per-class", type=int, default=200)
    a = p.parse_args(argv)
    with np.load(a.src) as f:
        x, y, xt, yt = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    lt = make_subset(y, "exp", ratio=a.ratio, sampling=a.sampling, seed=0)
    bal = balanced_counterpart(y, lt, seed=0)
    union = np.union1d(lt.indices, bal.indices)
    rng = np.random.default_rng([0, 7])
    bank = np.sort(
        np.concatenate([rng.choice(union[y[union] == c], a.bank_per_class, replace=False) for c in range(10)])
    )
    test = np.sort(
        np.concatenate([rng.choice(np.flatnonzero(yt == c), a.test_per_class, replace=False) for c in range(10)])
    )
    np.savez_compressed(
        a.dst,
        x_train=x[union],
        y_train=y[union],
        train_index=union,
        y_train_full=y,
        bank_index=bank,
        x_test=xt[test],
        y_test=yt[test],
    )
    print(f"{a.dst}: {union.size} train images (LT n={lt.n}, balanced n={bal.n}), bank {bank.size}, test {test.size}")


if __name__ == "__main__":
    main()
