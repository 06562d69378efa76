"""Quickstart: SimSiam on CIFAR-10-LT vs its balanced counterpart of the same size, evaluated by kNN.

Builds CIFAR-10-LT (exponential profile, imbalance ratio 0.01: 12,406 images) and a balanced subset of
the same n, pre-trains SimSiam on each, and evaluates both encoders with a cosine kNN classifier
(k=200, temperature 0.1) fitted on a balanced labelled set and tested on the balanced CIFAR-10 test
set. Prints both accuracies, the gap A(n,1) - A(n,r) and the relative gap, and writes JSON, a markdown
table and the two subset manifests to `--out`.

    python recipes/quickstart.py --data ../shared/data/cifar10.npz        # CPU preset, minutes
    python recipes/quickstart.py --preset paper                            # ResNet-18, paper settings, GPU

Without `--data`, CIFAR-10 comes from tensorflow-datasets (`--data-dir` for its cache; needs the
network the first time). With `--data`, a `.npz` with x_train/y_train/x_test/y_test arrays.
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

PRESETS = {
    # Sized to finish within 15 minutes on a 2-core CPU (see docs/reproducing.md for the measurement).
    "cpu": dict(backbone="small_resnet", width=1.0, batch_size=256, epochs=3, lr=0.06, weight_decay=5e-4,
                projection_dim=512, projection_hidden_dim=512, prediction_hidden_dim=128, knn_bank_per_class=1000),
    # The paper's SimSiam CIFAR settings (PAPER.md): ResNet-18, batch 512, lr 0.06, wd 5e-4, 800 epochs.
    "paper": dict(backbone="resnet18_cifar", width=1.0, batch_size=512, epochs=800, lr=0.06, weight_decay=5e-4,
                  projection_dim=2048, projection_hidden_dim=2048, prediction_hidden_dim=512, knn_bank_per_class=None),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help=".npz with x_train/y_train/x_test/y_test (default: tfds cifar10)")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data_dir")
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    p.add_argument("--batch-size", type=int, default=None, help="override the preset's batch size")
    p.add_argument("--ratio", type=float, default=0.01, help="imbalance ratio r = min/max class size")
    p.add_argument("--profile", choices=["exp", "step", "pareto"], default="exp")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/quickstart", help="folder for results.json, results.md, manifests")
    p.add_argument("--verbose", type=int, default=1, help="Keras fit verbosity (1 = progress bar)")
    return p.parse_args(argv)


def load_cifar10(args):
    import keras_ssl_lt as ksl

    if args.data:
        train = ksl.data.from_npz(args.data, split="train")
        test = ksl.data.from_npz(args.data, split="test")
    else:
        train = ksl.data.from_tfds("cifar10", split="train", data_dir=args.data_dir)
        test = ksl.data.from_tfds("cifar10", split="test", data_dir=args.data_dir)
    return train, test


def balanced_bank(labels, per_class, seed):
    """Positions of a balanced labelled set for the kNN bank (all examples when per_class is None)."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng([seed, 7])
    per_class = min(per_class, int(np.bincount(labels).min()))
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
                                   for c in np.unique(labels)]))


def pretrain(name, source, subset, cfg, args):
    import keras
    import keras_ssl_lt as ksl

    keras.utils.set_random_seed(args.seed)
    encoder = getattr(ksl.backbones, cfg["backbone"])(width=cfg["width"])
    model = ksl.SimSiam(
        encoder,
        augmenter=ksl.augment.simsiam_cifar(),
        projection_dim=cfg["projection_dim"],
        projection_hidden_dim=cfg["projection_hidden_dim"],
        prediction_hidden_dim=cfg["prediction_hidden_dim"],
        name=f"simsiam_{name}",
    )
    ds = ksl.data.ssl_dataset(source, subset, batch_size=cfg["batch_size"], seed=args.seed)
    steps = len(subset.indices) // cfg["batch_size"]
    lr = keras.optimizers.schedules.CosineDecay(cfg["lr"] * cfg["batch_size"] / 512, decay_steps=steps * cfg["epochs"])
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9, weight_decay=cfg["weight_decay"]))
    print(f"\n== pre-training SimSiam on the {name} subset: n={subset.n}, {steps} steps x {cfg['epochs']} epochs")
    start = time.time()
    history = model.fit(ds, epochs=cfg["epochs"], verbose=args.verbose)
    return model, history.history, time.time() - start


def main(argv=None):
    args = parse_args(argv)
    cfg = dict(PRESETS[args.preset])
    if args.epochs is not None:
        cfg["epochs"] = args.epochs
    if args.batch_size is not None:
        cfg["batch_size"] = args.batch_size
    import keras
    import keras_ssl_lt as ksl

    if keras.backend.backend() == "torch":
        import torch

        if not torch.cuda.is_available():
            # PyTorch's oneDNN convolution backward can hang when a second OpenMP runtime (loaded by
            # scikit-learn, which Keras imports) sits in the process: see docs/performance.md.
            torch.backends.mkldnn.enabled = False
    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = load_cifar10(args)
    labels = train.labels
    lt = ksl.data.make_subset(labels, profile=args.profile, ratio=args.ratio, seed=args.seed)
    bal = ksl.data.balanced_counterpart(labels, lt, seed=args.seed)
    print(f"backend {keras.backend.backend()}, preset {args.preset}: {cfg}")
    print(f"CIFAR-10-LT ({args.profile}, r={args.ratio}): counts {lt.counts.tolist()} (n={lt.n})")
    print(f"balanced counterpart: counts {bal.counts.tolist()} (n={bal.n})")
    lt.save(out / "manifest_lt.json")
    bal.save(out / "manifest_balanced.json")

    bank = balanced_bank(labels, cfg["knn_bank_per_class"], args.seed)
    bank_x, bank_y = train.images(bank), labels[bank]
    test_x, test_y = test.images(np.arange(len(test))), test.labels
    results = {"backend": keras.backend.backend(), "preset": args.preset, "config": cfg, "seed": args.seed,
               "profile": args.profile, "ratio": args.ratio, "n": int(lt.n),
               "labels_sha256": lt.manifest["labels_sha256"], "knn_bank_size": int(len(bank)), "runs": {}}
    for name, subset in (("balanced", bal), ("long_tailed", lt)):
        model, history, seconds = pretrain(name, train, subset, cfg, args)
        knn = ksl.evaluate.knn(model, (bank_x, bank_y), (test_x, test_y), k=200, temperature=0.1,
                               class_groups=lt.groups)
        results["runs"][name] = {"knn_acc": knn["acc"], "knn": knn, "final_loss": history["loss"][-1],
                                 "final_z_std": history["z_std"][-1], "train_seconds": seconds}
        print(f"   kNN top-1 on the CIFAR-10 test set: {100 * knn['acc']:.2f}%")
    a1, ar = results["runs"]["balanced"]["knn_acc"], results["runs"]["long_tailed"]["knn_acc"]
    results["gap"] = ksl.metrics.gap(a1, ar)
    results["relative_gap"] = ksl.metrics.relative_gap(a1, ar)
    results["total_seconds"] = time.time() - t0
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    table = (
        "| pre-training subset | n | kNN top-1 (%) |\n|---|---|---|\n"
        f"| balanced | {bal.n} | {100 * a1:.2f} |\n| long-tailed ({args.profile}, r={args.ratio}) | {lt.n} | {100 * ar:.2f} |\n\n"
        f"gap A(n,1) - A(n,r) = {100 * results['gap']:.2f} points; relative gap = {100 * results['relative_gap']:.2f}%\n"
    )
    (out / "results.md").write_text(table)
    print("\n" + table)
    print(f"total time {results['total_seconds']:.0f} s; results in {out}/")
    return results


if __name__ == "__main__":
    main()
