"""Imbalance metrics of the paper: balanced-vs-imbalanced gap, relative gap, per-group accuracy
and the rare-class generalisation gap. Pure numpy (no backend needed), except
`generalization_gap_from_model`, which asks a pre-trainer for its per-example losses.

Class groups are a dict such as `Subset.groups`: `{"many": class ids, "medium": ..., "few": ...}`.
"""

import numpy as np

__all__ = [
    "gap",
    "relative_gap",
    "check_class_groups",
    "per_class_accuracy",
    "per_group_accuracy",
    "generalization_gap",
    "generalization_gap_from_model",
]


def gap(acc_balanced, acc_imbalanced):
    """Accuracy lost to imbalance at the same sample size: `A(n, 1) - A(n, r)`.

    Works on scalars or arrays (e.g. one entry per seed or per n).

    Example:

    >>> round(gap(0.90, 0.85), 10)
    0.05
    """
    a1 = np.asarray(acc_balanced, "float64")
    ar = np.asarray(acc_imbalanced, "float64")
    out = a1 - ar
    return float(out) if out.ndim == 0 else out


def relative_gap(acc_balanced, acc_imbalanced):
    """Relative accuracy lost to imbalance: `(A(n, 1) - A(n, r)) / A(n, 1)`.

    Raises ValueError when a balanced accuracy is not positive (the ratio is undefined).

    Example:

    >>> round(relative_gap(0.80, 0.60), 10)
    0.25
    """
    a1 = np.asarray(acc_balanced, "float64")
    if np.any(a1 <= 0):
        raise ValueError(
            f"`acc_balanced` must be positive for a relative gap; got {acc_balanced!r}"
        )
    out = (a1 - np.asarray(acc_imbalanced, "float64")) / a1
    return float(out) if out.ndim == 0 else out


def check_class_groups(class_groups, num_classes=None):
    """Validate a class-group dict and return it as `{name: int64 array of class ids}`.

    `class_groups` maps a group name (e.g. "many", "medium", "few") to class ids; `None` gives
    `None`. Raises ValueError on a non-dict, a non-string name, non-integer or repeated ids, ids
    outside `[0, num_classes)`, or a class in two groups.

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
        arr = np.asarray(ids).reshape(-1)
        if arr.size and arr.dtype.kind not in "iu":
            raise ValueError(f"`class_groups[{name!r}]` must hold integer class ids; got {arr.dtype}")
        arr = arr.astype("int64")
        if len(np.unique(arr)) != len(arr):
            raise ValueError(f"`class_groups[{name!r}]` repeats a class id: {arr.tolist()}")
        if arr.size and (arr.min() < 0 or (num_classes is not None and arr.max() >= num_classes)):
            raise ValueError(
                f"`class_groups[{name!r}]` ids must lie in [0, num_classes) = [0, {num_classes}); "
                f"got {arr.tolist()}"
            )
        for c in arr.tolist():
            if c in seen:
                raise ValueError(
                    f"class {c} is in both `class_groups[{seen[c]!r}]` and `class_groups[{name!r}]`"
                )
            seen[c] = name
        out[name] = arr
    return out


def _labels_pair(y_true, y_pred):
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(
            f"`y_true` and `y_pred` must be 1-D arrays of the same length; got {y_true.shape} "
            f"and {y_pred.shape}"
        )
    if len(y_true) == 0:
        raise ValueError("`y_true` is empty: at least one example is needed")
    return y_true.astype("int64"), y_pred.astype("int64")


def per_class_accuracy(y_true, y_pred, num_classes):
    """Accuracy of each class `0..num_classes-1` (NaN for a class with no example).

    Example:

    >>> per_class_accuracy([0, 0, 1], [0, 1, 1], 3)
    array([0.5, 1. , nan])
    """
    y_true, y_pred = _labels_pair(y_true, y_pred)
    if y_true.min() < 0 or y_true.max() >= num_classes:
        raise ValueError(f"`y_true` must lie in [0, num_classes) = [0, {num_classes})")
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
    losses = np.asarray(losses, "float64")
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
    return losses, labels.astype("int64")


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
