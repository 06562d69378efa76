"""A recipe's study in one call: its flags, its data, its grid run resumably with the protocol, its report.

A recipe script parses its own flags (`add_args` adds the shared ones: --preset --data --out --seeds --dry-run
--ood-data --no-ood --data-dir --epochs --verbose) and hands the parsed arguments down once: `run_gap_study`
(the robustness-gap grids: build, check, load, run, report) or `run_protocol_grid` (any list of `RunSpec`s).
Everything below (presets, the grid's identity, the data, the runner, the report) happens here, in the
experiments layer; the grids themselves are in `keras_ssl_lt.experiments.grids`.

Example (the flags a recipe gets):

>>> import argparse
>>> p = add_args(argparse.ArgumentParser(), presets={"smoke": {}}, default_out="results/x")
>>> a = p.parse_args(["--preset", "smoke", "--no-ood"])
>>> a.preset, a.no_ood, a.epochs, dataset_name(a)
('smoke', True, None, 'cifar10')
"""

import time
from pathlib import Path

__all__ = [
    "add_args",
    "check_methods",
    "data_fingerprint",
    "dataset_name",
    "identity",
    "load_eval_data",
    "method_identity",
    "run_gap_study",
    "run_protocol_grid",
]


def add_args(parser, presets, default_out, default_seeds="3"):
    """The common recipe flags plus --ood-data, --no-ood, --data-dir, --epochs and --verbose."""
    from keras_ssl_lt.experiments.cli import add_common_args, existing_file, positive_int

    add_common_args(parser, presets=presets, default_out=default_out, default_seeds=default_seeds)
    parser.add_argument(
        "--ood-data",
        type=existing_file,
        default=None,
        help="OOD .npz (x_train/y_train/x_test/y_test; default: tensorflow-datasets cifar100)",
    )
    parser.add_argument("--no-ood", action="store_true", help="skip the OOD evaluation")
    parser.add_argument("--data-dir", default=None, help="tensorflow-datasets data_dir")
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="override the preset's pre-training epochs (>= 1)"
    )
    parser.add_argument(
        "--verbose",
        type=int,
        default=2,
        choices=(0, 1, 2),
        help="Keras fit verbosity (1 = progress bar, 2 = one line per epoch)",
    )
    return parser


def dataset_name(args, default="cifar10"):
    """The `dataset` field of a recipe's runs: the tensorflow-datasets name, or `npz:<file name>` for --data."""
    return default if args.data is None else "npz:" + Path(args.data).name


def check_methods(parser, methods, cfg):
    """Refuse (argparse-style, exit 2) methods the preset's config has no hyper-parameters for."""
    known = list(cfg.get("methods", {}))
    bad = [m for m in methods if m not in known]
    if bad:
        parser.error(f"argument --methods: unknown {', '.join(map(repr, bad))}; allowed: {', '.join(known)}")


def data_fingerprint(path, tfds_name):
    """What a recipe's data is: `records.fingerprint` of the .npz, or the tensorflow-datasets name."""
    from keras_ssl_lt.experiments.records import fingerprint

    return {"tfds": tfds_name} if path is None else fingerprint(path)


def identity(args, cfg, dataset="cifar10", ood_dataset="cifar100"):
    """What determines a run's result besides its spec (`run_grid(identity=...)`): the config after the
    overrides (its cost estimates aside), the data and OOD data (their SHA-256 for a .npz) and the version."""
    from keras_ssl_lt import __version__

    no_ood = getattr(args, "no_ood", False)
    return {
        "config": {k: v for k, v in cfg.items() if k != "cost"},
        "data": data_fingerprint(args.data, dataset),
        "ood_data": None if no_ood else data_fingerprint(getattr(args, "ood_data", None), ood_dataset),
        "keras_ssl_lt": __version__,
    }


def load_eval_data(args, cfg, dataset="cifar10", ood_dataset="cifar100"):
    """The `EvalData` of a recipe: --data (else tfds `dataset`), and --ood-data (else tfds `ood_dataset`).

    A tensorflow-datasets dataset missing from the cache raises `SetupError` naming it, the flag that
    replaces it and the download that fixes it.
    """
    from keras_ssl_lt.experiments.evaldata import EvalData
    from keras_ssl_lt.experiments.robustness import load_image_data

    train, test = load_image_data(
        dataset, data=args.data, data_dir=args.data_dir, instead="--data FILE.npz (x_train/y_train/x_test/y_test)"
    )
    ood = None
    if not args.no_ood:
        ood_train, ood_test = load_image_data(
            ood_dataset,
            data=args.ood_data,
            data_dir=args.data_dir,
            instead="--ood-data FILE.npz (x_train/y_train/x_test/y_test) or --no-ood",
        )
        ood = {
            "name": args.ood_data or ood_dataset,
            "train": (ood_train.images(range(len(ood_train))), ood_train.labels),
            "test": ood_test,
        }
    return EvalData(train, test, bank_per_class=cfg.get("bank_per_class"), ood=ood, name=args.data or dataset)


def method_identity(ident):
    """A per-run identity from a grid's `identity`: the config's `methods` narrowed to the run's own method.

    For grids of many methods whose hyper-parameters change independently: a change to one method's settings
    then leaves the other methods' records valid (`run_grid(identity=...)` takes the function).

    >>> f = method_identity({"config": {"epochs": 8, "methods": {"simclr": {"lr": 0.5}, "bcl": {"beta": 0.97}}}})
    >>> from keras_ssl_lt.experiments import RunSpec
    >>> f(RunSpec("bcl"))["config"]
    {'epochs': 8, 'methods': {'bcl': {'beta': 0.97}}}
    """
    import copy

    def of(spec):
        out = copy.deepcopy(ident)
        methods = out["config"].get("methods", {})
        out["config"]["methods"] = {spec.method: methods[spec.method]} if spec.method in methods else {}
        return out

    return of


def run_protocol_grid(args, specs, cfg, cost=None, dataset="cifar10", hooks=None, per_method_identity=False):
    """Run `specs` with the paper's protocol (`protocol.run`), resumably; with --dry-run print the plan instead.

    `dataset` is the tensorflow-datasets name used without --data; `hooks` an optional function
    `data -> dict` of `protocol.run`'s keyword hooks (`subset`, `evaluate`, ...), called once the data are
    loaded; `per_method_identity` keeps only the run's own method's hyper-parameters in each record's identity
    (`method_identity`). Returns the records, or None for a dry run.
    """
    from keras_ssl_lt.experiments import protocol
    from keras_ssl_lt.experiments.runner import check_grid, run_grid
    from keras_ssl_lt.training.runtime import configure_runtime

    ident = identity(args, cfg, dataset=dataset)
    if per_method_identity:
        ident = method_identity(ident)
    if args.dry_run:
        run_grid(specs, lambda spec: None, args.out, dry_run=True, cost_fn=cost, identity=ident)
        return None
    # Before the data are loaded: records of other settings, a locked folder or a file as --out stop here.
    check_grid(specs, args.out, identity=ident)
    runtime = configure_runtime()
    data = load_eval_data(args, cfg, dataset=dataset)
    print(f"data: {data.describe()}", flush=True)
    run_hooks = {} if hooks is None else dict(hooks(data))
    return run_grid(
        specs,
        lambda spec: protocol.run(spec, cfg, data, verbose=args.verbose, **run_hooks),
        args.out,
        cost_fn=cost,
        config={"runtime": runtime},
        identity=ident,
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
