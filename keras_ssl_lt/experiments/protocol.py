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
>>> from keras_ssl_lt.experiments.evaldata import EvalData
>>> data = EvalData.from_arrays((x, y), (x[:40], y[:40]), bank_per_class=20)
>>> from keras_ssl_lt.experiments.presets import smoke_config
>>> cfg = smoke_config()
>>> out = protocol.run(RunSpec("simclr", dataset="random", ratio=0.1, seed=0, preset="smoke"), cfg, data)
>>> sorted(k for k in out["metrics"] if k.startswith("floor_"))[:2]
['floor_knn_acc', 'floor_knn_acc_few']
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_ssl_lt.experiments.build import build_pretrainer
from keras_ssl_lt.experiments.conventions import conventions, precision_scope, weight_decay_convention
from keras_ssl_lt.experiments.evaldata import draw_subset
from keras_ssl_lt.experiments.evaluate import evaluate_encoder, floor_metrics, generalization_gap_metrics

if TYPE_CHECKING:
    from keras_ssl_lt.experiments.evaldata import EvalData
    from keras_ssl_lt.experiments.records import RunSpec

__all__ = ["make_record", "pretrain", "regularizer", "run"]


def regularizer(source: Any, subset: Any, cfg: dict, sharpness: str = "none") -> tuple[Any, list]:
    """The `(sharpness, callbacks)` of a run: `keras_ssl_lt.rwsam.registry.build_regularizer` fed from the run.

    `sharpness` is a name of the regulariser menu (`rwsam.registry.REGULARIZERS`), `cfg["sharpness"]` its
    settings (`rwsam.registry.DEFAULTS`: the ASAM radius `rho`, `sam_rho`, `rank_base`, `kde_every`,
    `kde_power`). The rank weights are ranked by the subset's counts; the KDE weights are refreshed from the
    subset's images.

    Example:

    >>> reg, cbs = regularizer(None, None, {}, "none")
    >>> reg is None and cbs == []
    True
    """
    from keras_ssl_lt.rwsam.registry import build_regularizer

    kwargs = {}
    if sharpness == "rwsam_rank":
        kwargs = dict(labels=source.labels, class_counts=subset.counts)
    elif sharpness == "rwsam_kde":
        index = np.asarray(subset.indices)
        kwargs = dict(kde_images=source.images(index), kde_index=index)
    return build_regularizer(sharpness, cfg.get("sharpness", {}), **kwargs)


def pretrain(
    model: Any,
    method: str,
    source: Any,
    subset: Any,
    cfg: dict,
    seed: int = 0,
    verbose: int = 1,
    callbacks: list | None = None,
    sharpness: str = "none",
) -> tuple[dict[str, list[float]], float]:
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


# ----------------------------------------------------------------------------------------- a run


def run(
    spec: RunSpec,
    cfg: dict,
    data: EvalData | None,
    verbose: int = 0,
    callbacks: list | None = None,
    *,
    source: Any = None,
    subset: Any = None,
    class_groups: dict | None = None,
    evaluate: Callable[[Any, dict], dict] | None = None,
    extra_metrics: Callable[[Any, RunSpec], dict] | None = None,
    num_classes: int | None = None,
    description: dict | None = None,
    floor_cache: dict | None = None,
) -> dict:
    """One run of the protocol: subset -> pre-train -> evaluate, beside the floor. Returns the runner's result dict.

    `cfg` is the preset's config; `data` an `EvalData` (or None when `evaluate`, `source` and `num_classes`
    are given). The result has `metrics` (trained and `floor_*`), `history`, `config`, `conventions`, `n`,
    `counts`, `manifest_sha256`, `data` sizes and `timings` (see `make_record`).

    Hooks for recipes whose run differs from the paper's CIFAR protocol (each defaults to that protocol):

    - `source`: the pre-training `Source` (default `data.source`);
    - `subset`: a `Subset` of `source`, or a function `(spec, cfg) -> Subset` (default `draw_subset`);
    - `class_groups`: the many / medium / few groups the evaluation reports (default the subset's);
    - `evaluate`: a function `(model, class_groups) -> metrics` replacing the ID/OOD evaluation;
    - `extra_metrics`: a function `(model, spec) -> metrics` added to the evaluation (e.g. transfer);
    - `num_classes` (default `data.num_classes`), `description` (the record's `data`, default
      `data.describe()`);
    - `floor_cache`: a dict caching the untrained floors (default `data.floor_cache`).

    The untrained floor is the same evaluation, hooks included, of the encoder built from the same seed.
    """
    from keras_ssl_lt.methods.registry import get_method

    get_method(spec.method)  # an unknown method is refused before anything is built
    if data is None and (evaluate is None or source is None or num_classes is None):
        raise ValueError("`data` may be None only when `evaluate`, `source` and `num_classes` are given")
    cfg = copy.deepcopy(cfg)
    for k, v in dict(spec.extra).items():
        if k.startswith("cfg."):  # e.g. extra={"cfg.epochs": 3}: a config override recorded in the spec
            _override(cfg, k[4:], v)
    with precision_scope(cfg):  # the floor, the model and its training under the config's dtype policy
        source = data.source if source is None else source
        num_classes = data.num_classes if num_classes is None else int(num_classes)
        if floor_cache is None:
            floor_cache = {} if data is None else data.floor_cache
        t0 = time.perf_counter()
        if subset is None:
            subset = draw_subset(source.labels, spec, cfg)
        elif callable(subset):
            subset = subset(spec, cfg)
        groups = subset.groups if class_groups is None else class_groups
        # The TS / SDCLR-style probe trains on the run's own long-tailed subset (cfg["eval"]["lt_probe"]).
        lt_subset = subset if cfg.get("eval", {}).get("lt_probe") else None

        def score(model, trained=True):
            if evaluate is not None:
                metrics = dict(evaluate(model, groups))
            else:
                metrics = evaluate_encoder(model, data, cfg, groups, subset=lt_subset)
                if trained and cfg.get("eval", {}).get("generalization_gap"):  # the pre-training loss: trained only
                    metrics.update(generalization_gap_metrics(model, data, subset, cfg))
            if extra_metrics is not None:
                metrics.update(extra_metrics(model, spec))
            return metrics

        if evaluate is None and extra_metrics is None:
            floor = floor_metrics(cfg, data, spec.seed, groups, subset=lt_subset)
        else:
            key = _floor_key(cfg, spec.seed, groups, hooks=(evaluate, extra_metrics))
            if key not in floor_cache:
                floor_cache[key] = _floor_of(score, cfg, num_classes, spec.seed)
            floor = dict(floor_cache[key])
        t_floor = time.perf_counter() - t0
        sharpness = dict(spec.extra).get("sharpness", "none")
        model = build_pretrainer(spec.method, cfg, num_classes, num_examples=len(source), seed=spec.seed)
        history, train_seconds = pretrain(
            model,
            spec.method,
            source,
            subset,
            cfg,
            seed=spec.seed,
            verbose=verbose,
            callbacks=callbacks,
            sharpness=sharpness,
        )
        t1 = time.perf_counter()
        metrics = score(model)
        eval_seconds = time.perf_counter() - t1
        for k, v in floor.items():
            metrics[f"floor_{k}"] = v
        epochs_run = max(1, len(history.get("loss", [])))
        timings = {
            "floor_seconds": t_floor,
            "train_seconds": train_seconds,
            "seconds_per_epoch": train_seconds / epochs_run,
            "eval_seconds": eval_seconds,
        }
        if description is None:
            description = {} if data is None else data.describe()
        return make_record(metrics, history, cfg, subset, groups, description, timings)


def _override(cfg, path, value):
    """`cfg[a][b] = value` for the path "a.b" (a spec's `extra` key "cfg.a.b"); missing dicts are created."""
    keys = path.split(".")
    node = cfg
    for i, key in enumerate(keys[:-1]):
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"spec override 'cfg.{path}': 'cfg.{'.'.join(keys[: i + 1])}' is not a dict")
    node[keys[-1]] = value


def _floor_key(cfg, seed, groups, hooks):
    import json

    names = [getattr(h, "__qualname__", repr(h)) if h is not None else None for h in hooks]
    return json.dumps(
        [cfg["backbone"], cfg["input_size"], cfg.get("precision", "float32"), cfg.get("eval", {}), int(seed), names]
        + [{k: np.asarray(v).tolist() for k, v in (groups or {}).items()}],
        sort_keys=True,
        default=str,
    )


def _floor_of(score, cfg, num_classes, seed):
    # Any method's pre-trainer carries the same encoder for a seed (built right after seeding); SimCLR's is light.
    return score(build_pretrainer("simclr", cfg, num_classes, seed=seed), trained=False)


def make_record(
    metrics: dict, history: dict, cfg: dict, subset: Any, groups: dict, data_description: dict, timings: dict
) -> dict:
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
