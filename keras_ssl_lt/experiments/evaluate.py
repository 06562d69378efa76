"""Evaluation of a protocol run's encoder: ID kNN and linear probe per class group, OOD probe, the untrained floor.

Accuracies are fractions in [0, 1]; keys are `knn_acc`, `knn_acc_<group>`, `probe_acc`, `probe_acc_<group>`,
`ood_probe_acc`, `ood_fewshot_acc`, `gen_gap`, `gen_gap_<group>`.

The long-tail evaluation of SDCLR / BCL / TS (`keras_ssl_lt.evaluation.longtail`) is off unless `cfg["eval"]` asks
for it (read with `.get`; absent keys leave the metrics exactly as before):

- `balancedness: True`: `probe_balancedness` and `knn_balancedness`, the std of the group accuracies;
- `k_shot: [100, 50]`: k-shot ID probes on the balanced bank, `k_shot_draws` draws (default 5) from seed
  `k_shot_seed` (default 0): `probe_kshot<k>_acc`, `_acc_std`, `_acc_<group>`, `_balancedness`;
- `lt_probe: True` (or "lt", "fs", ["lt", "fs"]): the TS-style / SDCLR-style probe trained on the long-tailed
  pre-training subset ("lt": `lt_probe_acc`, `_acc_<group>`, `_balancedness`) and on its balanced sample with
  the rarest class's count per class ("fs": `lt_fewshot_acc`, `_acc_std`, `_acc_<group>`, `_balancedness`,
  `lt_fewshot_shots`), `lt_probe_draws` draws (default 1); it needs the run's `subset`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_ssl_lt._checks import check_non_negative_int, check_positive_int

__all__ = ["evaluate_encoder", "floor_metrics", "generalization_gap_metrics"]


def evaluate_encoder(
    model: Any, data: Any, cfg: dict, class_groups: dict | None = None, subset: Any | None = None
) -> dict[str, float]:
    """ID kNN and linear probe (with per-group accuracy), OOD linear probe (and few-shot): a flat metric dict.

    Keys: `knn_acc`, `knn_acc_<group>`, `probe_acc`, `probe_acc_<group>`, and with OOD data
    `ood_probe_acc` (and `ood_fewshot_acc`). Accuracies are fractions in [0, 1]. The optional long-tail
    metrics (module docstring) follow when `cfg["eval"]` asks for them; `lt_probe` needs `subset`, the
    run's long-tailed `Subset` of `data.source`.
    """
    from keras_ssl_lt import evaluation
    from keras_ssl_lt.experiments.presets import DEFAULT_EVAL

    ev = dict(DEFAULT_EVAL, **cfg.get("eval", {}))
    opts = _longtail_options(ev, class_groups, subset)
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
    out.update(_longtail_metrics(opts, ev, feats, data, bank_f, test_f, class_groups, subset, knn, probe))
    if data.ood is not None and ev.get("ood", True):
        (otr_x, otr_y), (ote_x, ote_y) = data.ood["train"], data.ood["test"]
        otr_f, ote_f = feats(otr_x), feats(ote_x)
        ood = evaluation.probe_features(otr_f, otr_y, ote_f, ote_y, protocol=ev["probe"], l2=float(ev["probe_l2"]))
        out["ood_probe_acc"] = float(ood["acc"])
        if ev.get("few_shot"):
            fs = evaluation.few_shot_features(otr_f, otr_y, ote_f, ote_y, shots=int(ev["few_shot"]))
            out["ood_fewshot_acc"] = float(fs["acc"])
    return out


def _check_flag(ev, key):
    value = ev.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"`eval.{key}` must be true or false; got {value!r}")
    return value


def _lt_modes(ev):
    value = ev.get("lt_probe")
    if value is None or value is False:
        return []
    modes = ["lt", "fs"] if value is True else [value] if isinstance(value, str) else value
    if not isinstance(modes, (list, tuple)) or not modes or any(m not in ("lt", "fs") for m in modes):
        raise ValueError(f"`eval.lt_probe` must be true, false, 'lt', 'fs' or a list of them; got {value!r}")
    return list(dict.fromkeys(modes))


def _shot_list(ev):
    value = ev.get("k_shot")
    if value is None:
        return []
    shots = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(shots, (list, tuple))
        or not shots
        or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in shots)
    ):
        raise ValueError(f"`eval.k_shot` must be a positive int or a list of them (e.g. [100, 50]); got {value!r}")
    return list(dict.fromkeys(shots))


def _kept(prefix, res):
    """The float metrics of a long-tail result under `prefix` (`acc`, `acc_std`, `acc_<group>`, `balancedness`)."""
    return {
        f"{prefix}_{k}": float(v) for k, v in res.items() if k in ("acc", "balancedness", "shots") or k[:4] == "acc_"
    }


def _longtail_options(ev, class_groups, subset):
    """The long-tail keys of `ev`, checked before any feature is computed (an empty dict asks for nothing)."""
    balancedness, shots, modes = _check_flag(ev, "balancedness"), _shot_list(ev), _lt_modes(ev)
    if balancedness and class_groups is None:
        raise ValueError("`eval.balancedness` needs class groups (the run's many / medium / few); got None")
    if modes and subset is None:
        raise ValueError(
            "`eval.lt_probe` trains the probe on the long-tailed pre-training subset: pass `subset=` (the run's "
            "Subset of data.source) to evaluate_encoder / floor_metrics"
        )
    return {
        "balancedness": balancedness,
        "shots": shots,
        "draws": check_positive_int(ev.get("k_shot_draws", 5), "eval.k_shot_draws"),
        "seed": check_non_negative_int(ev.get("k_shot_seed", 0), "eval.k_shot_seed"),
        "modes": modes,
        "lt_draws": check_positive_int(ev.get("lt_probe_draws", 1), "eval.lt_probe_draws"),
    }


def _longtail_metrics(opts, ev, feats, data, bank_f, test_f, class_groups, subset, knn, probe):
    """The optional long-tail metrics of `evaluate_encoder` (nothing when `opts` asks for none)."""
    from keras_ssl_lt import evaluation

    out = {}
    common = {"num_classes": data.num_classes, "protocol": ev["probe"], "l2": float(ev["probe_l2"])}
    if opts["balancedness"]:
        for prefix, res in (("knn", knn), ("probe", probe)):
            nonempty = {g: res[f"acc_{g}"] for g, ids in class_groups.items() if len(ids)}
            out[f"{prefix}_balancedness"] = evaluation.group_balancedness(nonempty)
    for k in opts["shots"]:
        res = evaluation.k_shot_probe(
            bank_f,
            data.bank[1],
            test_f,
            data.test[1],
            shots=k,
            num_draws=opts["draws"],
            seed=opts["seed"],
            class_groups=class_groups,
            **common,
        )
        res.pop("shots")  # in the key's name
        out.update(_kept(f"probe_kshot{k}", res))
    if opts["modes"]:
        lt_f = feats(data.source.images(subset.indices))
        lt_y = np.asarray(data.source.labels)[subset.indices]
        for mode in opts["modes"]:
            res = evaluation.lt_probe(
                lt_f,
                lt_y,
                test_f,
                data.test[1],
                few_shot=mode == "fs",
                class_groups=class_groups,
                num_draws=opts["lt_draws"],
                seed=opts["seed"],
                **common,
            )
            out.update(_kept("lt_probe" if mode == "lt" else "lt_fewshot", res))
    return out


def generalization_gap_metrics(model: Any, data: Any, subset: Any, cfg: dict) -> dict[str, float]:
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


def floor_metrics(
    cfg: dict,
    data: Any,
    seed: int,
    class_groups: dict | None = None,
    method: str = "simclr",
    subset: Any | None = None,
) -> dict[str, float]:
    """Metrics of the untrained encoder built from `seed`, cached on `data` per architecture, evaluation and seed.

    `subset` (the run's long-tailed `Subset`) is passed on to `evaluate_encoder`; it is part of the cache key
    only when given.
    """
    import json

    from keras_ssl_lt.data import labels_hash

    key = json.dumps(
        [
            cfg["backbone"],
            cfg["input_size"],
            cfg.get("precision", "float32"),
            cfg.get("eval", {}),
            int(seed),
            {k: np.asarray(v).tolist() for k, v in (class_groups or {}).items()},
            *([] if subset is None else [labels_hash(subset.indices)]),
        ],
        sort_keys=True,
        default=str,
    )
    if key not in data.floor_cache:
        from keras_ssl_lt.experiments.build import build_pretrainer
        from keras_ssl_lt.experiments.conventions import precision_scope

        with precision_scope(cfg):
            model = build_pretrainer(method, cfg, data.num_classes, seed=seed)
            data.floor_cache[key] = evaluate_encoder(model, data, cfg, class_groups, subset=subset)
    return dict(data.floor_cache[key])
