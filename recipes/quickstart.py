"""The main job: the paper's finding in miniature, on CIFAR-10-LT, in about 15 minutes on a 2-core CPU.

Pre-trains an SSL method (SimCLR) and the supervised baseline, each on CIFAR-10-LT (exponential, r = 0.01,
n = 12,406) and on its balanced counterpart of the same n; evaluates every encoder ID (kNN and linear probe
fitted on a balanced 10,000-image sample of CIFAR-10 train, tested on the CIFAR-10 test set) and OOD (linear
probe on CIFAR-100), beside the untrained encoder's floor; prints the gaps A(n,1) - A(n,r), the relative
gaps, a verdict and where the table and figure went.

    python recipes/quickstart.py --data ../shared/data/cifar10.npz --ood-data ../shared/data/cifar100_small.npz
    python recipes/quickstart.py --preset smoke --data tiny.npz --no-ood      # seconds, for tests
    python recipes/quickstart.py --preset gpu                                 # ResNet-18 on a GPU

Without --data / --ood-data, CIFAR-10 and CIFAR-100 come from the tensorflow-datasets cache (prepared once with
network access; a missing one is named with the flag that replaces it). Results resume: a finished run in --out is not run again. The backend comes from KERAS_BACKEND.
The preset's measured time and result are in docs/results.md; how it was chosen in docs/reproducing.md.
"""

import argparse

from keras_ssl_lt.experiments import grids, study

GRIDS = grids.QUICKSTART  # keras_ssl_lt.experiments.grids


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    study.add_args(p, presets=GRIDS, default_out="results/main", default_seeds="1")
    args = p.parse_args(argv)
    return study.run_gap_study(args, GRIDS[args.preset], title="Main job: SSL vs supervised on CIFAR-10-LT")


if __name__ == "__main__":
    from keras_ssl_lt.experiments.cli import run_cli

    run_cli(main)
