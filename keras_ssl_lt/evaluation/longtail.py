"""The long-tail evaluation of SDCLR / BCL / TS: k-shot probes, many / medium / few groups, balancedness.

Two protocols, named plainly:

* **ID probe on a balanced set** (what `probe_features` does on the balanced bank): a linear probe trained on a
  class-balanced labelled set, full-shot or `k_shot_probe` with exactly `k` examples per class (BCL's
  `test.py`: 100-shot and 50-shot subsets of the balanced training list `cifar100_trainIdxList.npy`, five
  draws each, averaged).
* **TS-style / SDCLR-style probe** (`lt_probe`): the probe trained on the long-tailed pre-training split itself
  (TS's notebooks, "LT": `LinearSVC` on every `D_i` feature), or with `few_shot=True` on a balanced sample of
  it with the rarest class's count per class (SDCLR's `S_b` sets of 45 x 10 and 4 x 100 images, a subset of
  `D_i`; TS's "FS", `n_samples = Counter(labels).most_common()[-1]`).

Both are evaluated on the balanced test set and report overall and per-group accuracy. Groups are those of
the long-tailed split (`Subset.groups`: SDCLR's `exp_analyse.py` takes thirds by frequency for CIFAR,
`sortIdx[C // 3 * 2:]` many, so 4 / 3 / 3 and 34 / 33 / 33 classes; the count thresholds many > 100, few < 20
only for ImageNet-LT / ImageNet-100-LT). `group_balancedness` is SDCLR's "GroupBalanceness": the population
standard deviation (`np.std`) of the three group accuracies, as fractions.

Every fit is the package's probe (`fit_probe`: the convex L2 logistic regression or the paper's SGD protocol),
not TS's `LinearSVC` nor BCL's Adam-trained layer: the protocols differ in their training sets, not solvers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from keras_ssl_lt._checks import check_non_negative_int, check_positive_int
from keras_ssl_lt.evaluation.data import check_labels
from keras_ssl_lt.evaluation.linear_probe import check_probe_inputs, fit_probe
from keras_ssl_lt.evaluation.metrics import accuracy_summary, check_class_groups

__all__ = ["group_balancedness", "k_shot_indices", "k_shot_probe", "lt_probe"]


def group_balancedness(group_accuracies: dict | ArrayLike) -> float:
    """SDCLR's balancedness: the population standard deviation of the group accuracies (lower is more balanced).

    `group_accuracies` is `{"many": a, "medium": b, "few": c}` (any groups) or a sequence of accuracies in
    [0, 1]. SDCLR's `exp_analyse.py`: `np.std(np.array([majorAcc, moderateAcc, minorAcc]) / 100)`.

    Example:

    >>> round(group_balancedness({"many": 0.9, "medium": 0.6, "few": 0.3}), 6)
    0.244949
    """
    values = list(group_accuracies.values()) if isinstance(group_accuracies, dict) else group_accuracies
    a = np.asarray(values, dtype="float64").reshape(-1)
    if a.size < 2 or np.any(~np.isfinite(a)) or np.any(a < 0) or np.any(a > 1):
        raise ValueError(
            "`group_accuracies` must be two or more accuracies in [0, 1] (no NaN: every group needs test "
            f"examples); got {group_accuracies!r}"
        )
    return float(np.std(a))


def k_shot_indices(
    labels: ArrayLike, shots: int, seed: int = 0, draw: int = 0, num_classes: int | None = None
) -> np.ndarray:
    """Sorted positions of exactly `shots` examples of every class, drawn without replacement.

    Draw `draw` of seed `seed` uses `numpy.random.default_rng([seed, draw])`, one class after another in
    increasing id, so draws are reproducible and differ from one another. Every class `0..num_classes-1`
    (default: the classes present) must have at least `shots` examples.

    Example:

    >>> import numpy as np
    >>> y = np.repeat([0, 1, 2], 4)
    >>> idx = k_shot_indices(y, 2, seed=0)
    >>> np.bincount(y[idx]).tolist(), idx.tolist() == k_shot_indices(y, 2, seed=0).tolist()
    ([2, 2, 2], True)
    """
    y = check_labels(labels, "labels", num_classes=num_classes)
    shots = check_positive_int(shots, "shots")
    seed = check_non_negative_int(seed, "seed")
    draw = check_non_negative_int(draw, "draw")
    classes = np.unique(y) if num_classes is None else np.arange(num_classes)
    counts = np.bincount(y, minlength=classes.max() + 1)[classes]
    if counts.min() < shots:
        c = int(classes[np.argmin(counts)])
        raise ValueError(f"`shots`={shots} exceeds the {int(counts.min())} examples of class {c} in `labels`")
    rng = np.random.default_rng([seed, draw])
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), shots, replace=False) for c in classes]))


def _summary(clf, xte, yte, groups):
    """accuracy_summary of a fitted probe on the test set, plus `balancedness` over the groups that hold classes."""
    out = accuracy_summary(clf.decision_function(xte), yte, groups)
    if groups is not None:
        accs = {g: out[f"acc_{g}"] for g, ids in groups.items() if len(ids)}
        empty = [g for g, a in accs.items() if np.isnan(a)]
        if empty:
            raise ValueError(f"the test labels hold no example of class group(s) {empty}: no balancedness")
        out["balancedness"] = group_balancedness(accs)
    return out


def _prepare(train_features, train_labels, test_features, test_labels, num_classes, class_groups, protocol):
    xtr, ytr, xte, yte, num_classes = check_probe_inputs(
        train_features, train_labels, test_features, test_labels, num_classes, protocol
    )
    return xtr, ytr, xte, yte, num_classes, check_class_groups(class_groups, num_classes)


def _draws(xtr, ytr, xte, yte, num_classes, groups, shots, num_draws, seed, protocol, l2, solver_kwargs):
    """Mean over `num_draws` k-shot probes of every metric, `acc_std` (population std) and `accs` per draw."""
    runs = []
    for d in range(check_positive_int(num_draws, "num_draws")):
        idx = k_shot_indices(ytr, shots, seed=seed, draw=d, num_classes=num_classes)
        runs.append(
            _summary(fit_probe(xtr[idx], ytr[idx], num_classes, protocol, l2, **solver_kwargs), xte, yte, groups)
        )
    out = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    accs = [float(r["acc"]) for r in runs]
    out.update(acc_std=float(np.std(accs)), accs=accs, shots=int(shots))
    return out


def k_shot_probe(
    train_features: ArrayLike,
    train_labels: ArrayLike,
    test_features: ArrayLike,
    test_labels: ArrayLike,
    shots: int,
    num_draws: int = 5,
    seed: int = 0,
    num_classes: int | None = None,
    class_groups: dict | None = None,
    protocol: str = "convex",
    l2: float = 1e-4,
    **solver_kwargs: Any,
) -> dict:
    """k-shot linear probe on a balanced labelled set: `shots` examples per class, `num_draws` seeded draws.

    Each draw is `k_shot_indices(train_labels, shots, seed, draw)` (exactly `shots` per class; every class
    `0..num_classes-1` must have that many); the probe is `fit_probe` with `protocol` and `l2`; defaults as
    BCL's `test.py` (5 draws; it reports 100- and 50-shot). Returns the mean over draws of `acc`, `top5`,
    `acc_<group>` and `balancedness` (with `class_groups`), plus `acc_std` (std of the draws' accuracies),
    `accs` (per draw) and `shots`.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0); y = np.repeat(np.arange(3), 20)
    >>> x = rng.normal(size=(60, 4)) + 4 * np.eye(3, 4)[y]
    >>> r = k_shot_probe(x, y, x, y, shots=5, num_draws=2, class_groups={"many": [0], "medium": [1], "few": [2]})
    >>> len(r["accs"]), r["acc"] > 0.9, r["balancedness"] < 0.1
    (2, True, True)
    """
    xtr, ytr, xte, yte, num_classes, groups = _prepare(
        train_features, train_labels, test_features, test_labels, num_classes, class_groups, protocol
    )
    return _draws(xtr, ytr, xte, yte, num_classes, groups, shots, num_draws, seed, protocol, l2, solver_kwargs)


def lt_probe(
    train_features: ArrayLike,
    train_labels: ArrayLike,
    test_features: ArrayLike,
    test_labels: ArrayLike,
    few_shot: bool = False,
    num_draws: int = 1,
    seed: int = 0,
    num_classes: int | None = None,
    class_groups: dict | None = None,
    protocol: str = "convex",
    l2: float = 1e-4,
    **solver_kwargs: Any,
) -> dict:
    """TS-style / SDCLR-style probe: trained on the long-tailed pre-training split, tested on the balanced test set.

    `train_features` / `train_labels` are the long-tailed split's (e.g. `Subset.indices` of the pre-training
    source). With `few_shot=False` one probe is fitted on all of them (TS's "LT"). With `few_shot=True` it is
    fitted on a balanced sample with the rarest class's count per class (SDCLR's `S_b`, TS's "FS"),
    `num_draws` seeded draws as in `k_shot_probe` (default one, as both papers draw one set per split); every
    class `0..num_classes-1` must occur. Returns `acc`, `top5`, `acc_<group>` and `balancedness` (with
    `class_groups`); with `few_shot=True` the mean over draws and `acc_std`, `accs`, `shots` too.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0); y = np.repeat(np.arange(3), [30, 10, 3])
    >>> x = rng.normal(size=(43, 4)) + 4 * np.eye(3, 4)[y]
    >>> lt_probe(x, y, x, y, few_shot=True)["shots"], lt_probe(x, y, x, y)["acc"] > 0.9
    (3, True)
    """
    xtr, ytr, xte, yte, num_classes, groups = _prepare(
        train_features, train_labels, test_features, test_labels, num_classes, class_groups, protocol
    )
    if not isinstance(few_shot, (bool, np.bool_)):
        raise ValueError(f"`few_shot` must be True or False; got {few_shot!r}")
    if not few_shot:
        return _summary(fit_probe(xtr, ytr, num_classes, protocol, l2, **solver_kwargs), xte, yte, groups)
    counts = np.bincount(ytr, minlength=num_classes)
    if counts.min() == 0:
        raise ValueError(
            f"`train_labels` hold no example of class {int(np.argmin(counts))}: a few-shot set of the long-tailed "
            "split needs every class"
        )
    return _draws(
        xtr, ytr, xte, yte, num_classes, groups, int(counts.min()), num_draws, seed, protocol, l2, solver_kwargs
    )
