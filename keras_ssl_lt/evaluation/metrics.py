"""Metrics of the evaluation: top-k accuracy (with the package's one tie rule), the paper's imbalance
gaps, per-class / per-group accuracy and the rare-class generalisation gap. Pure numpy (no backend
needed), except `generalization_gap_from_model`, which asks a pre-trainer for its per-example losses.

**Tie rule** (everywhere in the package): among equal scores the lower class id ranks first. So
`predict_classes` is the arg-max with the lowest id on ties, and a label is in the top k when fewer
than k classes rank before it: classes with a strictly higher score, plus classes with the same
score and a lower id. Top-1 accuracy is therefore exactly the accuracy of the predictions, and a tie
never counts in the label's favour unless the label wins it by this fixed rule (a class with zero
kNN votes among 100 is not a top-5 hit just because it ties the others at zero).

Class groups are a dict such as `Subset.groups`: `{"many": class ids, "medium": ..., "few": ...}`.
Labels and class ids follow `keras_ssl_lt.evaluation.data.check_labels`; accuracies must be numbers
in [0, 1].
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from keras_ssl_lt.evaluation.data import check_labels

__all__ = [
    "accuracy_summary",
    "check_class_groups",
    "gap",
    "generalization_gap",
    "generalization_gap_from_model",
    "per_class_accuracy",
    "per_group_accuracy",
    "predict_classes",
    "relative_gap",
    "topk_accuracy",
]


def _check_scores(scores, name="scores"):
    s = np.asarray(scores)
    if s.ndim != 2 or s.shape[1] == 0:
        raise ValueError(f"`{name}` must be a 2-D array (N, num_classes); got shape {s.shape}")
    if s.dtype.kind not in "iuf":
        raise ValueError(f"`{name}` must be numbers; got dtype {s.dtype}")
    if np.any(np.isnan(s)):
        raise ValueError(f"`{name}` contain NaN (row {int(np.argmax(np.isnan(s).any(axis=1)))})")
    return s


def predict_classes(scores):
    """The class of largest score per row, the lowest class id among ties (numpy int64).

    Example:

    >>> import numpy as np
    >>> predict_classes(np.array([[0.0, 0.0, 0.0], [0.1, 0.5, 0.5]]))
    array([0, 1])
    """
    return np.argmax(_check_scores(scores), axis=1).astype("int64")


def topk_accuracy(logits, labels, k=1):
    """Fraction of rows whose label ranks among the `k` best scores, ties broken toward the lowest id.

    A label's rank is the number of classes with a strictly higher score plus the number with an
    equal score and a lower class id; the row is a hit when the rank is below `k` (the module's tie
    rule, so `k=1` gives the accuracy of `predict_classes`). `k` above the number of classes counts
    every row. Raises ValueError on NaN scores and on labels that break the label rule.

    Example:

    >>> import numpy as np
    >>> topk_accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]), k=1)
    0.5
    >>> topk_accuracy(np.zeros((2, 4)), np.array([0, 3]), k=2)  # all tied: only ids 0 and 1 make the top 2
    0.5
    """
    logits = _check_scores(logits, "logits")
    labels = check_labels(labels, "labels", num_classes=logits.shape[1])
    if len(logits) != len(labels):
        raise ValueError(f"`logits` must be (N, C) with N = len(labels) = {len(labels)}; got {logits.shape}")
    if len(labels) == 0:
        raise ValueError("`labels` is empty: at least one example is needed")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"`k` must be a positive integer; got {k!r}")
    true_score = np.take_along_axis(logits, labels[:, None], axis=1)
    ids = np.arange(logits.shape[1])[None, :]
    rank = np.sum(logits > true_score, axis=1) + np.sum((logits == true_score) & (ids < labels[:, None]), axis=1)
    return float(np.mean(rank < k))


def accuracy_summary(scores, labels, class_groups=None, k=5):
    """`{"acc", "top5", "acc_<group>" ...}` of per-class scores (logits or kNN votes) against labels.

    `acc` is the accuracy of `predict_classes(scores)`, `top5` is `topk_accuracy(scores, labels, k)`
    (the key keeps its name for another `k`), and each group of `class_groups` adds the accuracy over
    the examples whose true class is in it (`per_group_accuracy`).

    Example:

    >>> import numpy as np
    >>> accuracy_summary(np.array([[2.0, 1.0], [0.0, 3.0]]), [0, 0], {"a": [0], "b": [1]})
    {'acc': 0.5, 'top5': 1.0, 'acc_a': 0.5, 'acc_b': nan}
    """
    pred = predict_classes(scores)
    y = check_labels(labels, "labels", num_classes=np.asarray(scores).shape[1])
    if len(y) != len(pred):
        raise ValueError(f"`scores` must be (N, C) with N = len(labels) = {len(y)}; got {np.asarray(scores).shape}")
    out = {"acc": float(np.mean(pred == y)), "top5": topk_accuracy(scores, y, k=k)}
    if class_groups is not None:
        for g, acc in per_group_accuracy(y, pred, class_groups).items():
            out[f"acc_{g}"] = acc
    return out


def _check_accuracies(value, name):
    if isinstance(value, (str, bytes)):
        raise ValueError(f"`{name}` must be accuracies in [0, 1]; got the string {value!r}")
    a = np.asarray(value)
    if a.dtype.kind not in "iuf" or a.size == 0:
        raise ValueError(f"`{name}` must be accuracies in [0, 1] (numbers); got {value!r}")
    a = a.astype("float64")
    if np.any(~np.isfinite(a)) or np.any(a < 0) or np.any(a > 1):
        raise ValueError(f"`{name}` must be accuracies in [0, 1] (fractions, not percents; no NaN); got {value!r}")
    return a


def _accuracy_pair(acc_balanced, acc_imbalanced):
    """Both accuracy arguments checked, with the same shape or one of them a scalar (no broadcasting)."""
    a1 = _check_accuracies(acc_balanced, "acc_balanced")
    ar = _check_accuracies(acc_imbalanced, "acc_imbalanced")
    if a1.shape != ar.shape and a1.ndim != 0 and ar.ndim != 0:
        raise ValueError(
            "`acc_balanced` and `acc_imbalanced` must have the same shape (or one be a scalar); got shapes "
            f"{a1.shape} and {ar.shape}"
        )
    return a1, ar


def gap(acc_balanced: ArrayLike, acc_imbalanced: ArrayLike) -> float | np.ndarray:
    """Accuracy lost to imbalance at the same sample size: `A(n, 1) - A(n, r)`.

    Works on scalars or arrays (e.g. one entry per seed or per n) of accuracies in [0, 1]. The two
    arguments pair entry by entry, so they must have the same shape; the one exception is a scalar
    (a number or 0-d array) on either side, which is compared with every entry of the other (one
    balanced reference against several seeds). Any other shape pair (`[.9, .8]` against `[.7]`, a
    column against a row) raises ValueError instead of broadcasting, as do NaN, strings and values
    outside [0, 1] (e.g. percents).

    Example:

    >>> round(gap(0.90, 0.85), 10)
    0.05
    >>> gap(0.9, [0.8, 0.7]).round(10).tolist()
    [0.1, 0.2]
    >>> gap([0.9, 0.8], [0.7])
    Traceback (most recent call last):
    ...
    ValueError: `acc_balanced` and `acc_imbalanced` must have the same shape (or one be a scalar); got shapes (2,) and (1,)
    """
    a1, ar = _accuracy_pair(acc_balanced, acc_imbalanced)
    out = a1 - ar
    return float(out) if out.ndim == 0 else out


def relative_gap(acc_balanced: ArrayLike, acc_imbalanced: ArrayLike) -> float | np.ndarray:
    """Relative accuracy lost to imbalance: `(A(n, 1) - A(n, r)) / A(n, 1)`.

    Same inputs and shape rule as `gap` (equal shapes, or a scalar on one side); raises ValueError
    when a balanced accuracy is not positive (the ratio is undefined).

    Example:

    >>> round(relative_gap(0.80, 0.60), 10)
    0.25
    """
    a1, ar = _accuracy_pair(acc_balanced, acc_imbalanced)
    if np.any(a1 <= 0):
        raise ValueError(f"`acc_balanced` must be positive for a relative gap; got {acc_balanced!r}")
    out = (a1 - ar) / a1
    return float(out) if out.ndim == 0 else out


def check_class_groups(class_groups, num_classes=None):
    """Validate a class-group dict and return it as `{name: int64 array of class ids}`.

    `class_groups` maps a group name (e.g. "many", "medium", "few") to class ids; `None` gives
    `None`. Raises ValueError on a non-dict, a non-string name, ids that break the label rule or
    repeat, ids outside `[0, num_classes)`, or a class in two groups.

    Example:

    >>> check_class_groups({"many": [0, 1], "few": [2]}, num_classes=3)["few"]
    array([2])
    """
    if class_groups is None:
        return None
    if not isinstance(class_groups, dict) or not class_groups:
        raise ValueError(
            "`class_groups` must be None or a non-empty dict {group name: class ids}, e.g. "
            f"{{'many': [...], 'medium': [...], 'few': [...]}}; got {type(class_groups).__name__}"
        )
    out, seen = {}, {}
    for name, ids in class_groups.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"`class_groups` keys must be non-empty strings; got {name!r}")
        arr = check_labels(np.asarray(ids).reshape(-1), f"class_groups[{name!r}]")
        if len(np.unique(arr)) != len(arr):
            raise ValueError(f"`class_groups[{name!r}]` repeats a class id: {arr.tolist()}")
        if arr.size and num_classes is not None and arr.max() >= num_classes:
            raise ValueError(
                f"`class_groups[{name!r}]` ids must lie in [0, num_classes) = [0, {num_classes}); got {arr.tolist()}"
            )
        for c in arr.tolist():
            if c in seen:
                raise ValueError(f"class {c} is in both `class_groups[{seen[c]!r}]` and `class_groups[{name!r}]`")
            seen[c] = name
        out[name] = arr
    return out


def _labels_pair(y_true, y_pred):
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(
            f"`y_true` and `y_pred` must be 1-D arrays of the same length; got {y_true.shape} and {y_pred.shape}"
        )
    if len(y_true) == 0:
        raise ValueError("`y_true` is empty: at least one example is needed")
    return check_labels(y_true, "y_true"), check_labels(y_pred, "y_pred")


def per_class_accuracy(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """Accuracy of each class `0..num_classes-1` (NaN for a class with no example).

    `y_true` and `y_pred` are 1-D class ids of the same length, both in `[0, num_classes)`: a
    prediction outside the classes (negative or `>= num_classes`) raises ValueError rather than
    counting silently as a miss.

    Example:

    >>> per_class_accuracy([0, 0, 1], [0, 1, 1], 3)
    array([0.5, 1. , nan])
    """
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive integer; got {num_classes!r}")
    y_true, y_pred = _labels_pair(y_true, y_pred)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.max() >= num_classes:
            raise ValueError(f"`{name}` must lie in [0, num_classes) = [0, {num_classes}); got {int(y.max())}")
    correct = np.bincount(y_true, weights=(y_true == y_pred), minlength=num_classes)
    count = np.bincount(y_true, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, correct / np.maximum(count, 1), np.nan)


def per_group_accuracy(y_true, y_pred, class_groups):
    """Accuracy over the examples whose true class is in each group.

    Returns `{group name: accuracy}`; a group with no example in `y_true` gets NaN (its accuracy
    is undefined, e.g. when an evaluation set lacks those classes).

    Example:

    >>> per_group_accuracy([0, 0, 1, 2], [0, 1, 1, 0], {"many": [0], "few": [1, 2]})
    {'many': 0.5, 'few': 0.5}
    """
    y_true, y_pred = _labels_pair(y_true, y_pred)
    groups = check_class_groups(class_groups)
    if groups is None:
        raise ValueError("`class_groups` must be a dict {group name: class ids}; got None")
    out = {}
    for name, ids in groups.items():
        mask = np.isin(y_true, ids)
        out[name] = float(np.mean(y_true[mask] == y_pred[mask])) if mask.any() else float("nan")
    return out


def _loss_label_pair(losses, labels, name):
    losses = np.asarray(losses)
    if losses.dtype.kind not in "iuf":
        raise ValueError(f"`{name}_losses` must be numbers; got dtype {losses.dtype}")
    losses = losses.astype("float64")
    labels = np.asarray(labels)
    if losses.ndim != 1 or labels.shape != losses.shape:
        raise ValueError(
            f"`{name}_losses` and `{name}_labels` must be 1-D arrays of the same length; got "
            f"{losses.shape} and {labels.shape}"
        )
    if len(losses) == 0:
        raise ValueError(f"`{name}_losses` is empty: at least one example is needed")
    if not np.all(np.isfinite(losses)):
        raise ValueError(f"`{name}_losses` contains NaN or infinite values")
    return losses, check_labels(labels, f"{name}_labels")


def generalization_gap(train_losses, train_labels, test_losses, test_labels, class_groups=None):
    """Pre-training generalisation gap, overall and per class group.

    The gap of a set of classes is `mean(held-out loss) - mean(training loss)` over the examples
    of those classes: the paper's "train minus test" comparison, signed so that a held-out loss
    higher than the training loss gives a positive gap (0.035 frequent vs 0.081 rare in the paper).

    Returns `{"all": gap, <group>: gap, ...}`; a group without examples in either split gets NaN.

    Example:

    >>> g = generalization_gap([0.1, 0.2], [0, 1], [0.15, 0.5], [0, 1], {"many": [0], "few": [1]})
    >>> {k: round(v, 6) for k, v in g.items()}
    {'all': 0.175, 'many': 0.05, 'few': 0.3}
    """
    tr, ytr = _loss_label_pair(train_losses, train_labels, "train")
    te, yte = _loss_label_pair(test_losses, test_labels, "test")
    out = {"all": float(te.mean() - tr.mean())}
    groups = check_class_groups(class_groups)
    for name, ids in (groups or {}).items():
        mtr, mte = np.isin(ytr, ids), np.isin(yte, ids)
        if mtr.any() and mte.any():
            out[name] = float(te[mte].mean() - tr[mtr].mean())
        else:
            out[name] = float("nan")
    return out


def generalization_gap_from_model(
    model, train_images, train_labels, test_images, test_labels, class_groups=None, batch_size=256
):
    """`generalization_gap` with losses from `model.per_example_losses(images, labels, batch_size)`.

    `model` is a pre-trainer exposing `per_example_losses` (pre-training loss per example, BN in
    inference mode).

    Example (any object with `per_example_losses` works):

    >>> import numpy as np
    >>> class M:
    ...     def per_example_losses(self, images, labels=None, batch_size=256):
    ...         return images.reshape(len(images), -1).mean(axis=1)
    >>> g = generalization_gap_from_model(M(), np.zeros((2, 1)), [0, 1], np.ones((2, 1)), [0, 1])
    >>> g["all"]
    1.0
    """
    fn = getattr(model, "per_example_losses", None)
    if not callable(fn):
        raise ValueError(
            "`model` must provide `per_example_losses(images, labels=None, batch_size=...)` "
            f"(a keras_ssl_lt pre-trainer); got {type(model).__name__}"
        )
    tr = np.asarray(fn(train_images, labels=np.asarray(train_labels), batch_size=batch_size))
    te = np.asarray(fn(test_images, labels=np.asarray(test_labels), batch_size=batch_size))
    return generalization_gap(tr, train_labels, te, test_labels, class_groups)
