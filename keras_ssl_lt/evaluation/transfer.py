"""Representation evaluation as functions: linear probe, kNN, few-shot probe, full fine-tuning.

The callbacks in `keras_ssl_lt.callbacks` call these once per evaluated epoch. The `*_features`
functions take feature arrays; the others take a model (a pre-trainer with `encoder` /
`augmenter`, or a plain encoder) and `(images, labels)` data and extract features with
`keras_ssl_lt.features.extract_features` (frozen encoder, inference mode).

Data (`train_data`, `test_data`): a tuple `(images, labels)` of arrays, or an iterable (e.g. a
`tf.data.Dataset` or a list of batches) yielding `{"images": ..., "labels": ...}` dicts or
`(images, labels)` tuples, which is read once into memory.
"""

import math

import numpy as np
import keras
from keras import ops

from keras_ssl_lt import probes
from keras_ssl_lt.features import extract_features
from keras_ssl_lt.metrics import check_class_groups, per_group_accuracy

__all__ = [
    "as_arrays",
    "probe_features",
    "linear_probe",
    "knn_features",
    "knn",
    "few_shot_features",
    "fine_tune",
    "GradientScale",
]

PROTOCOLS = ("convex", "paper")


# --------------------------------------------------------------------------- data


def as_arrays(data, name="data"):
    """Return `(images, labels)` numpy arrays from a tuple or an iterable of batches.

    Example:

    >>> import numpy as np
    >>> x, y = as_arrays([{"images": np.zeros((2, 4, 4, 3)), "labels": np.array([0, 1])}] * 2)
    >>> x.shape, y.tolist()
    ((4, 4, 4, 3), [0, 1, 0, 1])
    """
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], dict):
        first = np.asarray(data[0]) if not isinstance(data[0], (tuple, list, dict)) else None
        if first is not None and first.ndim >= 2:
            images, labels = first, np.asarray(data[1])
            return _check_pair(images, labels, name)
    if isinstance(data, dict):
        raise ValueError(
            f"`{name}` must be an (images, labels) tuple or an iterable of batches; got a dict "
            "(wrap a single batch in a list: [batch])"
        )
    if not hasattr(data, "__iter__"):
        raise ValueError(
            f"`{name}` must be an (images, labels) tuple of arrays or an iterable of batches; got "
            f"{type(data).__name__}"
        )
    it = data.as_numpy_iterator() if hasattr(data, "as_numpy_iterator") else iter(data)
    xs, ys = [], []
    for batch in it:
        if isinstance(batch, dict):
            if "images" not in batch or "labels" not in batch:
                raise ValueError(
                    f"batches of `{name}` must have keys 'images' and 'labels'; got {sorted(batch)}"
                )
            xb, yb = batch["images"], batch["labels"]
        elif isinstance(batch, (tuple, list)) and len(batch) >= 2:
            xb, yb = batch[0], batch[1]
        else:
            raise ValueError(
                f"batches of `{name}` must be dicts with 'images'/'labels' or (images, labels) "
                f"tuples; got {type(batch).__name__}"
            )
        xs.append(np.asarray(ops.convert_to_numpy(xb) if not isinstance(xb, np.ndarray) else xb))
        ys.append(np.asarray(ops.convert_to_numpy(yb) if not isinstance(yb, np.ndarray) else yb))
    if not xs:
        raise ValueError(f"`{name}` is empty: it yielded no batch")
    return _check_pair(np.concatenate(xs), np.concatenate(ys).reshape(-1), name)


def _check_pair(images, labels, name):
    if len(images) == 0:
        raise ValueError(f"`{name}` is empty: at least one example is needed")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"`{name}` has {len(images)} images but labels of shape {labels.shape}: one integer "
            "label per image is needed"
        )
    return images, labels


def _result_dict(logits, y, class_groups):
    pred = np.argmax(logits, axis=1)
    out = {
        "acc": float(np.mean(pred == y)),
        "top5": probes.topk_accuracy(logits, y, k=5),
    }
    if class_groups is not None:
        for g, acc in per_group_accuracy(y, pred, class_groups).items():
            out[f"acc_{g}"] = acc
    return out


# --------------------------------------------------------------------------- linear probe


def _fit_probe(x, y, num_classes, protocol, l2, solver_kwargs):
    if protocol not in PROTOCOLS:
        raise ValueError(f"`protocol` must be one of {PROTOCOLS}; got {protocol!r}")
    if protocol == "convex":
        return probes.fit_logistic_regression(x, y, num_classes, l2=l2, **solver_kwargs)
    return probes.fit_linear_sgd(x, y, num_classes, **solver_kwargs)


def probe_features(
    train_features,
    train_labels,
    test_features,
    test_labels,
    num_classes=None,
    class_groups=None,
    protocol="convex",
    l2=1e-4,
    return_classifier=False,
    **solver_kwargs,
):
    """Linear probe on feature arrays: fit on train, report test accuracy.

    `protocol="convex"` fits the L2-regularised logistic regression (`probes.fit_logistic_regression`,
    standardised features, penalty `l2` on the mean loss); `protocol="paper"` runs the paper's SGD
    protocol (`probes.fit_linear_sgd`; `l2` unused). Extra keyword arguments go to the solver.

    Returns `{"acc", "top5", "acc_<group>" for each class group}` (and the `LinearClassifier`
    as a second value when `return_classifier=True`).

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0); y = rng.integers(0, 3, 200)
    >>> x = rng.normal(size=(200, 4)) + 4 * np.eye(3, 4)[y]
    >>> probe_features(x, y, x, y, class_groups={"many": [0, 1], "few": [2]})["acc"] > 0.9
    True
    """
    xtr, ytr = probes.check_features_labels(train_features, train_labels, num_classes, "train")
    xte, yte = probes.check_features_labels(test_features, test_labels, num_classes, "test")
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(
            f"train features have dimension {xtr.shape[1]} but test features {xte.shape[1]}"
        )
    num_classes = probes._check_num_classes(num_classes, ytr, yte)
    groups = check_class_groups(class_groups, num_classes)
    clf = _fit_probe(xtr, ytr, num_classes, protocol, l2, solver_kwargs)
    out = _result_dict(clf.decision_function(xte), yte, groups)
    return (out, clf) if return_classifier else out


def linear_probe(model, train_data, test_data, feature_batch_size=512, **kwargs):
    """Linear probe of a model's frozen encoder: features in inference mode, then `probe_features`.

    Example:

    >>> import numpy as np, keras
    >>> enc = keras.Sequential([keras.layers.Flatten()])
    >>> rng = np.random.default_rng(0); y = rng.integers(0, 2, 64)
    >>> x = (rng.normal(size=(64, 2, 2, 1)) + 3 * y[:, None, None, None]).astype("float32")
    >>> linear_probe(enc, (x, y), (x, y))["acc"] > 0.9
    True
    """
    xtr, ytr = as_arrays(train_data, "train_data")
    xte, yte = as_arrays(test_data, "test_data")
    ftr = extract_features(model, xtr, batch_size=feature_batch_size)
    fte = extract_features(model, xte, batch_size=feature_batch_size)
    return probe_features(ftr, ytr, fte, yte, **kwargs)


# --------------------------------------------------------------------------- kNN


def knn_features(
    train_features,
    train_labels,
    test_features,
    test_labels,
    num_classes=None,
    class_groups=None,
    k=200,
    temperature=0.1,
    **knn_kwargs,
):
    """Weighted cosine kNN accuracy on feature arrays (`probes.knn_predict`).

    Returns `{"acc", "top5", "acc_<group>" ...}`.

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0], [0.9, 0.2], [0.0, 1.0], [0.1, 0.9]]); y = np.array([0, 0, 1, 1])
    >>> knn_features(x, y, x, y, k=2)["acc"]
    1.0
    """
    xtr, ytr = probes.check_features_labels(train_features, train_labels, num_classes, "train")
    xte, yte = probes.check_features_labels(test_features, test_labels, num_classes, "test")
    num_classes = probes._check_num_classes(num_classes, ytr, yte)
    groups = check_class_groups(class_groups, num_classes)
    _, votes = probes.knn_predict(
        xtr, ytr, xte, num_classes, k=k, temperature=temperature, return_scores=True, **knn_kwargs
    )
    return _result_dict(votes, yte, groups)


def knn(model, train_data, test_data, feature_batch_size=512, **kwargs):
    """kNN accuracy of a model's frozen encoder (features in inference mode, then `knn_features`).

    Example:

    >>> import numpy as np, keras
    >>> enc = keras.Sequential([keras.layers.Flatten()])
    >>> x = np.array([[1.0, 0.0], [0.9, 0.2], [0.0, 1.0], [0.1, 0.9]]).reshape(4, 1, 2, 1)
    >>> knn(enc, (x, [0, 0, 1, 1]), (x, [0, 0, 1, 1]), k=2)["acc"]
    1.0
    """
    xtr, ytr = as_arrays(train_data, "train_data")
    xte, yte = as_arrays(test_data, "test_data")
    ftr = extract_features(model, xtr, batch_size=feature_batch_size)
    fte = extract_features(model, xte, batch_size=feature_batch_size)
    return knn_features(ftr, ytr, fte, yte, **kwargs)


# --------------------------------------------------------------------------- few-shot


def few_shot_features(
    train_features,
    train_labels,
    test_features,
    test_labels,
    shots,
    num_draws=5,
    seed=0,
    num_classes=None,
    protocol="convex",
    l2=1e-4,
    **solver_kwargs,
):
    """Few-shot linear probe: `shots` labelled examples per class, `num_draws` random draws.

    Every class present in the training labels contributes exactly `shots` examples to each draw
    (ValueError when a class has fewer). Returns `{"acc": mean, "acc_std": std over draws,
    "top5": mean, "accs": [per-draw accuracies]}`.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0); y = rng.integers(0, 3, 300)
    >>> x = rng.normal(size=(300, 4)) + 4 * np.eye(3, 4)[y]
    >>> r = few_shot_features(x, y, x, y, shots=5, num_draws=3)
    >>> len(r["accs"]), r["acc"] > 0.8
    (3, True)
    """
    xtr, ytr = probes.check_features_labels(train_features, train_labels, num_classes, "train")
    xte, yte = probes.check_features_labels(test_features, test_labels, num_classes, "test")
    num_classes = probes._check_num_classes(num_classes, ytr, yte)
    if not isinstance(shots, (int, np.integer)) or shots < 1:
        raise ValueError(f"`shots` must be a positive integer; got {shots!r}")
    if not isinstance(num_draws, (int, np.integer)) or num_draws < 1:
        raise ValueError(f"`num_draws` must be a positive integer; got {num_draws!r}")
    classes, counts = np.unique(ytr, return_counts=True)
    if counts.min() < shots:
        c = int(classes[np.argmin(counts)])
        raise ValueError(
            f"`shots`={shots} exceeds the {counts.min()} training examples of class {c}"
        )
    rng = np.random.default_rng(seed)
    accs, top5s = [], []
    for _ in range(int(num_draws)):
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(ytr == c), shots, replace=False) for c in classes]
        )
        clf = _fit_probe(xtr[idx], ytr[idx], num_classes, protocol, l2, solver_kwargs)
        logits = clf.decision_function(xte)
        accs.append(float(np.mean(np.argmax(logits, 1) == yte)))
        top5s.append(probes.topk_accuracy(logits, yte, 5))
    return {
        "acc": float(np.mean(accs)),
        "acc_std": float(np.std(accs)),
        "top5": float(np.mean(top5s)),
        "accs": accs,
    }


# --------------------------------------------------------------------------- fine-tuning


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class GradientScale(keras.layers.Layer):
    """Identity in the forward pass; multiplies the gradient flowing back through it by
    `multiplier`.

    Placed after a backbone, it scales the gradient of every backbone weight by `multiplier`,
    which under (momentum / Nesterov) SGD without weight decay is exactly a learning-rate
    multiplier for the backbone, on every backend.

    Example:

    >>> import keras
    >>> keras.ops.convert_to_numpy(GradientScale(0.1)(keras.ops.ones((1, 2)))).tolist()
    [[1.0, 1.0]]
    """

    def __init__(self, multiplier=0.1, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(multiplier, (int, float)) and 0 <= multiplier and math.isfinite(multiplier)):
            raise ValueError(f"`multiplier` must be a finite number >= 0; got {multiplier!r}")
        self.multiplier = float(multiplier)

    def call(self, x):
        m = self.multiplier
        return m * x + (1.0 - m) * ops.stop_gradient(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "multiplier": self.multiplier}


def _clone_encoder(encoder):
    try:
        clone = keras.models.clone_model(encoder)
    except Exception:  # subclassed encoders: rebuild from their config
        clone = encoder.__class__.from_config(encoder.get_config())
    if not clone.built and getattr(encoder, "input_shape", None) is not None:
        clone.build(encoder.input_shape)
    clone.set_weights(encoder.get_weights())
    return clone


def fine_tune(
    model_or_encoder,
    train_data,
    test_data,
    num_classes,
    epochs,
    head_lr,
    backbone_lr_multiplier=0.1,
    momentum=0.9,
    nesterov=True,
    weight_decay=0.0,
    batch_size=128,
    schedule="cosine",
    augmentation=None,
    class_groups=None,
    seed=0,
    verbose=0,
):
    """Full-network transfer: a copy of the encoder plus a new linear head, trained end to end.

    The encoder is cloned (same architecture and weights); the original model is never modified.
    The model's `augmenter` (if any) is applied once up front in inference mode as preprocessing.
    The optimiser is SGD with `momentum` / `nesterov`, learning rate `head_lr` (cosine-decayed to
    zero over training when `schedule="cosine"`, constant for `"constant"`); the backbone learns
    at `backbone_lr_multiplier * head_lr` through a `GradientScale` layer (exact for SGD without
    weight decay; decoupled `weight_decay`, when used, is applied at the head rate to all weights).
    `augmentation`: optional Keras layer(s) applied to the (preprocessed) inputs during training
    only (e.g. `keras.layers.RandomFlip("horizontal")`).

    Returns `{"acc", "top5", "acc_<group>" ..., "history": {...}, "model": fine-tuned keras.Model}`.

    Example:

    >>> import numpy as np, keras
    >>> enc = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(8)])
    >>> x = np.random.default_rng(0).normal(size=(32, 4, 4, 3)).astype("float32"); y = np.arange(32) % 2
    >>> r = fine_tune(enc, (x, y), (x, y), num_classes=2, epochs=1, head_lr=0.01)
    >>> sorted(k for k in r if k.startswith("acc") or k == "top5")
    ['acc', 'top5']
    """
    xtr, ytr = as_arrays(train_data, "train_data")
    xte, yte = as_arrays(test_data, "test_data")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an integer >= 2; got {num_classes!r}")
    for name, y in (("train_data", ytr), ("test_data", yte)):
        if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= num_classes:
            raise ValueError(
                f"labels of `{name}` must be integers in [0, num_classes) = [0, {num_classes})"
            )
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"`epochs` must be a positive integer; got {epochs!r}")
    if not (isinstance(head_lr, (int, float)) and head_lr > 0):
        raise ValueError(f"`head_lr` must be a positive number; got {head_lr!r}")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"`schedule` must be 'cosine' or 'constant'; got {schedule!r}")
    groups = check_class_groups(class_groups, num_classes)

    encoder = getattr(model_or_encoder, "encoder", None) or model_or_encoder
    augmenter = getattr(model_or_encoder, "augmenter", None)
    if augmenter is not None:
        pre = keras.Sequential([augmenter])
        xtr = np.asarray(pre.predict(xtr, batch_size=512, verbose=0))
        xte = np.asarray(pre.predict(xte, batch_size=512, verbose=0))
    keras.utils.set_random_seed(seed)
    backbone = _clone_encoder(encoder)

    inp = keras.Input(xtr.shape[1:])
    h = inp
    if augmentation is not None:
        for layer in augmentation if isinstance(augmentation, (list, tuple)) else [augmentation]:
            h = layer(h)
    feats = backbone(h)
    if len(feats.shape) != 2:
        raise ValueError(
            f"the encoder must output flat features (batch, dim); got shape {tuple(feats.shape)}. "
            "Add a global pooling or Flatten layer at the end of the encoder."
        )
    feats = GradientScale(backbone_lr_multiplier, name="backbone_lr_multiplier")(feats)
    logits = keras.layers.Dense(num_classes, name="head")(feats)
    net = keras.Model(inp, logits, name="fine_tune")

    steps = math.ceil(len(xtr) / batch_size) * epochs
    lr = keras.optimizers.schedules.CosineDecay(head_lr, steps) if schedule == "cosine" else head_lr
    opt = keras.optimizers.SGD(
        learning_rate=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay or None
    )
    net.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    hist = net.fit(
        xtr, ytr.astype("int32"), batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose
    )
    logits_te = np.asarray(net.predict(xte, batch_size=512, verbose=0))
    out = _result_dict(logits_te, yte.astype("int64"), groups)
    out["history"] = hist.history
    out["model"] = net
    return out
