"""The paper's semi-synthetic experiment: SSL learns rare-class features from frequent data, supervised does not.

CIFAR-10 made semi-synthetic (`keras_ssl_lt.data.semi_synthetic`): classes 0-4 frequent, each example the left
half of an image of its class next to the right half of a random image; classes 5-9 rare, each example a blank
left half next to the right half of an image of its class (the paper: 5 x 5000 and 5 x 10, r = 0.002).
Methods pre-trained on it (horizontal flip off for all: a flip would move the label half):

- `simclr` (the paper's choice), `simsiam`: self-supervised;
- `supervised`: 10-way cross-entropy on the semi-synthetic labels;
- `supervised_rare`: supervised on the rare examples alone (as many steps as the others);
- `untrained`: the encoder at initialisation (the floor).

Each encoder is evaluated by a 5-way linear probe on the rare classes: trained on rare-class examples built
the same way from held-out training images, tested on the CIFAR-10 test images of the rare classes (blank
left half). Every record also carries `floor_rare_probe_acc`, the untrained encoder of the same seed. The
paper reports SimCLR 70.1% against supervised 44.3% (and 36.5% for supervised on the rare images alone).

    python recipes/semi_synthetic.py --data ../shared/data/cifar10.npz                  # cpu preset
    python recipes/semi_synthetic.py --data ../shared/data/cifar10.npz --preset smoke  # seconds
    python recipes/semi_synthetic.py --preset paper                                     # GPU, ResNet-18

Writes `<out>/records/*.json` (resumable), `<out>/table.md`, `table.csv`, `semi_synthetic.png` and the
construction's manifest `<out>/manifest_pretrain.json`.
"""

import argparse
import copy
import time
from pathlib import Path

import numpy as np

from keras_ssl_lt.experiments import grids

METHODS = ("simclr", "simsiam", "supervised", "supervised_rare", "untrained")
PAPER = {"simclr": 0.701, "supervised": 0.443, "supervised_rare": 0.365}

PRESETS = grids.SEMI_SYNTHETIC  # keras_ssl_lt.experiments.grids


def parse_args(argv=None):
    from keras_ssl_lt.experiments.cli import add_common_args, choice_list, positive_int

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, presets=PRESETS, default_out="results/semi_synthetic", default_seeds="3")
    p.add_argument(
        "--methods", type=choice_list(METHODS), default=list(METHODS), help=f"comma list from {', '.join(METHODS)}"
    )
    p.add_argument(
        "--per-frequent", type=positive_int, default=None, help="override the preset's examples per frequent class"
    )
    p.add_argument("--per-rare", type=positive_int, default=None, help="override the preset's examples per rare class")
    p.add_argument("--epochs", type=positive_int, default=None, help="override the preset's pre-training epochs (>= 1)")
    p.add_argument("--blank-value", type=int, default=0, help="pixel value of the blank left halves (0..255)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the construction (fixed across methods)")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data_dir")
    p.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2), help="Keras fit verbosity")
    return p.parse_args(argv)


def settings(args):
    """The construction and training settings of this invocation (preset plus overrides)."""
    s = dict(PRESETS[args.preset])
    for key in ("per_frequent", "per_rare", "epochs"):
        if getattr(args, key) is not None:
            s[key] = int(getattr(args, key))
    s["blank_value"] = int(args.blank_value)
    s["data_seed"] = int(args.data_seed)
    return s


def identity(args, s):
    """What determines a run's result besides its spec (`run_grid(identity=...)`): the settings, the protocol
    preset's config, the data (the SHA-256 of --data, else the tensorflow-datasets name) and the version."""
    from keras_ssl_lt import __version__
    from keras_ssl_lt.experiments.presets import get_preset
    from keras_ssl_lt.experiments.records import fingerprint

    cfg = get_preset(s["protocol"])
    return {
        "settings": dict(s),
        "config": {k: v for k, v in cfg.items() if k != "cost"},
        "data": {"tfds": "cifar10"} if args.data is None else fingerprint(args.data),
        "keras_ssl_lt": __version__,
    }


def make_specs(args, s):
    from keras_ssl_lt.experiments import RunSpec

    methods = args.methods
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"`--methods` must be a comma list from {METHODS}; got {args.methods!r}")
    extra = {
        k: s[k]
        for k in ("per_frequent", "per_rare", "blank_value", "data_seed", "epochs", "probe_per_class", "test_per_class")
    }
    return [
        RunSpec(
            m,
            dataset="cifar10_semi_synthetic",
            profile="semi_synthetic",
            ratio=s["per_rare"] / s["per_frequent"],
            seed=seed,
            preset=args.preset,
            extra=extra,
        )
        for seed in args.seeds
        for m in methods
    ]  # seed-major: a run cut short still has whole seeds


class Experiment:
    """The built data (once per invocation) and the run function for `run_grid`."""

    def __init__(self, args, s):
        import keras_ssl_lt as ksl
        from keras_ssl_lt.experiments.presets import get_preset
        from keras_ssl_lt.experiments.robustness import load_image_data

        self.args, self.s = args, s
        cfg = get_preset(s["protocol"])
        cfg["epochs"] = int(s["epochs"])
        # Horizontal flip off for every method: a flip would swap the label half and the random half.
        cfg["augment"] = {m: {"flip": False} for m in ("simclr", "simsiam", "supervised")}
        self.cfg = cfg
        train, (test_x, test_y) = load_image_data(
            "cifar10", data=args.data, data_dir=args.data_dir, instead="--data FILE.npz (x_train/y_train/x_test/y_test)"
        )
        test = ksl.data.from_arrays(test_x, test_y)
        self.pretrain = ksl.data.semi_synthetic(
            train,
            per_frequent=s["per_frequent"],
            per_rare=s["per_rare"],
            seed=s["data_seed"],
            blank_value=s["blank_value"],
        )
        probe, rare_test = ksl.data.semi_synthetic_eval(
            self.pretrain,
            train,
            test,
            probe_per_class=s["probe_per_class"],
            test_per_class=s["test_per_class"],
            seed=s["data_seed"],
        )
        self.probe = (probe.images(np.arange(len(probe))), probe.labels)
        self.test = (rare_test.images(np.arange(len(rare_test))), rare_test.labels)
        self.num_rare = len(self.pretrain.rare_classes)
        self._floors = {}

    def describe(self):
        counts = np.bincount(self.pretrain.labels).tolist()
        return (
            f"semi-synthetic pre-training set: {len(self.pretrain)} examples, per class {counts}; rare-class "
            f"probe {len(self.probe[1])}, test {len(self.test[1])}"
        )

    def subset(self, rare_only=False):
        from keras_ssl_lt.data import Subset

        labels = self.pretrain.labels
        idx = np.flatnonzero(self.pretrain.left < 0) if rare_only else np.arange(len(labels))
        counts = np.bincount(labels[idx], minlength=self.pretrain.num_classes)
        n_frequent = len(self.pretrain.frequent_classes)
        groups = {
            "many": np.arange(n_frequent),
            "medium": np.zeros(0, np.int64),
            "few": n_frequent + np.arange(self.num_rare),
        }
        return Subset(
            idx,
            counts,
            groups,
            {
                "kind": "semi_synthetic",
                "num_examples": len(labels),
                "semi_synthetic_sha256": self.pretrain.manifest["source_labels_sha256"],
            },
        )

    def evaluate(self, model):
        from keras_ssl_lt import evaluation

        ev = self.cfg.get("eval", {})
        fb = int(ev.get("feature_batch_size", 512))
        train_f = np.asarray(evaluation.extract_features(model, self.probe[0], batch_size=fb))
        test_f = np.asarray(evaluation.extract_features(model, self.test[0], batch_size=fb))
        res = evaluation.probe_features(
            train_f,
            self.probe[1],
            test_f,
            self.test[1],
            num_classes=self.num_rare,
            protocol=ev.get("probe", "convex"),
            l2=float(ev.get("probe_l2", 1e-4)),
        )
        return float(res["acc"])

    def floor(self, seed):
        from keras_ssl_lt.experiments.build import build_pretrainer

        if seed not in self._floors:
            model = build_pretrainer("simclr", self.cfg, self.pretrain.num_classes, seed=seed)
            self._floors[seed] = self.evaluate(model)
        return self._floors[seed]

    def run(self, spec):
        import dataclasses

        from keras_ssl_lt.experiments import protocol

        if spec.method == "untrained":
            floor = self.floor(spec.seed)
            return {
                "metrics": {"rare_probe_acc": floor, "floor_rare_probe_acc": floor},
                "n": 0,
                "config": self.cfg,
                "manifest_sha256": _manifest_hash(self.pretrain.manifest),
                "timings": {},
            }
        cfg = copy.deepcopy(self.cfg)
        subset = self.subset(rare_only=spec.method == "supervised_rare")
        if spec.method == "supervised_rare":
            # As many optimiser steps as the runs on the whole set, on the rare examples alone.
            steps = (len(self.pretrain) // cfg["batch_size"]) * cfg["epochs"]
            cfg["batch_size"] = min(cfg["batch_size"], subset.n)
            cfg["methods"]["supervised"]["epochs"] = max(1, steps // (subset.n // cfg["batch_size"]))
            spec = dataclasses.replace(spec, method="supervised")
        record = protocol.run(
            spec,
            cfg,
            None,
            self.args.verbose,
            source=self.pretrain,
            subset=subset,
            evaluate=lambda model, groups: {"rare_probe_acc": self.evaluate(model)},
            num_classes=self.pretrain.num_classes,
            description=self.describe(),
            floor_cache=self._floors,
        )
        record["history"] = {k: v[-1:] for k, v in record["history"].items()}
        record["semi_synthetic_sha256"] = _manifest_hash(self.pretrain.manifest)
        return record


def _manifest_hash(manifest):
    import hashlib
    import json

    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def report(records, out, s):
    from keras_ssl_lt.experiments import (
        plot_bars,
        provenance,
        seed_summary,
        to_csv,
        to_markdown,
    )

    rows = seed_summary(records, ["rare_probe_acc"], by=("method",))
    order = {m: i for i, m in enumerate(METHODS)}
    rows.sort(key=lambda r: order.get(r["method"], 99))
    for r in rows:
        r["paper"] = f"{100 * PAPER[r['method']]:.1f}" if r["method"] in PAPER else ""
    cols = [
        "method",
        "n_seeds",
        "rare_probe_acc",
        "floor_rare_probe_acc",
        "rare_probe_acc_minus_floor",
        "rare_probe_acc_clears_floor",
        "paper",
    ]
    headers = [
        "method",
        "seeds",
        "rare-class 5-way probe (%)",
        "untrained floor (%)",
        "minus floor (points)",
        "clears floor",
        "paper (%)",
    ]
    text = to_markdown(rows, cols, headers=headers)
    prov = provenance(records)
    construction = (
        f"{s['per_frequent']} per frequent class, {s['per_rare']} per rare class "
        f"(r = {s['per_rare'] / s['per_frequent']:g}), {s['epochs']} epochs, preset {s['protocol']}"
    )
    (out / "table.md").write_text(f"{text}\n\n{construction}\n\n{prov['caption']}\n")
    to_csv(rows, out / "table.csv")
    outputs = {"table": out / "table.md", "csv": out / "table.csv"}
    try:
        outputs["figure"] = plot_bars(
            rows,
            "rare_probe_acc",
            out / "semi_synthetic.png",
            label_fields=["method"],
            title="Semi-synthetic CIFAR-10: rare-class linear probe",
            floor=True,
            caption=f"{construction} | {prov['caption']}",
        )
    except ImportError as e:
        print(f"no figure: {e}")
    return text + "\n\n" + construction + "\n" + prov["caption"], outputs


def main(argv=None):
    args = parse_args(argv)
    s = settings(args)
    import keras

    from keras_ssl_lt.experiments import run_grid
    from keras_ssl_lt.experiments.cli import print_outputs
    from keras_ssl_lt.experiments.runner import check_grid
    from keras_ssl_lt.training.runtime import configure_runtime

    t0 = time.time()
    out = Path(args.out)
    specs = make_specs(args, s)
    ident = identity(args, s)
    print(f"backend {keras.backend.backend()}, preset {args.preset}: {len(specs)} runs; results in {out}/", flush=True)
    if args.dry_run:
        return run_grid(specs, lambda spec: None, out / "records", dry_run=True, identity=ident)
    check_grid(specs, out / "records", identity=ident)  # before the data are built
    configure_runtime()  # JAX compile cache; PyTorch CPU without oneDNN (docs/performance.md)
    exp = Experiment(args, s)
    print(exp.describe(), flush=True)
    exp.pretrain.save(out / "manifest_pretrain.json")
    records = run_grid(specs, exp.run, out / "records", identity=ident)
    text, outputs = report(records, out, s)
    print("\n" + text)
    print(f"total time {time.time() - t0:.0f} s")
    print_outputs({k: str(v) for k, v in outputs.items()})
    return records


if __name__ == "__main__":
    from keras_ssl_lt.experiments.cli import run_cli

    run_cli(main)
