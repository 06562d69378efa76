"""The paper's protocol as functions: pre-train one method on one subset, evaluate it beside its floor.

A *run* is `(method, dataset, profile, ratio, sampling, seed, preset)` (a `RunSpec`): it draws the
subset (the long-tailed one for `ratio < 1`, the balanced counterpart of the same n for `ratio == 1`),
pre-trains the method on it with plain `model.fit`, and evaluates the frozen encoder:

- **ID**: kNN (cosine, k=200, temperature 0.1) and a linear probe, both fitted on a *balanced* labelled
  set of the pre-training dataset's train split and tested on its test split, with per-group accuracy
  (many / medium / few classes of the long-tailed subset);
- **OOD**: a linear probe (and optionally a few-shot probe) on another dataset (CIFAR-100 for CIFAR-10);
- **the floor**: the same architecture's untrained encoder, built from the same seed, evaluated the
  same way (`floor_<metric>` beside every `<metric>`).

Everything a recipe varies lives in a plain `dict` config (see `recipes/robustness_gap.py` for presets),
so a record's config says exactly what was run.

Example (a seconds-long smoke run on random images):

>>> import numpy as np, keras_ssl_lt as ksl
>>> from keras_ssl_lt.experiments import protocol, RunSpec
>>> rng = np.random.default_rng(0)
>>> x = rng.integers(0, 256, (400, 32, 32, 3), dtype="uint8"); y = np.repeat(np.arange(4), 100)
>>> data = protocol.EvalData.from_arrays((x, y), (x[:40], y[:40]), bank_per_class=20)
>>> cfg = protocol.smoke_config()
>>> out = protocol.run(RunSpec("simclr", dataset="random", ratio=0.1, seed=0, preset="smoke"), cfg, data)
>>> sorted(k for k in out["metrics"] if k.startswith("floor_"))[:2]
['floor_knn_acc', 'floor_knn_acc_few']
"""

import copy
import math
import time

import numpy as np

__all__ = [
    "EvalData",
    "METHODS",
    "build_pretrainer",
    "draw_subset",
    "evaluate_encoder",
    "floor_metrics",
    "make_record",
    "pretrain",
    "run",
    "smoke_config",
]

METHODS = ("simsiam", "simclr", "moco_v2", "byol", "supervised")

# The evaluation each config gets unless it says otherwise.
DEFAULT_EVAL = {
    "knn_k": 200,
    "knn_temperature": 0.1,
    "probe": "convex",  # "convex" (L2 logistic regression) or "paper" (SGD lr 30, 100 epochs)
    "probe_l2": 1e-4,
    "ood": True,
    "few_shot": None,  # shots per class of an OOD few-shot probe (None: off)
    "feature_batch_size": 1024,
}


def smoke_config():
    """A config that runs in seconds on any backend (a 1-epoch, 8-px, 4-channel model): for tests and dry runs.

    Example:

    >>> smoke_config()["epochs"]
    1
    """
    return {
        "backbone": {"name": "small_resnet", "width": 0.25, "blocks": [1, 1, 1, 1]},
        "input_size": 8,
        "batch_size": 32,
        "epochs": 1,
        "optimizer": {"momentum": 0.9, "weight_decay": 5e-4},
        "subset_seed": 0,
        "methods": {
            "simsiam": {"lr": 0.05, "projection_dim": 32, "projection_hidden_dim": 32, "prediction_hidden_dim": 16},
            "simclr": {"lr": 0.3, "projection_dim": 16, "projection_hidden_dim": 32, "temperature": 0.2},
            "moco_v2": {
                "lr": 0.06,
                "projection_dim": 16,
                "projection_hidden_dim": 32,
                "queue_size": 64,
                "temperature": 0.2,
                "momentum": 0.99,
            },
            "byol": {"lr": 0.1, "projection_dim": 16, "projection_hidden_dim": 32, "prediction_hidden_dim": 32},
            "supervised": {"lr": 0.1},
        },
        "eval": dict(DEFAULT_EVAL, knn_k=10, feature_batch_size=256),
    }


# ----------------------------------------------------------------------------------------- data


class EvalData:
    """The arrays a run needs: the pre-training source, a balanced labelled bank, the test set and OOD sets.

    `source` is a `keras_ssl_lt.data.Source` whose labels define the subsets (the train split);
    `bank` is `(images, labels)`, a class-balanced sample of the train split (`bank_per_class` per class,
    or all of it) on which the kNN and the linear probe are fitted; `test` is `(images, labels)`;
    `ood` is None or a dict with `train`, `test` (each `(images, labels)`) and `name`. `bank_index` gives
    the bank's positions explicitly instead.

    Example:

    >>> import numpy as np
    >>> x = np.zeros((40, 8, 8, 3), "uint8"); y = np.repeat(np.arange(4), 10)
    >>> data = EvalData.from_arrays((x, y), (x[:8], y[:8]), bank_per_class=5)
    >>> len(data.bank[1]), data.num_classes
    (20, 4)
    """

    def __init__(self, source, test, bank_per_class=None, ood=None, bank_seed=0, name="dataset", bank_index=None):
        from keras_ssl_lt.evaluation import as_arrays

        self.source = source
        self.name = name
        labels = np.asarray(source.labels)
        self.num_classes = int(labels.max()) + 1
        if bank_index is not None:  # explicit bank positions (e.g. when only some images are at hand)
            if bank_per_class is not None:
                raise ValueError("give `bank_per_class` or `bank_index`, not both")
            self.bank_index = np.sort(np.asarray(bank_index, dtype=np.int64))
            if (
                self.bank_index.ndim != 1
                or not self.bank_index.size
                or self.bank_index.min() < 0
                or (self.bank_index.max() >= labels.size)
            ):
                raise ValueError(f"`bank_index` must be a non-empty 1-D array of positions in [0, {labels.size})")
        else:
            self.bank_index = balanced_positions(labels, bank_per_class, bank_seed)
        self.bank = (source.images(self.bank_index), labels[self.bank_index])
        self.test = as_arrays(test, name="test")
        if ood is not None:
            if not isinstance(ood, dict) or not {"train", "test"} <= set(ood):
                raise ValueError("`ood` must be None or a dict with 'train' and 'test' (images, labels) pairs")
            ood = {
                "name": ood.get("name", "ood"),
                "train": as_arrays(ood["train"], name="ood train"),
                "test": as_arrays(ood["test"], name="ood test"),
            }
        self.ood = ood
        self.floor_cache = {}  # floor_metrics: the untrained encoders' metrics on this data, per config and seed

    @classmethod
    def from_arrays(cls, train, test, ood=None, bank_per_class=None, bank_seed=0, name="arrays"):
        """From `(images, labels)` arrays for the train and test splits (and an optional `ood` dict)."""
        from keras_ssl_lt.data import from_arrays

        return cls(from_arrays(*train), test, bank_per_class=bank_per_class, ood=ood, bank_seed=bank_seed, name=name)

    def describe(self):
        """Sizes of every part, for records."""
        out = {
            "dataset": self.name,
            "train": len(self.source),
            "bank": int(len(self.bank[1])),
            "test": int(len(self.test[1])),
        }
        if self.ood is not None:
            out.update(
                ood=self.ood["name"], ood_train=int(len(self.ood["train"][1])), ood_test=int(len(self.ood["test"][1]))
            )
        return out


def balanced_positions(labels, per_class, seed=0):
    """Sorted positions of `per_class` examples of every class (all examples when `per_class` is None).

    Example:

    >>> balanced_positions(np.array([0, 0, 0, 1, 1, 1]), 2, seed=0).size
    4
    """
    labels = np.asarray(labels)
    if per_class is None:
        return np.arange(labels.size)
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"`bank_per_class` must be None or a positive integer; got {per_class!r}")
    smallest = int(np.bincount(labels).min())
    if per_class > smallest:
        raise ValueError(f"`bank_per_class`={per_class} exceeds the smallest class ({smallest} examples)")
    rng = np.random.default_rng([seed, 7])
    return np.sort(
        np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)])
    )


def draw_subset(labels, spec, cfg):
    """The subset of a run: long-tailed for `spec.ratio < 1`, else the balanced counterpart of the same n.

    The balanced counterpart mirrors the long-tailed subset of `spec.extra["counterpart_of"]` (default
    `cfg["counterpart_of"]`, else 0.01) at the same profile and sampling, so A(n, 1) and A(n, r) share n.
    Subsets are drawn with `cfg["subset_seed"]` (default 0), the same for every method and training seed,
    as in the paper ("variants are fixed when comparing algorithms").

    Example:

    >>> from keras_ssl_lt.experiments import RunSpec
    >>> labels = np.repeat(np.arange(10), 5000)
    >>> draw_subset(labels, RunSpec("simclr", ratio=1.0), {}).n
    12406
    """
    from keras_ssl_lt.data import balanced_counterpart, make_subset

    subset_seed = int(cfg.get("subset_seed", 0))
    extra = dict(spec.extra)
    if spec.ratio < 1.0:
        return make_subset(labels, profile=spec.profile, ratio=spec.ratio, sampling=spec.sampling, seed=subset_seed)
    ref_ratio = float(extra.get("counterpart_of", cfg.get("counterpart_of", 0.01)))
    lt = make_subset(labels, profile=spec.profile, ratio=ref_ratio, sampling=spec.sampling, seed=subset_seed)
    return balanced_counterpart(labels, lt, seed=subset_seed)


# ----------------------------------------------------------------------------------------- models


def _encoder(cfg):
    from keras_ssl_lt import backbones

    b = dict(cfg["backbone"])
    name = b.pop("name")
    fn = getattr(backbones, name, None)
    if fn is None or name.startswith("_") or name == "count_flops":
        raise ValueError(f"config backbone name must be one of resnet18_cifar, resnet50, small_resnet; got {name!r}")
    if "blocks" in b:
        b["blocks"] = tuple(b["blocks"])
    size = int(cfg["input_size"])
    return fn(input_shape=(size, size, 3), **b)


# `cfg["augment_preset"]`: the SSL views (`keras_ssl_lt.augment` presets); CIFAR's by default.
AUGMENT_PRESETS = ("simsiam_cifar", "moco_v2_imagenet")


def _augmenter(method, cfg, seed):
    from keras_ssl_lt import augment

    size = int(cfg["input_size"])
    overrides = dict(cfg.get("augment", {}).get(method, {}))
    preset = cfg.get("augment_preset", "simsiam_cifar")
    if preset not in AUGMENT_PRESETS:
        raise ValueError(f"config `augment_preset` must be one of {AUGMENT_PRESETS}; got {preset!r}")
    if method != "supervised" and preset == "moco_v2_imagenet":
        return augment.moco_v2_imagenet(size=size, seed=seed, **overrides)
    if method == "supervised":
        # Standard supervised views at the run's resolution: random resized crop and flip, no colour.
        base = dict(crop="resized", scale=(0.35, 1.0), jitter=None, jitter_p=0.0, grayscale_p=0.0)
        base.update(overrides)
        return augment.supervised_cifar(crop_size=size, seed=seed, **base)
    return augment.simsiam_cifar(crop_size=size, seed=seed, **overrides)


def build_pretrainer(method, cfg, num_classes, num_examples=None, seed=0):
    """The pre-trainer of `method` (one of `METHODS`) as the config describes it, its encoder built first.

    The encoder is created right after `keras.utils.set_random_seed(seed)`, so every method (and the
    untrained floor) starts from the same encoder weights for a seed.

    Example:

    >>> m = build_pretrainer("simclr", smoke_config(), num_classes=10, seed=0)
    >>> type(m).__name__
    'SimCLR'
    """
    import keras

    import keras_ssl_lt as ksl

    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}; got {method!r}")
    keras.utils.set_random_seed(int(seed))
    encoder = _encoder(cfg)
    hp = dict(cfg["methods"][method])
    hp.pop("lr", None)
    hp.pop("epochs", None)
    aug = _augmenter(method, cfg, seed)
    common = dict(augmenter=aug, num_examples=num_examples, name=f"{method}_seed{seed}")
    if method == "simsiam":
        return ksl.SimSiam(encoder, **hp, **common)
    if method == "simclr":
        return ksl.SimCLR(encoder, **hp, **common)
    if method == "moco_v2":
        return ksl.MoCoV2(encoder, **hp, **common)
    if method == "byol":
        return ksl.BYOL(encoder, **hp, **common)
    return ksl.Supervised(encoder, num_classes=num_classes, **hp, **common)


SHARPNESS = ("none", "sam", "asam", "rwsam_rank", "rwsam_kde")


def regularizer(source, subset, cfg, sharpness="none"):
    """The `(sharpness, callbacks)` of a run: None / SAM / ASAM / rwSAM with class-rank or KDE weights.

    `cfg["sharpness"]` holds the settings: `rho` (ASAM radius for "asam" and the rwSAM variants, the authors'
    7.0 on CIFAR), `sam_rho` (plain SAM radius), `rank_base` (1.2: the authors' CIFAR weights
    `base ** rank`, ranked by the long-tailed subset's class counts), and the KDE refresh `kde_every` (epochs)
    and `kde_power`. rwSAM variants are adaptive (ASAM), as in the authors' code.

    Example:

    >>> reg, cbs = regularizer(None, None, {}, "none")
    >>> reg is None and cbs == []
    True
    """
    import keras_ssl_lt as ksl

    if sharpness not in SHARPNESS:
        raise ValueError(f"`sharpness` must be one of {SHARPNESS}; got {sharpness!r}")
    sc = dict(
        {"rho": 7.0, "sam_rho": 0.05, "rank_base": 1.2, "kde_every": 1, "kde_power": 1.0}, **cfg.get("sharpness", {})
    )
    if sharpness == "none":
        return None, []
    if sharpness == "sam":
        return ksl.SAM(rho=float(sc["sam_rho"])), []
    if sharpness == "asam":
        return ksl.SAM(rho=float(sc["rho"]), adaptive=True), []
    if sharpness == "rwsam_rank":
        weights = ksl.rwsam.weights.class_rank_weights(
            source.labels, base=float(sc["rank_base"]), class_counts=subset.counts
        )
        return ksl.RWSAM(rho=float(sc["rho"]), adaptive=True, weights=weights), []
    index = np.asarray(subset.indices)
    cb = ksl.rwsam.KDEReweighting(
        source.images(index), index, every_n_epochs=int(sc["kde_every"]), power=float(sc["kde_power"]), at_start=True
    )
    return ksl.RWSAM(rho=float(sc["rho"]), adaptive=True), [cb]


def pretrain(model, method, source, subset, cfg, seed=0, verbose=1, callbacks=None, sharpness="none"):
    """Pre-train `model` on `subset` of `source` with SGD + momentum, cosine schedule; returns (history, seconds).

    The learning rate is the method's `lr` for `cfg["batch_size"]` (no further scaling); the epochs are the
    method's `epochs` if given, else `cfg["epochs"]`. `sharpness` picks the regulariser (`regularizer`).
    With `cfg["stream"]` (keyword arguments of `keras_ssl_lt.data.stream_dataset`, e.g. `{"image_size": 256}`)
    the images are decoded from the source's files per batch instead of gathered in memory.
    """
    import keras

    from keras_ssl_lt.data import ssl_dataset
    from keras_ssl_lt.optimizers import get_sgd

    hp = cfg["methods"][method]
    batch = int(cfg["batch_size"])
    epochs = int(hp.get("epochs", cfg["epochs"]))
    if subset.n < batch:
        raise ValueError(f"the subset has {subset.n} examples, fewer than `batch_size`={batch}")
    steps = subset.n // batch
    opt = dict(cfg.get("optimizer", {}))
    lr = keras.optimizers.schedules.CosineDecay(float(hp["lr"]), decay_steps=max(1, steps * epochs))
    reg, reg_callbacks = regularizer(source, subset, cfg, sharpness)
    model.compile(
        optimizer=get_sgd(
            lr,
            momentum=opt.get("momentum", 0.9),
            weight_decay=opt.get("weight_decay", 5e-4),
            convention=weight_decay_convention(cfg),
        ),
        sharpness=reg,
    )
    if cfg.get("stream"):  # decoded per batch from files (datasets larger than memory), e.g. {"image_size": 256}
        from keras_ssl_lt.data import stream_dataset

        ds = stream_dataset(source, subset, batch_size=batch, seed=int(seed), **dict(cfg["stream"]))
    else:
        ds = ssl_dataset(source, subset, batch_size=batch, seed=int(seed), backend=cfg.get("pipeline", "auto"))
    start = time.perf_counter()
    # The pipeline shuffles (seeded, per epoch); `shuffle=False` says so to Keras, which otherwise warns that
    # it ignores its default `shuffle=True` on a dataset.
    history = model.fit(
        ds, epochs=epochs, shuffle=False, verbose=verbose, callbacks=reg_callbacks + list(callbacks or [])
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}, time.perf_counter() - start


# ----------------------------------------------------------------------------------------- evaluation


def evaluate_encoder(model, data, cfg, class_groups=None):
    """ID kNN and linear probe (with per-group accuracy), OOD linear probe (and few-shot): a flat metric dict.

    Keys: `knn_acc`, `knn_acc_<group>`, `probe_acc`, `probe_acc_<group>`, and with OOD data
    `ood_probe_acc` (and `ood_fewshot_acc`). Accuracies are fractions in [0, 1].
    """
    from keras_ssl_lt import evaluation

    ev = dict(DEFAULT_EVAL, **cfg.get("eval", {}))
    fb = int(ev["feature_batch_size"])
    feats = lambda x: np.asarray(evaluation.extract_features(model, x, batch_size=fb))  # noqa: E731
    bank_f, test_f = feats(data.bank[0]), feats(data.test[0])
    out = {}
    knn = evaluation.knn_features(
        bank_f,
        data.bank[1],
        test_f,
        data.test[1],
        k=int(ev["knn_k"]),
        temperature=float(ev["knn_temperature"]),
        class_groups=class_groups,
        num_classes=data.num_classes,
    )
    probe = evaluation.probe_features(
        bank_f,
        data.bank[1],
        test_f,
        data.test[1],
        num_classes=data.num_classes,
        class_groups=class_groups,
        protocol=ev["probe"],
        l2=float(ev["probe_l2"]),
    )
    for prefix, res in (("knn", knn), ("probe", probe)):
        for k, v in res.items():
            if k == "acc" or k.startswith("acc_"):
                out[f"{prefix}_{k}"] = float(v)
    if data.ood is not None and ev.get("ood", True):
        (otr_x, otr_y), (ote_x, ote_y) = data.ood["train"], data.ood["test"]
        otr_f, ote_f = feats(otr_x), feats(ote_x)
        ood = evaluation.probe_features(otr_f, otr_y, ote_f, ote_y, protocol=ev["probe"], l2=float(ev["probe_l2"]))
        out["ood_probe_acc"] = float(ood["acc"])
        if ev.get("few_shot"):
            fs = evaluation.few_shot_features(otr_f, otr_y, ote_f, ote_y, shots=int(ev["few_shot"]))
            out["ood_fewshot_acc"] = float(fs["acc"])
    return out


def generalization_gap_metrics(model, data, subset, cfg):
    """Pre-training loss on held-out images minus on the training subset, overall and per class group.

    The held-out set is the test split; the training side is a sample of the subset of at most
    `cfg["eval"]["gap_examples"]` (default 2,000) per class. Keys: `gen_gap`, `gen_gap_<group>`.
    """
    from keras_ssl_lt import evaluation

    per_class = int(cfg.get("eval", {}).get("gap_examples", 2000))
    rng = np.random.default_rng([int(cfg.get("subset_seed", 0)), 11])
    labels = np.asarray(data.source.labels)
    idx = np.asarray(subset.indices)
    take = np.concatenate([rng.permutation(idx[labels[idx] == c])[:per_class] for c in np.unique(labels[idx])])
    g = evaluation.generalization_gap_from_model(
        model, data.source.images(take), labels[take], data.test[0], data.test[1], class_groups=subset.groups
    )
    return {
        ("gen_gap" if k == "all" else f"gen_gap_{k}"): float(v)
        for k, v in g.items()
        if isinstance(v, (int, float, np.floating))
    }


def floor_metrics(cfg, data, seed, class_groups=None, method="simclr"):
    """Metrics of the untrained encoder built from `seed`, cached on `data` per architecture, evaluation and seed."""
    import json

    key = json.dumps(
        [
            cfg["backbone"],
            cfg["input_size"],
            cfg.get("eval", {}),
            int(seed),
            {k: np.asarray(v).tolist() for k, v in (class_groups or {}).items()},
        ],
        sort_keys=True,
        default=str,
    )
    if key not in data.floor_cache:
        model = build_pretrainer(method, cfg, data.num_classes, seed=seed)
        data.floor_cache[key] = evaluate_encoder(model, data, cfg, class_groups)
    return dict(data.floor_cache[key])


def run(spec, cfg, data, verbose=0, callbacks=None):
    """One run of the protocol: subset -> pre-train -> evaluate, beside the floor. Returns the runner's result dict.

    `cfg` is the preset's config; `data` an `EvalData`. The result has `metrics` (trained and `floor_*`),
    `history`, `config`, `n`, `counts`, `manifest_sha256`, `data` sizes and `timings` (see `make_record`).
    """
    if spec.method not in METHODS:
        raise ValueError(f"`spec.method` must be one of {METHODS}; got {spec.method!r}")
    cfg = copy.deepcopy(cfg)
    for k, v in dict(spec.extra).items():
        if k.startswith("cfg."):  # e.g. extra={"cfg.epochs": 3}: a config override recorded in the spec
            cfg[k[4:]] = v
    t0 = time.perf_counter()
    subset = draw_subset(data.source.labels, spec, cfg)
    groups = subset.groups
    floor = floor_metrics(cfg, data, spec.seed, groups)
    t_floor = time.perf_counter() - t0
    sharpness = dict(spec.extra).get("sharpness", "none")
    model = build_pretrainer(spec.method, cfg, data.num_classes, num_examples=len(data.source), seed=spec.seed)
    history, train_seconds = pretrain(
        model,
        spec.method,
        data.source,
        subset,
        cfg,
        seed=spec.seed,
        verbose=verbose,
        callbacks=callbacks,
        sharpness=sharpness,
    )
    t1 = time.perf_counter()
    metrics = evaluate_encoder(model, data, cfg, groups)
    if cfg.get("eval", {}).get("generalization_gap"):
        metrics.update(generalization_gap_metrics(model, data, subset, cfg))
    eval_seconds = time.perf_counter() - t1
    for k, v in floor.items():
        metrics[f"floor_{k}"] = v
    timings = {"floor_seconds": t_floor, "train_seconds": train_seconds, "eval_seconds": eval_seconds}
    return make_record(metrics, history, cfg, subset, groups, data.describe(), timings)


def weight_decay_convention(cfg):
    """The optimizer's weight-decay convention of a config (`keras_ssl_lt.optimizers.get_sgd`).

    `cfg["optimizer"]["weight_decay_convention"]`: `"coupled"` (PyTorch's and the paper's), `"decoupled"`, or
    `"keras"` (`keras.optimizers.SGD`, also what a config without the key gets: what the presets ran before the
    convention was a setting).

    Example:

    >>> weight_decay_convention({"optimizer": {"weight_decay_convention": "coupled"}})
    'coupled'
    """
    from keras_ssl_lt._checks import check_choice
    from keras_ssl_lt.optimizers import CONVENTIONS

    convention = dict(cfg.get("optimizer", {})).get("weight_decay_convention", "keras")
    return check_choice(convention, "optimizer.weight_decay_convention", CONVENTIONS)


def conventions(cfg):
    """The numerical conventions a config runs with, written into every record (docs/fidelity.md).

    Example:

    >>> conventions(smoke_config())["weight_decay"]
    'keras'
    """
    backbone = dict(cfg.get("backbone", {}))
    conv_init = backbone.get("kernel_initializer")
    heads = {m: dict(hp).get("head_init", "keras") for m, hp in cfg.get("methods", {}).items()}
    return {
        "weight_decay": weight_decay_convention(cfg),
        "conv_init": "he_normal_fan_out" if conv_init is None else conv_init,
        "head_init": heads,
        "batchnorm": "momentum 0.9 (PyTorch's 0.1), epsilon 1e-5, biased moving variance",
        "lr_schedule": "cosine per step (keras CosineDecay), no warm-up",
    }


def make_record(metrics, history, cfg, subset, groups, data_description, timings):
    """The result dict of one run, as `run` returns it and the runner stores it (recipes with their own
    run function use it too, so every record has the same fields).

    Adds `metrics["diverged"] = 1.0` when any history value is not finite, and the SHA-256 of the subset's
    manifest (which examples were drawn), so two records can be checked to rest on the same subset.
    """
    import hashlib
    import json

    metrics = dict(metrics)
    if any(not math.isfinite(v) for values in history.values() for v in values):
        metrics["diverged"] = 1.0
    manifest = json.dumps(subset.manifest, sort_keys=True, default=lambda o: np.asarray(o).tolist())
    return {
        "metrics": metrics,
        "history": history,
        "config": cfg,
        "conventions": conventions(cfg),
        "n": int(subset.n),
        "counts": [int(c) for c in subset.counts],
        "groups": {k: [int(c) for c in v] for k, v in groups.items()},
        "manifest_sha256": hashlib.sha256(manifest.encode()).hexdigest(),
        "data": data_description,
        "timings": dict(timings),
    }
