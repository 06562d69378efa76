"""Evaluation inputs: reading `(images, labels)` data, and the one rule for features and labels.

Every evaluation entry point (probes, kNN, few-shot, fine-tuning, metrics, callbacks) validates its
arrays here, so the accepted inputs are the same everywhere:

* **labels** are class ids: a 1-D array of an integer dtype, or of a float dtype whose values are
  all finite whole numbers (`2.0` is class 2; `1.7`, NaN and inf are refused), non-negative and
  below `num_classes` when it is given. Booleans, strings and objects are refused.
* **features** are a non-empty float `(N, D)` array with finite values (NaN or inf rows raise
  instead of becoming some class).
* when `num_classes` is not given, the classes are inferred from the *training* labels and a test
  label that never occurs in training raises (a probe cannot have learnt it; pass `num_classes` to
  evaluate on classes absent from training).
"""

import numpy as np
from keras import ops

from keras_ssl_lt import _checks
from keras_ssl_lt._checks import is_int

__all__ = [
    "as_arrays",
    "check_features",
    "check_features_labels",
    "check_labels",
    "resolve_num_classes",
]


def check_labels(labels, name="labels", num_classes=None):
    """Validate class ids and return them as an int64 array (see the module docstring for the rule).

    Example:

    >>> check_labels([0, 2.0, 1], num_classes=3).tolist()
    [0, 2, 1]
    >>> check_labels([0, 1.7])
    Traceback (most recent call last):
    ...
    ValueError: `labels` must be integer class ids (an integer dtype, or floats with whole values); got 1.7
    """
    return _checks.check_labels(labels, name, num_classes=num_classes, allow_empty=True)


def check_features(features, name="features", dim=None):
    """Validate a non-empty `(N, D)` array of finite features and return it as float32.

    Example:

    >>> check_features([[1.0, 2.0]]).dtype
    dtype('float32')
    >>> check_features([[1.0, float("nan")]], "test")
    Traceback (most recent call last):
    ...
    ValueError: `test` features contain NaN or infinite values (row 0)
    """
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(
            f"`{name}` features must be a 2-D array (N, D) of flat features; got shape {x.shape}. "
            "An encoder must end with a global pooling or Flatten layer."
        )
    if len(x) == 0:
        raise ValueError(f"`{name}` split is empty: at least one example is needed")
    if x.dtype.kind not in "iuf":
        raise ValueError(f"`{name}` features must be numbers; got dtype {x.dtype}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"`{name}` features have dimension {x.shape[1]}, but {dim} is expected")
    x = x.astype("float32", copy=False)
    finite = np.isfinite(x)
    if not np.all(finite):
        row = int(np.argmin(np.all(finite, axis=1)))
        raise ValueError(f"`{name}` features contain NaN or infinite values (row {row})")
    return x


def check_features_labels(features, labels, num_classes=None, name="train"):
    """Validate a (features, labels) pair and return them as (float32 (N, D), int32 (N,)).

    Raises ValueError naming the split when the features are not a non-empty finite 2-D array, the
    labels break the label rule (module docstring), or their lengths differ.

    Example:

    >>> import numpy as np
    >>> x, y = check_features_labels(np.zeros((3, 2)), [0, 1, 1.0], num_classes=2)
    >>> x.dtype, y.dtype
    (dtype('float32'), dtype('int32'))
    """
    x = check_features(features, name)
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(
            f"`{name}` labels must be a 1-D array with one label per example: got labels of shape "
            f"{y.shape} for {len(x)} feature rows"
        )
    y = check_labels(y, f"{name} labels", num_classes).astype("int32")
    return x, y


def resolve_num_classes(num_classes, train_labels, test_labels=None):
    """The number of classes: `num_classes` when given, else `max(train_labels) + 1` (at least 2).

    When `num_classes` is None, a test label that does not occur in `train_labels` raises (the
    classifier has never seen it); with `num_classes` given, every label must lie below it.

    Example:

    >>> resolve_num_classes(None, [0, 1, 1], [1, 0])
    2
    >>> resolve_num_classes(None, [0, 1], [2])
    Traceback (most recent call last):
    ...
    ValueError: test labels [2] never occur in the training labels; pass `num_classes` to evaluate on classes absent from training
    """
    ytr = check_labels(train_labels, "train labels")
    yte = None if test_labels is None else check_labels(test_labels, "test labels")
    if num_classes is None:
        if yte is not None:
            unseen = np.setdiff1d(yte, ytr)
            if unseen.size:
                shown = unseen[:10].tolist()
                raise ValueError(
                    f"test labels {shown}{' ...' if unseen.size > 10 else ''} never occur in the training labels; "
                    "pass `num_classes` to evaluate on classes absent from training"
                )
        return max(int(ytr.max()) + 1 if ytr.size else 0, 2)
    if not is_int(num_classes) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an integer >= 2; got {num_classes!r}")
    for name, y in (("train", ytr), ("test", yte)):
        if y is not None and y.size and y.max() >= num_classes:
            raise ValueError(f"{name} labels must lie in [0, num_classes) = [0, {num_classes}); got {int(y.max())}")
    return int(num_classes)


def as_arrays(data, name="data"):
    """Return `(images, labels)` numpy arrays from a tuple or an iterable of batches.

    `data` is an `(images, labels)` tuple of arrays, or an iterable (a `tf.data.Dataset`, a list of
    batches, a `keras.utils.PyDataset`-like object) yielding `{"images": ..., "labels": ...}` dicts or
    `(images, labels)` tuples, read once into memory. Labels are checked with `check_labels`.

    Example:

    >>> import numpy as np
    >>> x, y = as_arrays([{"images": np.zeros((2, 4, 4, 3)), "labels": np.array([0, 1])}] * 2)
    >>> x.shape, y.tolist()
    ((4, 4, 4, 3), [0, 1, 0, 1])
    """
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], dict):
        first = np.asarray(data[0]) if not isinstance(data[0], (tuple, list, dict)) else None
        if first is not None and first.ndim >= 2:
            return _check_pair(first, np.asarray(data[1]), name)
    if isinstance(data, dict):
        raise ValueError(
            f"`{name}` must be an (images, labels) tuple or an iterable of batches; got a dict "
            "(wrap a single batch in a list: [batch])"
        )
    if not hasattr(data, "__iter__"):
        raise ValueError(
            f"`{name}` must be an (images, labels) tuple of arrays or an iterable of batches; got {type(data).__name__}"
        )
    it = data.as_numpy_iterator() if hasattr(data, "as_numpy_iterator") else iter(data)
    xs, ys = [], []
    for batch in it:
        if isinstance(batch, dict):
            if "images" not in batch or "labels" not in batch:
                raise ValueError(f"batches of `{name}` must have keys 'images' and 'labels'; got {sorted(batch)}")
            xb, yb = batch["images"], batch["labels"]
        elif isinstance(batch, (tuple, list)) and len(batch) >= 2:
            xb, yb = batch[0], batch[1]
        else:
            raise ValueError(
                f"batches of `{name}` must be dicts with 'images'/'labels' or (images, labels) "
                f"tuples; got {type(batch).__name__}"
            )
        xs.append(xb if isinstance(xb, np.ndarray) else np.asarray(ops.convert_to_numpy(xb)))
        ys.append(yb if isinstance(yb, np.ndarray) else np.asarray(ops.convert_to_numpy(yb)))
    if not xs:
        raise ValueError(f"`{name}` is empty: it yielded no batch")
    return _check_pair(np.concatenate(xs), np.concatenate(ys).reshape(-1), name)


def _check_pair(images, labels, name):
    if len(images) == 0:
        raise ValueError(f"`{name}` is empty: at least one example is needed")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"`{name}` has {len(images)} images but labels of shape {labels.shape}: one integer "
            "label per image is needed"
        )
    return images, check_labels(labels, f"{name} labels")
