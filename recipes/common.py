"""Command-line plumbing shared by the recipes (the convention: --preset --data --out --seeds --dry-run)."""

import time
from pathlib import Path

__all__ = ["add_args", "dataset_name", "load_eval_data", "run_gap_study", "run_protocol_grid", "split_list"]


def add_args(parser, presets, default_out, default_seeds="3"):
    """The common recipe flags plus --ood-data, --no-ood, --data-dir, --epochs and --verbose."""
    from keras_ssl_lt.experiments.cli import add_common_args

    add_common_args(parser, presets=presets, default_out=default_out, default_seeds=default_seeds)
    parser.add_argument(
        "--ood-data",
        default=None,
        help="OOD .npz (x_train/y_train/x_test/y_test; default: tensorflow-datasets cifar100)",
    )
    parser.add_argument("--no-ood", action="store_true", help="skip the OOD evaluation")
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets data_dir")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's pre-training epochs")
    parser.add_argument(
        "--verbose",
        type=int,
        default=2,
        choices=(0, 1, 2),
        help="Keras fit verbosity (1 = progress bar, 2 = one line per epoch)",
    )
    return parser


def split_list(text, name):
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ValueError(f"`--{name}` must be a comma-separated list; got {text!r}")
    return items


def dataset_name(args, default="cifar10"):
    """The `dataset` field of a recipe's runs: the tensorflow-datasets name, or `npz:<file name>` for --data."""
    return default if args.data is None else "npz:" + Path(args.data).name


def load_eval_data(args, cfg, dataset="cifar10", ood_dataset="cifar100"):
    """The `EvalData` of a recipe: --data (else tfds `dataset`), and --ood-data (else tfds `ood_dataset`)."""
    from keras_ssl_lt.experiments.evaldata import EvalData
    from keras_ssl_lt.experiments.robustness import load_image_data

    train, test = load_image_data(dataset, data=args.data, data_dir=args.data_dir)
    ood = None
    if not args.no_ood:
        ood_train, ood_test = load_image_data(ood_dataset, data=args.ood_data, data_dir=args.data_dir)
        ood = {
            "name": args.ood_data or ood_dataset,
            "train": (ood_train.images(range(len(ood_train))), ood_train.labels),
            "test": ood_test,
        }
    return EvalData(train, test, bank_per_class=cfg.get("bank_per_class"), ood=ood, name=args.data or dataset)


def run_protocol_grid(args, specs, cfg, cost=None):
    """Run `specs` with the paper's protocol (`protocol.run`), resumably; with --dry-run print the plan instead.

    Returns the records, or None for a dry run.
    """
    from keras_ssl_lt.experiments import protocol
    from keras_ssl_lt.experiments.runner import run_grid
    from keras_ssl_lt.training.runtime import configure_runtime

    if args.dry_run:
        run_grid(specs, lambda spec: None, args.out, dry_run=True, cost_fn=cost)
        return None
    runtime = configure_runtime()
    data = load_eval_data(args, cfg)
    print(f"data: {data.describe()}", flush=True)
    return run_grid(
        specs,
        lambda spec: protocol.run(spec, cfg, data, verbose=args.verbose),
        args.out,
        cost_fn=cost,
        config={"runtime": runtime},
    )


def run_gap_study(args, grid, title, stem="results"):
    """Build the grid, run it (resumable), write and print the report; returns (records, verdicts)."""
    import keras

    from keras_ssl_lt.experiments import robustness
    from keras_ssl_lt.experiments.cli import print_outputs
    from keras_ssl_lt.experiments.presets import get_preset

    t0 = time.time()
    cfg = get_preset(args.preset)
    if args.epochs is not None:
        cfg["epochs"] = int(args.epochs)
    specs = robustness.gap_grid(
        grid["methods"],
        grid["profiles"],
        grid["ratios"],
        grid["samplings"],
        args.seeds,
        preset=args.preset,
        dataset=dataset_name(args),
    )
    cost = robustness.cost_estimate(cfg)
    print(
        f"backend {keras.backend.backend()}, preset {args.preset}: {len(specs)} runs; results in {args.out}/",
        flush=True,
    )
    records = run_protocol_grid(args, specs, cfg, cost)
    if records is None:
        return [], []
    text, paths, verdicts = robustness.report(
        records, args.out, title=title, stem=stem, floor_margin=grid.get("floor_margin", 0.0)
    )
    print("\n" + text)
    print(f"total time of this invocation: {time.time() - t0:.0f} s")
    print_outputs({k: str(v) for k, v in paths.items()})
    return records, verdicts
