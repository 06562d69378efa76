"""Evaluation of a protocol run's encoder: ID kNN and linear probe per class group, OOD probe, the untrained floor.

Accuracies are fractions in [0, 1]; keys are `knn_acc`, `knn_acc_<group>`, `probe_acc`, `probe_acc_<group>`,
`ood_probe_acc`, `ood_fewshot_acc`, `gen_gap`, `gen_gap_<group>`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["evaluate_encoder", "floor_metrics", "generalization_gap_metrics"]


def evaluate_encoder(model: Any, data: Any, cfg: dict, class_groups: dict | None = None) -> dict[str, float]:
    """ID kNN and linear probe (with per-group accuracy), OOD linear probe (and few-shot): a flat metric dict.

    Keys: `knn_acc`, `knn_acc_<group>`, `probe_acc`, `probe_acc_<group>`, and with OOD data
    `ood_probe_acc` (and `ood_fewshot_acc`). Accuracies are fractions in [0, 1].
    """
    from keras_ssl_lt import evaluation
    from keras_ssl_lt.experiments.presets import DEFAULT_EVAL

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
    cfg: dict, data: Any, seed: int, class_groups: dict | None = None, method: str = "simclr"
) -> dict[str, float]:
    """Metrics of the untrained encoder built from `seed`, cached on `data` per architecture, evaluation and seed."""
    import json

    key = json.dumps(
        [
            cfg["backbone"],
            cfg["input_size"],
            cfg.get("precision", "float32"),
            cfg.get("eval", {}),
            int(seed),
            {k: np.asarray(v).tolist() for k, v in (class_groups or {}).items()},
        ],
        sort_keys=True,
        default=str,
    )
    if key not in data.floor_cache:
        from keras_ssl_lt.experiments.build import build_pretrainer
        from keras_ssl_lt.experiments.conventions import precision_scope

        with precision_scope(cfg):
            model = build_pretrainer(method, cfg, data.num_classes, seed=seed)
            data.floor_cache[key] = evaluate_encoder(model, data, cfg, class_groups)
    return dict(data.floor_cache[key])
