"""Linear probes: the on-device logistic-regression solvers and the probe of a frozen encoder.

The iterations (every product of size N, the examples) run with `keras.ops` on the backend's device;
the standardisation statistics and the (D+1) x (D+1) Gram matrix and its factorisation are computed once
on the host in float64.

* `fit_logistic_regression`: the convex L2-regularised multinomial logistic regression
  (the same objective as scikit-learn's `LogisticRegression`), solved full-batch by an
  accelerated bound-optimisation method (Boehning's quadratic bound as preconditioner,
  Nesterov momentum with adaptive restart).
* `fit_linear_sgd`: the paper's probe protocol (mini-batch SGD, lr 30, momentum 0.9, 100
  epochs, lr x0.1 at epochs 60 and 80, batch 256, no weight decay) with a Keras `Dense` + `fit`.
* `probe_features` / `linear_probe`: fit on training features, report test accuracy (on feature
  arrays, or on a model's frozen encoder).

Inputs follow `keras_ssl_lt.evaluation.data` (finite features; integer, or whole-valued float,
labels); a training set must hold at least two classes. Predictions and top-k use the package's tie
rule (`keras_ssl_lt.evaluation.metrics`: the lowest class id wins a tie).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops
from numpy.typing import ArrayLike

from keras_ssl_lt._checks import check_choice, check_positive_int
from keras_ssl_lt.evaluation.data import (
    as_arrays,
    check_features,
    check_features_labels,
    resolve_num_classes,
)
from keras_ssl_lt.evaluation.features import extract_features
from keras_ssl_lt.evaluation.metrics import (
    accuracy_summary,
    check_class_groups,
    predict_classes,
    topk_accuracy,
)

__all__ = [
    "PROTOCOLS",
    "LinearClassifier",
    "check_probe_inputs",
    "check_probe_training_set",
    "fit_linear_sgd",
    "fit_logistic_regression",
    "fit_probe",
    "linear_probe",
    "probe_features",
]

PROTOCOLS = ("convex", "paper")


def check_probe_training_set(labels, name="train"):
    """A probe needs at least two classes among its training labels (as scikit-learn requires).

    Example:

    >>> check_probe_training_set([0, 0, 0])
    Traceback (most recent call last):
    ...
    ValueError: `train` labels hold a single class (0): a classifier needs at least two classes to fit
    """
    classes = np.unique(np.asarray(labels))
    if classes.size < 2:
        raise ValueError(
            f"`{name}` labels hold a single class ({', '.join(str(int(c)) for c in classes)}): a classifier needs "
            "at least two classes to fit"
        )


def check_probe_inputs(train_features, train_labels, test_features, test_labels, num_classes=None, protocol="convex"):
    """The input checks of every probe on train / test feature arrays; returns `(xtr, ytr, xte, yte, num_classes)`.

    `protocol` one of `PROTOCOLS`; features and labels by `keras_ssl_lt.evaluation.data` (`check_features_labels`,
    named "train" and "test"); the same feature dimension on both sides; `num_classes` resolved from both label
    sets when None (`resolve_num_classes`: a test label absent from the training labels is refused); at least two
    training classes (`check_probe_training_set`). Used by `probe_features`, `transfer.few_shot_features` and the
    long-tail probes (`evaluation.longtail`).

    Example:

    >>> import numpy as np
    >>> check_probe_inputs(np.zeros((2, 3)), [0, 1], np.zeros((1, 3)), [1])[-1]
    2
    >>> check_probe_inputs(np.zeros((2, 3)), [0, 1], np.zeros((1, 4)), [1])
    Traceback (most recent call last):
    ...
    ValueError: train features have dimension 3 but test features 4
    """
    check_choice(protocol, "protocol", PROTOCOLS)
    xtr, ytr = check_features_labels(train_features, train_labels, num_classes, "train")
    xte, yte = check_features_labels(test_features, test_labels, num_classes, "test")
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"train features have dimension {xtr.shape[1]} but test features {xte.shape[1]}")
    num_classes = resolve_num_classes(num_classes, ytr, yte)
    check_probe_training_set(ytr)
    return xtr, ytr, xte, yte, num_classes


class LinearClassifier:
    """A fitted linear probe: `logits = ((x - mean) / scale) @ kernel + bias`.

    Attributes (numpy): `kernel` (D, C), `bias` (C,), `mean` (D,), `scale` (D,); and `n_iter`,
    `converged`, `l2` describing the fit (`fit_logistic_regression` adds `split_products`: whether
    the device's float32 products were found to round to TF32, so the solver split them).

    Example:

    >>> import numpy as np
    >>> clf = LinearClassifier(np.eye(2, dtype="float32"), np.zeros(2, "float32"))
    >>> clf.predict(np.array([[1.0, 0.0], [0.0, 2.0]]))
    array([0, 1])
    """

    def __init__(self, kernel, bias, mean=None, scale=None, n_iter=0, converged=True, l2=None):
        self.kernel = np.asarray(kernel, "float32")
        self.bias = np.asarray(bias, "float32")
        if self.kernel.ndim != 2 or self.bias.shape != (self.kernel.shape[1],):
            raise ValueError(f"`kernel` must be (D, C) and `bias` (C,); got {self.kernel.shape} and {self.bias.shape}")
        d = self.kernel.shape[0]
        self.mean = np.zeros(d, "float32") if mean is None else np.asarray(mean, "float32")
        self.scale = np.ones(d, "float32") if scale is None else np.asarray(scale, "float32")
        if self.mean.shape != (d,) or self.scale.shape != (d,) or np.any(self.scale <= 0):
            raise ValueError(f"`mean` and `scale` must be ({d},) arrays, `scale` positive")
        self.n_iter = int(n_iter)
        self.converged = bool(converged)
        self.l2 = l2

    @property
    def num_classes(self):
        return self.kernel.shape[1]

    def decision_function(self, features, batch_size=65536):
        """Logits (N, C) as numpy, computed on device with `keras.ops`.

        Raises ValueError on features with NaN or inf values (they would otherwise become a class)
        and FloatingPointError when the logits overflow float32.
        """
        x = check_features(features, "features", dim=self.kernel.shape[0])
        w = ops.convert_to_tensor(self.kernel)
        b = ops.convert_to_tensor(self.bias)
        mu = ops.convert_to_tensor(self.mean)
        sc = ops.convert_to_tensor(self.scale)
        out = []
        for s in range(0, len(x), batch_size):
            xb = (ops.convert_to_tensor(x[s : s + batch_size]) - mu) / sc
            out.append(ops.convert_to_numpy(ops.matmul(xb, w) + b))
        logits = np.concatenate(out)
        if not np.all(np.isfinite(logits)):
            raise FloatingPointError("the logits overflow float32: the features are too large for this classifier")
        return logits

    def predict(self, features):
        """Predicted class ids (N,): the largest logit, the lowest class id on ties."""
        return predict_classes(self.decision_function(features))

    def score(self, features, labels, k=1):
        """Top-`k` accuracy on (features, labels), with the same tie rule as `predict` (k=1 is its accuracy)."""
        return topk_accuracy(self.decision_function(features), labels, k=k)


def _standardisation(x, standardize, chunk=8192):
    """Training mean and std per feature (float64 on the host, in row chunks), robust to any finite float32.

    A column whose spread is below float32 resolution relative to its magnitude (std <= 1e-6 of its largest
    absolute value: a constant feature) keeps scale 1 and becomes exactly zero after centring.
    """
    n, d = x.shape
    if not standardize:
        return np.zeros(d, "float32"), np.ones(d, "float32")
    mean = np.sum(x, axis=0, dtype="float64") / n
    sq = np.zeros(d)
    for s in range(0, n, chunk):
        sq += np.sum(np.square(x[s : s + chunk].astype("float64") - mean), axis=0)
    std = np.sqrt(sq / n)
    peak = np.max(np.abs(x), axis=0).astype("float64")
    std = np.where(std > 1e-6 * peak, std, 1.0)
    return mean.astype("float32"), std.astype("float32")


def _standardised_gram(x, mean, scale, sw, chunk=8192):
    """The float32 standardised features `[(x - mean) / scale, 1]` (N, D+1) and their weighted Gram matrix
    `sum_i sw_i xa_i xa_i^T` in float64, both from the same float32 values (host, row chunks)."""
    n, d = x.shape
    xa = np.empty((n, d + 1), "float32")
    xa[:, d] = 1.0
    gram = np.zeros((d + 1, d + 1))
    m64, s64 = mean.astype("float64"), scale.astype("float64")
    for s in range(0, n, chunk):
        xa[s : s + chunk, :d] = (x[s : s + chunk].astype("float64") - m64) / s64
        block = xa[s : s + chunk].astype("float64")
        gram += (block * sw[s : s + chunk, None]).T @ block
    return xa, gram


# Veltkamp splitting: `hi` keeps the 11 leading significant bits of a float32 and is exact in TF32, the format in
# which GPUs multiply float32 matrices by default (JAX and TensorFlow on Ampere and later GPUs); `lo = a - hi`
# is exact. A product from the pieces, hi @ hi + hi @ lo + lo @ hi, is then about float32-accurate on such a
# device too (the dropped lo @ lo is 2**-22 of the product), where a plain float32 product keeps only ~3 digits.
_SPLITTER = 8193.0  # 2**13 + 1


def _split(a, exact=False):
    """`(hi, lo)` with `hi + lo == a`; `(a, None)` when `exact` (the device multiplies in full float32)."""
    if exact:
        return a, None
    c = a * _SPLITTER
    hi = c - (c - a)
    return hi, a - hi


def _dot(a, b):
    """`a @ b` of two `_split` pairs, accurate to about float32 also where the device multiplies in TF32."""
    (ah, al), (bh, bl) = a, b
    if al is None and bl is None:
        return ops.matmul(ah, bh)
    return ops.matmul(ah, bh) + (ops.matmul(ah, bl) + ops.matmul(al, bh))


def _matmul_is_float32(*shapes):
    """Whether the device multiplies float32 matrices of these `(n, k, m)` shapes in full float32.

    One product per shape with a single non-zero column `1 + 2**-12` against ones: exactly `1 + 2**-12` in
    float32, `1.0` where the inputs are rounded to TF32 (10 mantissa bits) or bfloat16. The shapes are those
    of the solver's products, since a library may pick its kernel (and its arithmetic) by shape.
    """
    value = 1.0 + 2.0**-12
    for n, k, m in shapes:
        a = ops.pad(ops.full((n, 1), value, dtype="float32"), [[0, 0], [0, k - 1]])
        out = ops.convert_to_numpy(ops.matmul(a, ops.ones((k, m), dtype="float32")))
        if not np.all(out == np.float32(value)):
            return False
    return True


def fit_logistic_regression(
    features,
    labels,
    num_classes=None,
    l2=1e-4,
    C=None,
    standardize=True,
    max_iter=1000,
    tol=1e-4,
    check_every=5,
    sample_weight=None,
):
    """Multinomial logistic regression with L2 penalty, solved full-batch on device.

    Minimises `mean_i CE(W x_i + b, y_i) + (l2 / 2) * ||W||^2` (bias not penalised), the objective
    of scikit-learn's `LogisticRegression(C=1 / (l2 * N))` up to the factor `C * N`. Features are
    standardised with the training mean/std first when `standardize=True`.

    The solver is Boehning's quadratic-bound method (the softmax cross-entropy Hessian is bounded
    by `0.5 (I - 11^T / C) (x) E[x x^T]`, whose inverse is a fixed preconditioner) with Nesterov
    momentum and gradient-based adaptive restart. The mean, std and Gram matrix `E[x x^T]` are
    computed once on the host in float64: the bound must hold in every direction, also the weak ones of
    nearly collapsed or highly correlated features, where a float32 Gram's rounding exceeds the penalty.
    Each iteration costs a few (N, D) x (D, C) matrix products on the backend's device, each done
    as three products of split operands (`_dot`), so they stay float32-accurate where the device
    multiplies float32 matrices in TF32 (JAX and TensorFlow on recent GPUs). Stops when the largest
    absolute gradient entry is below `tol` (scikit-learn's lbfgs criterion) or after `max_iter`
    iterations.

    Args:
        features: (N, D) finite float array. labels: (N,) class ids in `[0, num_classes)`, at least
            two distinct classes.
        num_classes: number of classes (default: `max(labels) + 1`).
        l2: penalty on the mean loss; ignored when `C` is given (then `l2 = 1 / (C * N)`).
        C: scikit-learn's inverse regularisation strength (penalty on the summed loss).
        standardize: standardise features with the training mean and std.
        max_iter, tol, check_every: stopping rule (the gradient is checked every `check_every`
            iterations).
        sample_weight: optional (N,) non-negative weights (the mean becomes a weighted mean).

    Returns:
        a `LinearClassifier`.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 300)
    >>> x = rng.normal(size=(300, 5)) + 3 * np.eye(3, 5)[y]
    >>> clf = fit_logistic_regression(x, y, l2=1e-3)
    >>> clf.score(x, y) > 0.9
    True
    """
    x, y = check_features_labels(features, labels, num_classes, name="train")
    check_probe_training_set(y)
    num_classes = resolve_num_classes(num_classes, y)
    n, d = x.shape
    if C is not None:
        if not (isinstance(C, (int, float)) and C > 0 and math.isfinite(C)):
            raise ValueError(f"`C` must be a positive finite number; got {C!r}")
        l2 = 1.0 / (float(C) * n)
    if not (isinstance(l2, (int, float)) and l2 > 0 and math.isfinite(l2)):
        raise ValueError(f"`l2` must be a positive finite number; got {l2!r}")
    max_iter = check_positive_int(max_iter, "max_iter")
    check_every = check_positive_int(check_every, "check_every")
    if not (isinstance(tol, (int, float)) and tol > 0 and math.isfinite(tol)):
        raise ValueError(f"`tol` must be a positive finite number; got {tol!r}")
    if sample_weight is None:
        sw = np.full((n,), 1.0 / n)
    else:
        sw = np.asarray(sample_weight, "float64")
        if sw.shape != (n,) or np.any(sw < 0) or not np.all(np.isfinite(sw)) or sw.sum() <= 0:
            raise ValueError(f"`sample_weight` must be ({n},) non-negative finite weights with a positive sum")
        sw = sw / sw.sum()
    l2 = float(l2)

    mean, scale = _standardisation(x, standardize)
    xa_np, gram = _standardised_gram(x, mean, scale, sw)
    if not np.max(np.abs(gram)) < np.finfo("float32").max / (d + 1):
        raise ValueError(
            f"the features are too large for float32 without standardisation (largest |x| = {np.max(np.abs(x)):.3g}): "
            "pass `standardize=True` or rescale the features"
        )
    swt = ops.convert_to_tensor(sw.astype("float32"))[:, None]
    yw = ops.one_hot(ops.convert_to_tensor(y), num_classes) * swt  # weighted one-hot (N, C)
    # Full float32 products where the device has them; split products where it rounds to TF32 (see `_dot`).
    exact = _matmul_is_float32((n, d + 1, num_classes), (d + 1, n, num_classes), (d + 1, d + 1, num_classes))
    xa = ops.convert_to_tensor(xa_np)
    xa_s = _split(xa, exact)
    xat_s = _split(ops.transpose(xa), exact)
    del xa_np, xa

    # Preconditioner from Boehning's bound, on the augmented features [x, 1] (host, float64).
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    # Class-contrast directions: curvature <= 0.5 * gram + l2 (bias unpenalised).
    bound = 0.5 * gram + np.diag(reg)
    evals, evecs = np.linalg.eigh(bound)
    floor = max(float(evals.max()) * 1e-12, 1e-30)
    precond = (evecs / np.maximum(evals, floor)) @ evecs.T
    # Scaled by a power of two to entries of order 1 (exact), so that splitting it cannot overflow.
    p_scale = float(2.0 ** np.ceil(np.log2(np.max(np.abs(precond)))))
    precond_s = _split(ops.convert_to_tensor((precond / p_scale).astype("float32")), exact)
    inv_reg = np.where(reg > 0, 1.0 / np.where(reg > 0, reg, 1.0), 0.0).astype("float32")
    inv_reg_t = ops.convert_to_tensor(inv_reg)[:, None]
    reg_t = ops.convert_to_tensor(reg.astype("float32"))[:, None]

    def gradient(theta):
        logits = _dot(xa_s, _split(theta, exact))
        probs = ops.softmax(logits, axis=-1)
        resid = probs * swt - yw
        return _dot(xat_s, _split(resid, exact)) + reg_t * theta

    def precondition(g):
        # Split each row into its mean over classes (only the penalty acts there: exact step)
        # and the class-contrast part (bounded by the Boehning matrix).
        g_mean = ops.mean(g, axis=1, keepdims=True)
        g_contrast = g - g_mean
        return _dot(precond_s, _split(g_contrast, exact)) * p_scale + inv_reg_t * g_mean

    theta = ops.zeros((d + 1, num_classes), dtype="float32")
    z = theta
    t = 1.0
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        g = gradient(z)
        if it % check_every == 0 or it == max_iter:
            gmax = float(ops.convert_to_numpy(ops.max(ops.abs(g))))
            if not math.isfinite(gmax):
                raise FloatingPointError("logistic regression diverged (non-finite gradient)")
            if gmax < tol:
                theta = z
                converged = True
                break
        theta_new = z - precondition(g)
        step = theta_new - theta
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        # Adaptive restart (O'Donoghue & Candes): drop the momentum when it points uphill.
        if bool(ops.convert_to_numpy(ops.sum(g * step) > 0)):
            z = theta_new
            t = 1.0
        else:
            z = theta_new + beta * step
            t = t_new
        theta = theta_new
    theta_np = ops.convert_to_numpy(theta)
    if not np.all(np.isfinite(theta_np)):
        raise FloatingPointError("logistic regression diverged (non-finite weights)")
    clf = LinearClassifier(theta_np[:-1], theta_np[-1], mean, scale, n_iter=it, converged=converged, l2=l2)
    clf.split_products = not exact
    return clf


# --------------------------------------------------------------------------- paper protocol


def fit_linear_sgd(
    features,
    labels,
    num_classes=None,
    learning_rate=30.0,
    momentum=0.9,
    epochs=100,
    milestones=(60, 80),
    gamma=0.1,
    batch_size=256,
    weight_decay=0.0,
    standardize=False,
    seed=0,
    verbose=0,
):
    """The paper's linear-probe protocol: a `Dense` layer trained by mini-batch SGD.

    Defaults follow the authors' code: SGD lr 30, momentum 0.9, no weight decay, batch 256,
    100 epochs, learning rate multiplied by `gamma=0.1` at epochs 60 and 80, raw features.
    Raises FloatingPointError when SGD diverges (non-finite weights or training logits).

    Returns a `LinearClassifier`.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 300)
    >>> x = rng.normal(size=(300, 5)) + 3 * np.eye(3, 5)[y]
    >>> clf = fit_linear_sgd(x, y, epochs=3, milestones=(2,), learning_rate=0.1)
    >>> clf.score(x, y) > 0.8
    True
    """
    x, y = check_features_labels(features, labels, num_classes, name="train")
    check_probe_training_set(y)
    num_classes = resolve_num_classes(num_classes, y)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    milestones = tuple(int(m) for m in milestones)
    if any(m < 1 for m in milestones) or list(milestones) != sorted(milestones):
        raise ValueError(f"`milestones` must be increasing positive epochs; got {milestones}")
    mean, scale = _standardisation(x, standardize)
    xs = (x - mean) / scale
    steps = math.ceil(len(xs) / batch_size)
    boundaries = [m * steps for m in milestones]
    values = [learning_rate * gamma**i for i in range(len(milestones) + 1)]
    lr = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values) if boundaries else learning_rate
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((xs.shape[1],)), keras.layers.Dense(num_classes, kernel_initializer="zeros")])
    opt = keras.optimizers.SGD(learning_rate=lr, momentum=momentum, weight_decay=weight_decay or None)
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(xs, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose)
    kernel, bias = (np.asarray(v) for v in model.layers[-1].get_weights())
    hint = "lower `learning_rate`, or pass `standardize=True` for large features"
    if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
        raise FloatingPointError(f"SGD diverged (non-finite weights): {hint}")
    clf = LinearClassifier(kernel, bias, mean, scale, n_iter=epochs * steps, converged=True)
    try:
        clf.decision_function(x)
    except FloatingPointError:
        raise FloatingPointError(f"SGD diverged (the training logits overflow float32): {hint}") from None
    return clf


# --------------------------------------------------------------------------- probes of an encoder


def fit_probe(features, labels, num_classes=None, protocol="convex", l2=1e-4, **solver_kwargs):
    """Fit a linear probe with `protocol="convex"` (`fit_logistic_regression` with penalty `l2`) or
    `"paper"` (`fit_linear_sgd`; `l2` unused). Extra keywords go to the solver.

    Example:

    >>> import numpy as np
    >>> clf = fit_probe(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    >>> clf.predict(np.array([[0.2], [2.8]])).tolist()
    [0, 1]
    """
    check_choice(protocol, "protocol", PROTOCOLS)
    if protocol == "convex":
        return fit_logistic_regression(features, labels, num_classes, l2=l2, **solver_kwargs)
    return fit_linear_sgd(features, labels, num_classes, **solver_kwargs)


def probe_features(
    train_features: ArrayLike,
    train_labels: ArrayLike,
    test_features: ArrayLike,
    test_labels: ArrayLike,
    num_classes: int | None = None,
    class_groups: dict | None = None,
    protocol: str = "convex",
    l2: float = 1e-4,
    return_classifier: bool = False,
    **solver_kwargs: Any,
) -> dict:
    """Linear probe on feature arrays: fit on train, report test accuracy.

    `protocol="convex"` fits the L2-regularised logistic regression (`fit_logistic_regression`,
    standardised features, penalty `l2` on the mean loss); `protocol="paper"` runs the paper's SGD
    protocol (`fit_linear_sgd`; `l2` unused). Extra keyword arguments go to the solver. Without
    `num_classes`, a test label absent from the training labels raises ValueError.

    Returns `{"acc", "top5", "acc_<group>" for each class group}` (`metrics.accuracy_summary` of
    the test logits; and the `LinearClassifier` as a second value when `return_classifier=True`).

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0); y = rng.integers(0, 3, 200)
    >>> x = rng.normal(size=(200, 4)) + 4 * np.eye(3, 4)[y]
    >>> probe_features(x, y, x, y, class_groups={"many": [0, 1], "few": [2]})["acc"] > 0.9
    True
    """
    xtr, ytr, xte, yte, num_classes = check_probe_inputs(
        train_features, train_labels, test_features, test_labels, num_classes, protocol
    )
    groups = check_class_groups(class_groups, num_classes)
    clf = fit_probe(xtr, ytr, num_classes, protocol, l2, **solver_kwargs)
    out = accuracy_summary(clf.decision_function(xte), yte, groups)
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
