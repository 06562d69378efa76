"""Where learning speed is lost: kNN gain over the untrained floor, the package against plain PyTorch, one factor at a time.

One run = one (method, arm, seed): pre-train on a class-balanced CIFAR-10 slice and record the kNN accuracy
(k = 200, cosine, exp(sim / 0.1) votes, bank = the training slice) on a balanced test slice after epochs 0 (the
model's own untrained floor), every `--eval-every` epochs and the last. Records are JSON files in `--out`
(one per run; a finished run is not run again), and `--report` prints the table of every record there.

Arms (the `cpu` preset's network, heads and hyper-parameters: small_resnet at 16x16, batch 256, cosine lr):

- `package`: the package as the presets ran it: He-normal fan_out convolutions, Glorot heads,
  `keras.optimizers.SGD` (decoupled weight decay 5e-4), on-device views (`augment.simsiam_cifar`), float32;
- `torch_init`: + `torch.nn`'s default initialisation (`kernel_initializer="torch"`, `head_init="torch"`);
  `torch_conv_init` and `torch_head_init` swap only the backbone's convolutions or only the heads;
- `coupled_wd`: + `keras_ssl_lt.optimizers.SGD` (PyTorch's coupled weight decay 5e-4);
- `torch_views`: + views made on the host by the reference's PyTorch augmentation (`torch_reference.augment_views`)
  and fed as pre-made `views`;
- `all_torch`: all three swaps together;
- `reference`: a plain PyTorch implementation (`benchmarks/parity/reference.py`, torch's default initialisation,
  `torch.optim.SGD`, `augment_views`) with nothing from the package but its evaluation inputs.

BatchNorm momentum and epsilon are not an arm: the package's are PyTorch's (0.9 = 1 - 0.1, 1e-5), and
`benchmarks/parity/harness.py` shows identical trajectories from identical weights and views. Precision is not an
arm on the CPU (bfloat16 is emulated there); the GPU comparison is in docs/fidelity.md.

Example (about 3 minutes a run on a 2-core CPU):

    python benchmarks/parity/learning_curves.py --data ../shared/data/cifar10.npz --method simclr \
        --arm package --seed 0 --out docs/records/parity_curves
    python benchmarks/parity/learning_curves.py --out docs/records/parity_curves --report
"""

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ARMS = (
    "reference",
    "package",
    "torch_init",
    "torch_conv_init",
    "torch_head_init",
    "coupled_wd",
    "torch_views",
    "all_torch",
)
METHODS = ("simclr", "simsiam")
# The presets' values (keras_ssl_lt/experiments/presets.py), copied so the reference process needs no Keras:
# `cpu` (small_resnet at 16 px, batch 256) and `gpu` (the GPU comparison: resnet18_cifar at 32 px, batch
# 512, the paper's CIFAR heads).
SCALES = {
    "cpu": {
        "backbone": "small_resnet",
        "size": 16,
        "batch": 256,
        "hp": {
            "simclr": {"lr": 0.5, "projection_dim": 128, "projection_hidden_dim": 512, "temperature": 0.2},
            "simsiam": {"lr": 0.06, "projection_dim": 512, "projection_hidden_dim": 512, "prediction_hidden_dim": 128},
        },
    },
    "gpu": {
        "backbone": "resnet18_cifar",
        "size": 32,
        "batch": 512,
        "hp": {
            "simclr": {"lr": 0.5, "projection_dim": 128, "projection_hidden_dim": 2048, "temperature": 0.5},
            "simsiam": {
                "lr": 0.06,
                "projection_dim": 2048,
                "projection_hidden_dim": 2048,
                "prediction_hidden_dim": 512,
            },
        },
    },
}
WD, MOMENTUM = 5e-4, 0.9
# Set by `use_scale` (the cpu scale unless --scale says otherwise).
SIZE, BATCH, HP, BACKBONE = 16, 256, SCALES["cpu"]["hp"], "small_resnet"


def use_scale(name):
    global SIZE, BATCH, HP, BACKBONE
    sc = SCALES[name]
    SIZE, BATCH, HP, BACKBONE = sc["size"], sc["batch"], sc["hp"], sc["backbone"]


def slice_data(path, per_class, test_per_class, seed=0):
    """A class-balanced training slice and test slice of a CIFAR-style `.npz` (uint8 images, int labels)."""
    d = np.load(path)
    rng = np.random.default_rng(seed)

    def pick(y, k, name):
        out = []
        for c in range(10):
            idx = np.flatnonzero(y == c)
            if len(idx) < k:
                raise ValueError(f"class {c} of {name} has {len(idx)} images, fewer than {k}")
            out.append(rng.choice(idx, k, replace=False))
        return np.sort(np.concatenate(out))

    tr, te = pick(d["y_train"], per_class, "x_train"), pick(d["y_test"], test_per_class, "x_test")
    return d["x_train"][tr], d["y_train"][tr].astype("int64"), d["x_test"][te], d["y_test"][te].astype("int64")


def knn_accuracy(train_f, train_y, test_f, test_y, k=200, temperature=0.1, num_classes=10):
    """Weighted cosine kNN (numpy; the same for every arm): top-k by similarity, votes exp(sim / T)."""
    a = train_f / np.maximum(np.linalg.norm(train_f, axis=1, keepdims=True), 1e-12)
    b = test_f / np.maximum(np.linalg.norm(test_f, axis=1, keepdims=True), 1e-12)
    sim = b @ a.T
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(sim, top, 1)
    votes = np.zeros((len(b), num_classes))
    np.add.at(votes, (np.repeat(np.arange(len(b)), k), train_y[top].ravel()), np.exp(s / temperature).ravel())
    return float(np.mean(votes.argmax(1) == test_y))


def eval_inputs(cache, x_train, x_test):
    """The evaluation inputs (the package augmenter's inference preprocessing: resize to 16, normalise), cached
    as .npy so the reference process can read them without importing Keras."""
    f = cache / "eval_inputs.npz"
    if not f.exists():
        import keras_ssl_lt as ksl

        aug = ksl.augment.simsiam_cifar(crop_size=SIZE, seed=0)
        tr = np.concatenate(
            [np.asarray(aug(x_train[i : i + 1000], training=False)) for i in range(0, len(x_train), 1000)]
        )
        te = np.asarray(aug(x_test, training=False))
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(f, train=tr.astype("float32"), test=te.astype("float32"))
    d = np.load(f)
    return d["train"], d["test"]


def torch_views_epoch(images, order, generator):
    """Two views per image (in `order`) from the reference's PyTorch augmentation, as (N, 2, 16, 16, 3) float32."""
    import torch

    from benchmarks.torch_reference import augment_views

    out = np.empty((len(order), 2, SIZE, SIZE, 3), "float32")
    for s in range(0, len(order), 1024):
        batch = torch.from_numpy(images[order[s : s + 1024]])
        for v in range(2):
            out[s : s + 1024, v] = augment_views(batch, generator, size=SIZE).permute(0, 2, 3, 1).numpy()
    return out


def run_keras(method, arm, seed, data, epochs, eval_epochs, ev):
    import keras

    import keras_ssl_lt as ksl

    x_tr, y_tr, _, y_te = data
    conv_init = arm in ("torch_init", "torch_conv_init", "all_torch")
    head_init = arm in ("torch_init", "torch_head_init", "all_torch")
    keras.utils.set_random_seed(seed)
    enc = getattr(ksl.backbones, BACKBONE)((SIZE, SIZE, 3), kernel_initializer="torch" if conv_init else None)
    hp = {k: v for k, v in HP[method].items() if k != "lr"}
    aug = ksl.augment.simsiam_cifar(crop_size=SIZE, seed=seed)
    cls = ksl.SimCLR if method == "simclr" else ksl.SimSiam
    model = cls(enc, augmenter=aug, head_init="torch" if head_init else "keras", **hp)
    steps = len(x_tr) // BATCH
    lr = keras.optimizers.schedules.CosineDecay(HP[method]["lr"], decay_steps=steps * epochs)
    convention = "coupled" if arm in ("coupled_wd", "all_torch") else "keras"
    model.compile(optimizer=ksl.optimizers.get_sgd(lr, MOMENTUM, WD, convention=convention))
    views = arm in ("torch_views", "all_torch")
    if views:
        import torch

        gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)

    def knn():
        f_tr = np.asarray(model.encoder.predict(ev[0], batch_size=1024, verbose=0))
        f_te = np.asarray(model.encoder.predict(ev[1], batch_size=1024, verbose=0))
        return knn_accuracy(f_tr, y_tr, f_te, y_te)

    curve, losses = {0: knn()}, []
    for e in range(epochs):
        order = rng.permutation(len(x_tr))[: steps * BATCH]
        x = {"views": torch_views_epoch(x_tr, order, gen)} if views else {"images": x_tr[order]}
        h = model.fit(x, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        losses.append(float(h.history["loss"][-1]))
        if e + 1 in eval_epochs:
            curve[e + 1] = knn()
    return curve, losses


def run_reference(method, seed, data, epochs, eval_epochs, ev):
    import torch

    from benchmarks.parity import reference as R
    from benchmarks.torch_reference import augment_views

    x_tr, y_tr, _, y_te = data
    torch.manual_seed(seed)
    hp = HP[method]
    enc = R.resnet(BACKBONE)
    if method == "simclr":
        model = R.SimCLR(enc, hp["projection_dim"], hp["projection_hidden_dim"], hp["temperature"])
    else:
        model = R.SimSiam(enc, hp["projection_dim"], hp["projection_hidden_dim"], hp["prediction_hidden_dim"])
    steps = len(x_tr) // BATCH
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device)
    opt = R.sgd(model, R.cosine_lr(hp["lr"], steps * epochs), MOMENTUM, WD)
    gen = torch.Generator(device=device).manual_seed(seed)
    rng = np.random.default_rng(seed)
    ev_tr, ev_te = (torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).to(device) for a in ev)

    def knn():
        model.eval()
        with torch.no_grad():
            f_tr = torch.cat([model.encoder(ev_tr[i : i + 1024]) for i in range(0, len(ev_tr), 1024)]).cpu().numpy()
            f_te = torch.cat([model.encoder(ev_te[i : i + 1024]) for i in range(0, len(ev_te), 1024)]).cpu().numpy()
        return knn_accuracy(f_tr, y_tr, f_te, y_te)

    curve, losses = {0: knn()}, []
    for e in range(epochs):
        order = rng.permutation(len(x_tr))[: steps * BATCH]
        total = 0.0
        for s in range(steps):
            batch = torch.from_numpy(x_tr[order[s * BATCH : (s + 1) * BATCH]]).to(device)
            views = [augment_views(batch, gen, size=SIZE) for _ in range(2)]
            total += R.train_step(model, opt, views)
        losses.append(total / steps)
        if e + 1 in eval_epochs:
            curve[e + 1] = knn()
    return curve, losses


def report(out):
    rows = [json.loads(p.read_text()) for p in sorted(Path(out).glob("*.json"))]
    by = {}
    for r in rows:
        by.setdefault(
            (
                r["method"] + ("" if r.get("scale", "cpu") == "cpu" else f", {r['scale']}"),
                r["arm"],
                r["epochs"],
                r["n_train"],
            ),
            [],
        ).append(r)
    print("| method | arm | seeds | untrained kNN | final kNN | gain (mean +- std) | gain per seed |")
    print("|---|---|---|---|---|---|---|")
    for (method, arm, epochs, n), rs in sorted(by.items(), key=lambda kv: (kv[0][0], ARMS.index(kv[0][1]))):
        floor = [100 * r["curve"]["0"] for r in rs]
        final = [100 * r["curve"][str(epochs)] for r in rs]
        gain = [b - a for a, b in zip(floor, final, strict=True)]
        sd = np.std(gain, ddof=1) if len(gain) > 1 else float("nan")
        print(
            f"| {method} ({epochs} ep, n={n}) | {arm} | {len(rs)} | {np.mean(floor):.2f} | {np.mean(final):.2f} | "
            f"{np.mean(gain):+.2f} +- {sd:.2f} | {', '.join(f'{g:+.2f}' for g in gain)} |"
        )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", help="CIFAR-10 .npz (x_train, y_train, x_test, y_test)")
    p.add_argument("--method", choices=METHODS)
    p.add_argument("--arm", choices=ARMS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--per-class", type=int, default=512, help="training images per class (the kNN bank)")
    p.add_argument("--test-per-class", type=int, default=200)
    p.add_argument("--out", required=True)
    p.add_argument(
        "--scale", choices=tuple(SCALES), default="cpu", help="network and batch (gpu: resnet18_cifar, 32 px)"
    )
    p.add_argument("--report", action="store_true", help="print the table of the records in --out and stop")
    a = p.parse_args(argv)
    use_scale(a.scale)
    out = Path(a.out)
    if a.report:
        return report(out)
    if not (a.data and a.method and a.arm):
        p.error("--data, --method and --arm are required for a run")
    if a.epochs < 1 or a.eval_every < 1 or a.per_class * 10 < BATCH:
        p.error("--epochs and --eval-every must be >= 1 and the slice at least one batch")
    tag = "" if a.scale == "cpu" else f"_{a.scale}"
    name = out / f"{a.method}_{a.arm}_seed{a.seed}_e{a.epochs}_n{a.per_class * 10}{tag}.json"
    data = slice_data(a.data, a.per_class, a.test_per_class)
    fingerprint = hashlib.sha256(b"".join(np.ascontiguousarray(x).tobytes() for x in data)).hexdigest()
    if name.exists():
        done = json.loads(name.read_text())
        if done.get("data_sha256") != fingerprint:
            raise SystemExit(
                f"{name} was measured on other data (its data_sha256 {done.get('data_sha256')!r}, this --data "
                f"gives {fingerprint!r}): use another --out, or remove the record to measure again"
            )
        print(f"{name} exists: done")
        return None
    ev = eval_inputs(out / f"cache{tag}", data[0], data[2])
    eval_epochs = set(range(a.eval_every, a.epochs + 1, a.eval_every)) | {a.epochs}
    start = time.perf_counter()
    if a.arm == "reference":
        curve, losses = run_reference(a.method, a.seed, data, a.epochs, eval_epochs, ev)
        backend = "torch (plain)"
    else:
        curve, losses = run_keras(a.method, a.arm, a.seed, data, a.epochs, eval_epochs, ev)
        backend = os.environ.get("KERAS_BACKEND", "jax")
    record = {
        "method": a.method,
        "arm": a.arm,
        "seed": a.seed,
        "epochs": a.epochs,
        "scale": a.scale,
        "n_train": len(data[0]),
        "n_test": len(data[2]),
        "data_sha256": fingerprint,
        "backend": backend,
        "curve": {str(k): v for k, v in sorted(curve.items())},
        "loss": losses,
        "seconds": time.perf_counter() - start,
    }
    out.mkdir(parents=True, exist_ok=True)
    name.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: record[k] for k in ("method", "arm", "seed", "curve", "seconds")}))
    return record


if __name__ == "__main__":
    main()
