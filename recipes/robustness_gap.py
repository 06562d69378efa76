"""Figure 1 and the gap tables of the paper: SSL vs supervised pre-training on long-tailed and balanced data.

For every method, profile, imbalance ratio r < 1, sampling ratio (which varies n) and seed, pre-trains on the
long-tailed subset and on its balanced counterpart of the same n, then evaluates ID (kNN and linear probe on
a balanced labelled set of the train split, tested on the test split, per class group) and OOD (linear probe
on another dataset), beside the untrained encoder's floor. Writes one JSON record per run (resumable: finished
runs are skipped), then the tables (Markdown + CSV) and the relative-gap figure.

    python recipes/robustness_gap.py --preset cpu --data ../shared/data/cifar10.npz \\
        --ood-data ../shared/data/cifar100_small.npz --seeds 3
    python recipes/robustness_gap.py --preset cpu --dry-run               # the runs and their estimated cost
    KERAS_BACKEND=jax python recipes/robustness_gap.py --preset paper     # the paper's grid, on a GPU

Presets: smoke (seconds; the test suite runs it), cpu (the 2-core machine), gpu (one GPU, ResNet-18, reduced
epochs), paper (the paper's grid and settings). `--methods`, `--profiles`, `--ratios`, `--samplings` and
`--epochs` override the preset's grid. The backend comes from KERAS_BACKEND.
"""

import argparse

from keras_ssl_lt.experiments import grids, study

# Each preset's grid: keras_ssl_lt.experiments.grids.GAP.
GRIDS = grids.GAP

PROFILES = ("exp", "step", "pareto")


def parse_args(argv=None):
    from keras_ssl_lt.experiments.cli import choice_list, fraction_list
    from keras_ssl_lt.experiments.presets import get_preset

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    study.add_args(p, presets=GRIDS, default_out="results/robustness_gap", default_seeds="3")
    p.add_argument("--methods", type=choice_list(_all_methods()), help="comma list, e.g. simsiam,moco_v2,supervised")
    p.add_argument("--profiles", type=choice_list(PROFILES), help=f"comma list of {', '.join(PROFILES)}")
    p.add_argument(
        "--ratios",
        type=fraction_list(include_one=False),
        help="comma list of imbalance ratios r in (0, 1) (balanced runs are added)",
    )
    p.add_argument("--samplings", type=fraction_list(), help="comma list of sampling ratios in (0, 1] (vary n)")
    args = p.parse_args(argv)
    study.check_methods(p, args.methods or [], get_preset(args.preset))
    return args


def _all_methods():
    from keras_ssl_lt.methods.registry import method_names

    return method_names()


def main(argv=None):
    args = parse_args(argv)
    grid = dict(GRIDS[args.preset])
    for key in ("methods", "profiles", "ratios", "samplings"):
        if getattr(args, key):
            grid[key] = getattr(args, key)
    return study.run_gap_study(args, grid, title="Robustness gap: SSL vs supervised pre-training")


if __name__ == "__main__":
    from keras_ssl_lt.experiments.cli import run_cli

    run_cli(main)
