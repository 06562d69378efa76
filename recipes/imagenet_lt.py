"""The paper's ImageNet-LT setting: MoCo v2 (or SimSiam) ResNet-50 on the long-tailed split, with rwSAM as an option.

Pre-trains on the long-tailed subset of an ImageNet pool, streamed from the image files (decoded and resized on
the host per batch, so memory stays bounded), and on its balanced counterpart of the same n; evaluates the
frozen encoder by kNN and a linear probe fitted on a balanced ImageNet subset (per group: many / medium / few
classes), and by fine-tuning transfer (`keras_ssl_lt.evaluation.fine_tune`) to any labelled image folder;
every number beside the untrained encoder's (the floor). Records, a table and a figure go to --out.

Data (paths in the split files are relative to --data, the ImageNet root, as published with ImageNet-LT):

    --pool      split file of the pre-training pool (default <data>/ImageNet_LT_train.txt)
    --lt-split  the long-tailed subset as a split file within the pool, e.g. ImageNet_LT_train.txt inside a
                full-ImageNet pool list; without it a Pareto subset (alpha 6, ratio 5/1280) is drawn from the pool
    --test      split file of the ID test images (default <data>/ImageNet_LT_test.txt)
    --transfer  a labelled image folder (class sub-folders, or train/ and test/ each with class sub-folders)

    python recipes/imagenet_lt.py --preset smoke                       # generated data, seconds
    python recipes/imagenet_lt.py --preset gpu --data /data/imagenet --pool ImageNet_train.txt \\
        --lt-split ImageNet_LT_train.txt --transfer /data/cub200 --seeds 1
    python recipes/imagenet_lt.py --preset paper ... --method simsiam --rwsam

Resumable: finished runs in --out are skipped.
"""

import argparse
import os
import time
from pathlib import Path

from keras_ssl_lt.experiments import grids

METHODS = ("moco_v2", "simsiam")
RWSAM_IMAGENET = grids.RWSAM_IMAGENET
PRESETS = grids.IMAGENET_LT  # keras_ssl_lt.experiments.grids
SMOKE_DATA = grids.IMAGENET_LT_SMOKE_DATA


def get_config(preset, epochs=None):
    """The config of a preset (a fresh dict), with `epochs` overridden when given.

    >>> get_config("paper")["methods"]["moco_v2"]["queue_size"], get_config("gpu")["batch_size"]
    (65536, 256)
    """
    if preset not in PRESETS:
        raise ValueError(f"`preset` must be one of {sorted(PRESETS)}; got {preset!r}")
    cfg = PRESETS[preset]()
    if epochs is not None:
        cfg["epochs"] = int(epochs)
    return cfg


# ----------------------------------------------------------------------------------------- data


def make_smoke_data(root, seed=0):
    """Generated data in ImageNet-LT's layout under `root`: a pool and test split files and a transfer folder."""
    from keras_ssl_lt.data import write_image_folder

    root = Path(root)
    d = SMOKE_DATA
    if not (root / "ImageNet_LT_test.txt").exists():
        write_image_folder(
            root, d["classes"], d["pool_per_class"], (18, 30), split_name="train", seed=seed
        )  # -> ImageNet_LT_train.txt
        write_image_folder(
            root,
            d["classes"],
            d["test_per_class"],
            (18, 30),
            split_name="val",
            split_file="ImageNet_LT_test.txt",
            seed=seed + 1,
        )
        for split, per, s in (("train", d["transfer_per_class"], 2), ("test", d["transfer_per_class"] // 2, 3)):
            write_image_folder(
                root / "transfer",
                d["transfer_classes"],
                per,
                (18, 30),
                split_name=split,
                split_file=f"{split}.txt",
                seed=seed + s,
            )
    return root


def _resolve(data, path, default):
    p = Path(path) if path else Path(data) / default
    if not p.is_absolute() and not p.exists():
        p = Path(data) / p
    return p


def load_transfer(folder, image_size, seed=0, test_fraction=0.3):
    """`(train, test, num_classes)` arrays of a labelled image folder, decoded at `image_size` (centre crop).

    A folder with `train/` and `test/` sub-folders (each with class sub-folders) uses them; otherwise the
    class sub-folders are split, per class, `test_fraction` to test (seeded).
    """
    import numpy as np

    from keras_ssl_lt.data import FolderSource, decode_image

    folder = Path(folder)

    def arrays(src, idx):
        x = np.stack([decode_image(src.paths[i], image_size, 3, "center_crop") for i in idx])
        return x, src.labels[idx]

    if (folder / "train").is_dir() and (folder / "test").is_dir():
        tr, te = FolderSource(folder / "train"), FolderSource(folder / "test")
        if tr.class_names != te.class_names:
            raise ValueError(f"`--transfer` {folder}: train/ and test/ must have the same class folders")
        return arrays(tr, np.arange(len(tr))), arrays(te, np.arange(len(te))), tr.num_classes
    src = FolderSource(folder)
    rng = np.random.default_rng([seed, 23])
    test = []
    for c in range(src.num_classes):
        pos = rng.permutation(np.flatnonzero(src.labels == c))
        test += pos[: max(1, round(test_fraction * pos.size))].tolist()
    test = np.sort(np.asarray(test))
    train = np.setdiff1d(np.arange(len(src)), test)
    return arrays(src, train), arrays(src, test), src.num_classes


class Data:
    """Everything a run reads: the pool source and its subsets, the evaluation data, the transfer arrays."""

    def __init__(self, args, cfg):
        import numpy as np

        from keras_ssl_lt.data import SplitFileSource, make_subset, split_subset
        from keras_ssl_lt.experiments.evaldata import EvalData, balanced_positions

        data = Path(args.data)
        size = cfg["image_size"]
        resize = cfg["stream"].get("resize", "center_crop")
        pool_file = _resolve(data, args.pool, "ImageNet_LT_train.txt")
        test_file = _resolve(data, args.test, "ImageNet_LT_test.txt")
        self.pool = SplitFileSource(data, pool_file, image_size=size, resize=resize, num_classes=args.num_classes)
        C = self.pool.num_classes
        if args.lt_split:
            self.lt = split_subset(self.pool, _resolve(data, args.lt_split, args.lt_split))
            self.profile = "split"
        else:
            counts = np.bincount(self.pool.labels, minlength=C)
            top = int(counts.min())
            ratio = max(5 / 1280, 1.0 / top)
            self.lt = make_subset(self.pool.labels, "pareto", ratio=ratio, max_per_class=top, seed=cfg["subset_seed"])
            self.profile = "pareto"
        self.ratio = round(float(self.lt.manifest["ratio"]), 6)
        test_src = SplitFileSource(data, test_file, image_size=size, resize=resize, num_classes=C)
        per = cfg.get("test_per_class")
        t_idx = balanced_positions(test_src.labels, per) if per else np.arange(len(test_src))
        self.eval = EvalData(
            self.pool,
            (test_src.images(t_idx), test_src.labels[t_idx]),
            bank_per_class=cfg.get("bank_per_class"),
            name=str(pool_file.name),
        )
        self.transfer = None
        if args.transfer and not args.no_transfer:
            tsize = cfg["transfer"]["image_size"]
            train, test, k = load_transfer(args.transfer, (tsize, tsize))
            self.transfer = {"name": Path(args.transfer).name, "train": train, "test": test, "num_classes": k}

    def subset(self, spec):
        from keras_ssl_lt.data import balanced_counterpart

        return self.lt if spec.ratio < 1.0 else balanced_counterpart(self.pool.labels, self.lt)

    def describe(self):
        out = dict(self.eval.describe(), lt_profile=self.profile, lt_n=self.lt.n, lt_ratio=self.ratio)
        if self.transfer:
            out.update(
                transfer=self.transfer["name"],
                transfer_train=len(self.transfer["train"][1]),
                transfer_test=len(self.transfer["test"][1]),
            )
        return out


# ----------------------------------------------------------------------------------------- runs


def grid_specs(method, profile, ratio, seeds, preset, dataset, rwsam=False, balanced=True):
    """The runs: the long-tailed subset (plain, and with rwSAM when asked) and its balanced counterpart.

    >>> [s.run_id.split("-")[3] for s in grid_specs("moco_v2", "pareto", 0.004, [0], "smoke", "x", rwsam=True)]
    ['r1', 'r0.004', 'r0.004']
    """
    from keras_ssl_lt.experiments import RunSpec

    specs = []
    for seed in seeds:
        kw = dict(method=method, dataset=dataset, profile=profile, seed=seed, preset=preset)
        if balanced:
            specs.append(RunSpec(ratio=1.0, extra={"counterpart_of": ratio, "sharpness": "none"}, **kw))
        specs.append(RunSpec(ratio=ratio, extra={"sharpness": "none"}, **kw))
        if rwsam:
            specs.append(RunSpec(ratio=ratio, extra={"sharpness": "rwsam_rank"}, **kw))
    return specs


def transfer_metrics(model, data, cfg, seed, verbose=0):
    """Fine-tuning transfer of `model`'s encoder (a copy) to the transfer folder: `{"transfer_acc": ...}`."""
    import keras

    from keras_ssl_lt.evaluation import fine_tune

    t = data.transfer
    if t is None:
        return {}
    tc = cfg["transfer"]
    r = fine_tune(
        model,
        t["train"],
        t["test"],
        num_classes=t["num_classes"],
        epochs=int(tc["epochs"]),
        head_lr=float(tc["head_lr"]),
        backbone_lr_multiplier=0.1,
        batch_size=int(tc["batch_size"]),
        augmentation=keras.layers.RandomFlip("horizontal", seed=seed),
        seed=seed,
        verbose=verbose,
    )
    return {"transfer_acc": float(r["acc"])}


def run_one(spec, cfg, data, verbose=0, floor_cache=None):
    """One run: subset -> streamed pre-training -> kNN, linear probe and transfer, each beside its floor."""
    from keras_ssl_lt.experiments import protocol

    return protocol.run(
        spec,
        cfg,
        data.eval,
        verbose,
        source=data.pool,
        subset=data.subset(spec),
        class_groups=data.lt.groups,  # the long-tailed subset's groups, for both runs: the same classes compared
        extra_metrics=(lambda model, s: transfer_metrics(model, data, cfg, s.seed)) if data.transfer else None,
        description=data.describe(),
        floor_cache={} if floor_cache is None else floor_cache,
    )


# ----------------------------------------------------------------------------------------- report

METRICS = (
    "knn_acc",
    "knn_acc_many",
    "knn_acc_medium",
    "knn_acc_few",
    "probe_acc",
    "probe_acc_many",
    "probe_acc_medium",
    "probe_acc_few",
    "transfer_acc",
)


def report(records, out, title="MoCo v2 on ImageNet-LT"):
    """Table (markdown + CSV) over seeds and a figure; returns (text, paths)."""
    from keras_ssl_lt.experiments.aggregate import metric_cells, seed_summary, to_markdown
    from keras_ssl_lt.experiments.report import write_report

    recs = [r for r in records if r.get("status") == "done"]
    metrics = [m for m in METRICS if all(m in r["metrics"] for r in recs)]
    rows = seed_summary(recs, metrics, by=("method", "profile", "ratio", "sharpness"))
    cols = ["method", "profile", "ratio", "sharpness", "n", "n_seeds"]
    heads = ["method", "subset", "r", "regulariser", "n", "seeds"]
    cols += metric_cells(rows, metrics)
    heads += [m + " (%)" for m in metrics]
    secs = [r.get("timings", {}).get("seconds_per_epoch") for r in recs]
    secs = [s for s in secs if s]
    lines = [
        "Mean ± std over seeds, accuracies in %, the untrained encoder (floor) in brackets. kNN and linear probe "
        "fitted on a balanced subset of the pool, tested on the test split; many / medium / few are the long-tailed "
        "subset's class groups; transfer = fine-tuning the whole network on the transfer folder. r = 1 is the "
        "balanced counterpart of the same n.",
        "",
        to_markdown(rows, cols, headers=heads, percent=False),
        "",
    ]
    if secs:
        lines += [
            f"Pre-training time per epoch (measured, this run's machine): median {sorted(secs)[len(secs) // 2]:.2f} s.",
            "",
        ]
    metric = "probe_acc_few" if "probe_acc_few" in metrics else "probe_acc"

    def draw(path, caption):
        from keras_ssl_lt.experiments.figures import plot_bars

        for row in rows:
            row["label"] = f"r={row['ratio']:g} {row['sharpness']}"
        return plot_bars(rows, metric, path, label_fields=["label"], title=f"{title}: {metric}", caption=caption)

    tables = {"csv": (rows, "imagenet_lt.csv")}
    return write_report(out, "imagenet_lt", title, recs, lines, tables=tables, figure=("imagenet_lt.png", metric, draw))


# ----------------------------------------------------------------------------------------- CLI


def parse_args(argv=None):
    from keras_ssl_lt.experiments.cli import add_common_args, existing_folder, positive_int

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(
        p,
        presets=PRESETS,
        default_out="results/imagenet_lt",
        default_preset="smoke",
        default_seeds="1",
        data="folder",
    )
    p.set_defaults(data=None)
    p.add_argument("--pool", default=None, help="pool split file (default <data>/ImageNet_LT_train.txt)")
    p.add_argument("--lt-split", default=None, help="the long-tailed subset as a split file within the pool")
    p.add_argument("--test", default=None, help="test split file (default <data>/ImageNet_LT_test.txt)")
    p.add_argument(
        "--transfer", type=existing_folder, default=None, help="labelled image folder for fine-tuning transfer"
    )
    p.add_argument("--no-transfer", action="store_true", help="skip the fine-tuning transfer")
    p.add_argument(
        "--num-classes", type=positive_int, default=None, help="classes of the pool (default: max label + 1)"
    )
    p.add_argument("--method", default="moco_v2", choices=METHODS, help="SSL method (default moco_v2)")
    p.add_argument("--rwsam", action="store_true", help="add rwSAM runs (ASAM rho 2, weights 1.005^rank)")
    p.add_argument("--no-balanced", action="store_true", help="skip the balanced counterpart")
    p.add_argument("--epochs", type=positive_int, default=None, help="override the preset's pre-training epochs (>= 1)")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras fit verbosity")
    args = p.parse_args(argv)
    args.generated = args.data is None
    if args.data is None:
        if args.preset != "smoke":
            p.error(f"--data (the ImageNet root of the split files) is required for preset {args.preset!r}")
        args.data = str(Path(args.out) / "smoke_data")
        if not args.dry_run:
            make_smoke_data(args.data)
        if args.transfer is None:
            args.transfer = str(Path(args.data) / "transfer")
    return args


def _folder_fingerprint(folder):
    """A folder of images, for a run's identity: SHA-256 of its files' relative paths and sizes (not bytes)."""
    import hashlib

    folder = Path(folder)
    digest, count = hashlib.sha256(), 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\t{path.stat().st_size}\n".encode())
        count += 1
    return {"folder": folder.name, "files": count, "paths_sizes_sha256": digest.hexdigest()}


def identity(args, cfg):
    """What determines a run's result besides its spec (`run_grid(identity=...)`): the config, the split files
    (their SHA-256; the generated smoke data by its settings), the transfer folder and the package version."""
    from keras_ssl_lt import __version__
    from keras_ssl_lt.experiments.records import fingerprint

    def split(path, default):
        p = _resolve(args.data, path, default) if (path or default) else None
        return fingerprint(p) if p is not None and p.is_file() else None

    if args.generated:
        data = {"generated": dict(SMOKE_DATA, seed=0)}
    else:
        data = {
            "pool": split(args.pool, "ImageNet_LT_train.txt"),
            "test": split(args.test, "ImageNet_LT_test.txt"),
            "lt_split": split(args.lt_split, None) if args.lt_split else None,
            "num_classes": args.num_classes,
        }
    transfer = None
    if args.transfer and not args.no_transfer:
        transfer = "generated" if args.generated else _folder_fingerprint(args.transfer)
    return {
        "config": {k: v for k, v in cfg.items() if k != "cost"},
        "data": data,
        "transfer": transfer,
        "keras_ssl_lt": __version__,
    }


def main(argv=None):
    import keras

    from keras_ssl_lt.experiments.cli import print_outputs
    from keras_ssl_lt.experiments.runner import check_grid, run_grid

    args = parse_args(argv)
    t0 = time.time()
    cfg = get_config(args.preset, args.epochs)
    ident = identity(args, cfg)
    dataset = "imagenet_lt:" + Path(args.data).name
    profile = "split" if args.lt_split else "pareto"
    if args.dry_run:
        specs = grid_specs(
            args.method, profile, 0.5, args.seeds, args.preset, dataset, args.rwsam, not args.no_balanced
        )
        print(
            f"backend {keras.backend.backend()}, preset {args.preset}: {len(specs)} runs (r of the subset: set from the data)"
        )
        run_grid(specs, lambda s: None, args.out, dry_run=True, identity=ident)
        return []
    from keras_ssl_lt.training.runtime import configure_runtime

    runtime = configure_runtime()
    data = Data(args, cfg)
    specs = grid_specs(
        args.method, data.profile, data.ratio, args.seeds, args.preset, dataset, args.rwsam, not args.no_balanced
    )
    check_grid(specs, args.out, identity=ident)
    print(
        f"backend {keras.backend.backend()}, preset {args.preset}: {len(specs)} runs; data {data.describe()}; "
        f"results in {args.out}/",
        flush=True,
    )
    floor_cache = {}
    records = run_grid(
        specs,
        lambda spec: run_one(spec, cfg, data, verbose=args.verbose, floor_cache=floor_cache),
        args.out,
        config={"runtime": runtime},
        identity=ident,
    )
    title = ("MoCo v2" if args.method == "moco_v2" else "SimSiam") + " on ImageNet-LT"
    text, paths = report(records, args.out, title=title)
    print("\n" + text)
    print(f"total time of this invocation: {time.time() - t0:.0f} s")
    print_outputs({k: str(v) for k, v in paths.items()})
    return records


if __name__ == "__main__":
    from keras_ssl_lt.experiments.cli import run_cli

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run_cli(main)
