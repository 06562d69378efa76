"""Transfer: few-shot linear probes, and full-network fine-tuning of a copy of the encoder.

`few_shot_features` probes `shots` labelled examples per class (several seeded draws);
`fine_tune` trains a clone of the encoder with a new linear head, the backbone at a lower learning
rate through `GradientScale`. The `TransferProbe` callback calls `probe_features` and
`few_shot_features`. Inputs follow `keras_ssl_lt.evaluation.data` (the same label rule as every
other evaluation; finite features and images).
"""

import math

import keras
import numpy as np
from keras import ops

from keras_ssl_lt._checks import check_choice, check_positive_int, is_int
from keras_ssl_lt.evaluation.data import (
    as_arrays,
    check_labels,
)
from keras_ssl_lt.evaluation.linear_probe import (
    check_probe_inputs,
    check_probe_training_set,
    fit_probe,
)
from keras_ssl_lt.evaluation.metrics import (
    accuracy_summary,
    check_class_groups,
    predict_classes,
    topk_accuracy,
)

__all__ = ["GradientScale", "few_shot_features", "fine_tune"]


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
    (ValueError when a class has fewer, or when fewer than two classes are present). Without
    `num_classes`, a test label absent from the training labels raises ValueError. Returns `{"acc": mean, "acc_std": std over draws,
    "top5": mean, "accs": [per-draw accuracies]}`.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0); y = rng.integers(0, 3, 300)
    >>> x = rng.normal(size=(300, 4)) + 4 * np.eye(3, 4)[y]
    >>> r = few_shot_features(x, y, x, y, shots=5, num_draws=3)
    >>> len(r["accs"]), r["acc"] > 0.8
    (3, True)
    """
    xtr, ytr, xte, yte, num_classes = check_probe_inputs(
        train_features, train_labels, test_features, test_labels, num_classes, protocol
    )
    shots = check_positive_int(shots, "shots")
    num_draws = check_positive_int(num_draws, "num_draws")
    classes, counts = np.unique(ytr, return_counts=True)
    if counts.min() < shots:
        c = int(classes[np.argmin(counts)])
        raise ValueError(f"`shots`={shots} exceeds the {counts.min()} training examples of class {c}")
    rng = np.random.default_rng(seed)
    accs, top5s = [], []
    for _ in range(int(num_draws)):
        idx = np.concatenate([rng.choice(np.flatnonzero(ytr == c), shots, replace=False) for c in classes])
        clf = fit_probe(xtr[idx], ytr[idx], num_classes, protocol, l2, **solver_kwargs)
        logits = clf.decision_function(xte)
        accs.append(float(np.mean(predict_classes(logits) == yte)))
        top5s.append(topk_accuracy(logits, yte, 5))
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


def _check_images(x, name):
    x = np.asarray(x)
    if x.dtype.kind not in "iuf":
        raise ValueError(f"`{name}` images must be numbers; got dtype {x.dtype}")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = int(np.argmin(np.isfinite(x).reshape(len(x), -1).all(axis=1)))
        raise ValueError(f"`{name}` images contain NaN or infinite values (image {bad})")


def _clone_encoder(encoder):
    try:
        clone = keras.models.clone_model(encoder)
    except Exception:
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

    Labels follow the evaluation label rule (integer dtypes or whole-valued floats in
    `[0, num_classes)`, at least two training classes); images must be finite (a NaN image raises
    ValueError) and a training loss that turns non-finite raises FloatingPointError.

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
    if not is_int(num_classes) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an integer >= 2 (the size of the new head); got {num_classes!r}")
    ytr = check_labels(ytr, "train_data labels", num_classes)
    yte = check_labels(yte, "test_data labels", num_classes)
    check_probe_training_set(ytr, "train_data")
    for name, x in (("train_data", xtr), ("test_data", xte)):
        _check_images(x, name)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    if not (isinstance(head_lr, (int, float)) and head_lr > 0 and math.isfinite(head_lr)):
        raise ValueError(f"`head_lr` must be a positive finite number; got {head_lr!r}")
    check_choice(schedule, "schedule", ("cosine", "constant"))
    groups = check_class_groups(class_groups, num_classes)

    encoder = getattr(model_or_encoder, "encoder", None)
    if encoder is None:
        encoder = model_or_encoder
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
    hist = net.fit(xtr, ytr.astype("int32"), batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose)
    losses = np.asarray(hist.history.get("loss", []), "float64")
    if not np.all(np.isfinite(losses)):
        raise FloatingPointError(f"fine-tuning diverged (training loss {losses.tolist()}): lower `head_lr`")
    logits_te = np.asarray(net.predict(xte, batch_size=512, verbose=0))
    if not np.all(np.isfinite(logits_te)):
        raise FloatingPointError("fine-tuning produced non-finite test logits")
    out = accuracy_summary(logits_te, yte, groups)
    out["history"] = hist.history
    out["model"] = net
    return out
