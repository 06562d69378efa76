"""Command-line plumbing shared by the recipes (the convention: --preset --data --out --seeds --dry-run)."""

import time

__all__ = ["add_args", "split_list", "load_eval_data", "run_gap_study"]


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


def load_eval_data(args, cfg, dataset="cifar10", ood_dataset="cifar100"):
    """The `EvalData` of a recipe: --data (else tfds `dataset`), and --ood-data (else tfds `ood_dataset`)."""
    from keras_ssl_lt.experiments.protocol import EvalData
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


def run_gap_study(args, grid, title, stem="results"):
    """Build the grid, run it (resumable), write and print the report; returns (records, verdicts)."""
    import keras

    from keras_ssl_lt.experiments import protocol, robustness
    from keras_ssl_lt.experiments.cli import print_outputs
    from keras_ssl_lt.experiments.presets import get_preset
    from keras_ssl_lt.experiments.runner import run_grid
    from keras_ssl_lt.training.runtime import configure_runtime

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
        dataset="cifar10" if args.data is None else "npz:" + args.data.rsplit("/", 1)[-1],
    )
    cost = robustness.cost_estimate(cfg)
    print(
        f"backend {keras.backend.backend()}, preset {args.preset}: {len(specs)} runs; results in {args.out}/",
        flush=True,
    )
    if args.dry_run:
        run_grid(specs, lambda spec: None, args.out, dry_run=True, cost_fn=cost)
        return [], []
    runtime = configure_runtime()
    data = load_eval_data(args, cfg)
    print(f"data: {data.describe()}", flush=True)
    records = run_grid(
        specs,
        lambda spec: protocol.run(spec, cfg, data, verbose=args.verbose),
        args.out,
        cost_fn=cost,
        config={"runtime": runtime},
    )
    text, paths, verdicts = robustness.report(
        records, args.out, title=title, stem=stem, floor_margin=grid.get("floor_margin", 0.0)
    )
    print("\n" + text)
    print(f"total time of this invocation: {time.time() - t0:.0f} s")
    print_outputs({k: str(v) for k, v in paths.items()})
    return records, verdicts
