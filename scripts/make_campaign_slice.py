"""Build the GPU campaign's data slice (issue 21): the images the claim-3 grid needs, small enough to travel.

    python scripts/make_campaign_slice.py ../shared/data/cifar10.npz .gpu/campaign_slice.npz

Keeps every training image of CIFAR-10-LT (exp, r = 0.01, n = 12,406) and of its balanced counterpart (their
union: 18,476 images), a balanced kNN / probe bank of 1,000 per class from them, and 300 test images per class,
delta-encoded and compressed (about 45 MB: under the 64 MiB carry limit with Keras' wheels). Prints the slice's
manifest hash, which every campaign record carries. `--profiles exp,step` adds the step profile's subsets
(a larger slice: check its size against the limit). See `keras_ssl_lt.experiments.campaign` and docs/results.md.
"""

import argparse
import os
import sys


def main(argv=None):
    import numpy as np

    from keras_ssl_lt.experiments.campaign import build_slice

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="CIFAR-10 .npz with x_train, y_train, x_test, y_test")
    p.add_argument("dst")
    p.add_argument("--ratio", type=float, default=0.01)
    p.add_argument("--profiles", default="exp")
    p.add_argument("--bank-per-class", type=int, default=1000)
    p.add_argument("--test-per-class", type=int, default=300)
    a = p.parse_args(argv)
    if not os.path.isfile(a.src):
        sys.exit(f"--src: no file at {a.src!r}")
    with np.load(a.src) as f:
        x, y, xt, yt = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    os.makedirs(os.path.dirname(os.path.abspath(a.dst)), exist_ok=True)
    m = build_slice(
        x,
        y,
        xt,
        yt,
        a.dst,
        ratio=a.ratio,
        profiles=tuple(a.profiles.split(",")),
        bank_per_class=a.bank_per_class,
        test_per_class=a.test_per_class,
    )
    size = os.path.getsize(a.dst)
    print(
        f"{a.dst}: {len(m['train_index'])} training images, {len(m['test_index'])} test images, "
        f"{size / 2**20:.1f} MiB, slice sha256 {m['sha256']}"
    )


if __name__ == "__main__":
    main()
