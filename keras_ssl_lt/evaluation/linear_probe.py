"""On-device solvers for representation evaluation: logistic-regression probes and kNN.

Everything of size N (the examples) runs with `keras.ops` on the backend's device; only
(D+1) x (D+1) factorisations happen on the host in float64. The callbacks in
`keras_ssl_lt.callbacks` and the functions in `keras_ssl_lt.evaluate` are thin wrappers around
these solvers, which take feature arrays.

* `fit_logistic_regression`: the convex L2-regularised multinomial logistic regression
  (the same objective as scikit-learn's `LogisticRegression`), solved full-batch by an
  accelerated bound-optimisation method (Boehning's quadratic bound as preconditioner,
  Nesterov momentum with adaptive restart).
* `fit_linear_sgd`: the paper's probe protocol (mini-batch SGD, lr 30, momentum 0.9, 100
  epochs, lr x0.1 at epochs 60 and 80, batch 256, no weight decay) with a Keras `Dense` + `fit`.
* `knn_predict`: the cosine kNN monitor (k=200, temperature 0.1, similarity-weighted votes),
  chunked over the test set.
"""

import math

import numpy as np
import keras
from keras import ops

__all__ = [
    "LinearClassifier",
    "fit_logistic_regression",
    "fit_linear_sgd",
    "knn_predict",
    "topk_accuracy",
    "check_features_labels",
]


# --------------------------------------------------------------------------- validation


def check_features_labels(features, labels, num_classes=None, name="train"):
    """Validate a (features, labels) pair and return them as (float32 (N, D), int32 (N,)).

    Raises ValueError naming the split when the features are not a non-empty 2-D array, the labels
    are not integers of the same length, or a label is outside `[0, num_classes)`.

    Example:

    >>> import numpy as np
    >>> x, y = check_features_labels(np.zeros((3, 2)), [0, 1, 1], num_classes=2)
    >>> x.dtype, y.dtype
    (dtype('float32'), dtype('int32'))
    """
    x = np.asarray(features)
    y = np.asarray(labels)
    if x.ndim != 2:
        raise ValueError(
            f"`{name}` features must be a 2-D array (N, D) of flat features; got shape {x.shape}. "
            "An encoder must end with a global pooling or Flatten layer."
        )
    if len(x) == 0:
        raise ValueError(f"`{name}` split is empty: at least one example is needed")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(
            f"`{name}` labels must be a 1-D array with one label per example: got labels of shape "
            f"{y.shape} for {len(x)} feature rows"
        )
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype("int64")
        else:
            raise ValueError(f"`{name}` labels must be integer class ids; got dtype {y.dtype}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` features contain NaN or infinite values")
    if num_classes is not None:
        if y.min() < 0 or y.max() >= num_classes:
            raise ValueError(
                f"`{name}` labels must lie in [0, num_classes) = [0, {num_classes}); "
                f"got values in [{y.min()}, {y.max()}]"
            )
    elif y.min() < 0:
        raise ValueError(f"`{name}` labels must be non-negative class ids; got {y.min()}")
    return x.astype("float32", copy=False), y.astype("int32")


def _check_num_classes(num_classes, *label_arrays):
    inferred = int(max(int(np.max(y)) for y in label_arrays)) + 1
    if num_classes is None:
        return max(inferred, 2)
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an integer >= 2; got {num_classes!r}")
    return int(num_classes)


def topk_accuracy(logits, labels, k=1):
    """Fraction of rows whose label is among the `k` largest scores (numpy).

    Example:

    >>> import numpy as np
    >>> topk_accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]), k=1)
    0.5
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(
            f"`logits` must be (N, C) with N = len(labels) = {len(labels)}; got {logits.shape}"
        )
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`k` must be a positive integer; got {k!r}")
    k = min(int(k), logits.shape[1])
    true_score = np.take_along_axis(logits, labels[:, None].astype("int64"), axis=1)
    # Rank = number of classes scoring strictly higher; ties count in the label's favour.
    rank = np.sum(logits > true_score, axis=1)
    return float(np.mean(rank < k))


# --------------------------------------------------------------------------- logistic regression


class LinearClassifier:
    """A fitted linear probe: `logits = ((x - mean) / scale) @ kernel + bias`.

    Attributes (numpy): `kernel` (D, C), `bias` (C,), `mean` (D,), `scale` (D,); and `n_iter`,
    `converged`, `l2` describing the fit.

    Example:

    >>> import numpy as np
    >>> clf = LinearClassifier(np.eye(2, dtype="float32"), np.zeros(2, "float32"))
    >>> clf.predict(np.array([[1.0, 0.0], [0.0, 2.0]]))
    array([0, 1])
    """

    def __init__(self, kernel, bias, mean=None, scale=None, n_iter=0, converged=True, l2=None):
        self.kernel = np.asarray(kernel, "float32")
        self.bias = np.asarray(bias, "float32")
        d = self.kernel.shape[0]
        self.mean = np.zeros(d, "float32") if mean is None else np.asarray(mean, "float32")
        self.scale = np.ones(d, "float32") if scale is None else np.asarray(scale, "float32")
        self.n_iter = int(n_iter)
        self.converged = bool(converged)
        self.l2 = l2

    @property
    def num_classes(self):
        return self.kernel.shape[1]

    def decision_function(self, features, batch_size=65536):
        """Logits (N, C) as numpy, computed on device with `keras.ops`."""
        x = np.asarray(features, "float32")
        if x.ndim != 2 or x.shape[1] != self.kernel.shape[0]:
            raise ValueError(
                f"`features` must have shape (N, {self.kernel.shape[0]}); got {x.shape}"
            )
        w = ops.convert_to_tensor(self.kernel)
        b = ops.convert_to_tensor(self.bias)
        mu = ops.convert_to_tensor(self.mean)
        sc = ops.convert_to_tensor(self.scale)
        out = []
        for s in range(0, len(x), batch_size):
            xb = (ops.convert_to_tensor(x[s : s + batch_size]) - mu) / sc
            out.append(ops.convert_to_numpy(ops.matmul(xb, w) + b))
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), "float32")

    def predict(self, features):
        """Predicted class ids (N,)."""
        return np.argmax(self.decision_function(features), axis=1)

    def score(self, features, labels, k=1):
        """Top-`k` accuracy on (features, labels)."""
        return topk_accuracy(self.decision_function(features), labels, k=k)


def _standardisation(x, standardize):
    if not standardize:
        d = x.shape[1]
        return np.zeros(d, "float32"), np.ones(d, "float32")
    xt = ops.convert_to_tensor(x)
    mean = ops.mean(xt, axis=0)
    std = ops.sqrt(ops.mean(ops.square(xt - mean), axis=0))
    mean = ops.convert_to_numpy(mean).astype("float32")
    std = ops.convert_to_numpy(std).astype("float32")
    # Constant features carry no information: leave them unscaled (they become exactly zero).
    std = np.where(std > 1e-12 * max(1.0, float(np.max(np.abs(mean)))), std, 1.0).astype("float32")
    return mean, std


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
    momentum and gradient-based adaptive restart. Each iteration costs two (N, D) x (D, C) matrix
    products on the backend's device. Stops when the largest absolute gradient entry is below `tol`
    (scikit-learn's lbfgs criterion) or after `max_iter` iterations.

    Args:
        features: (N, D) float array. labels: (N,) int class ids in `[0, num_classes)`.
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
    num_classes = _check_num_classes(num_classes, y)
    n, d = x.shape
    if C is not None:
        if not (isinstance(C, (int, float)) and C > 0 and math.isfinite(C)):
            raise ValueError(f"`C` must be a positive finite number; got {C!r}")
        l2 = 1.0 / (float(C) * n)
    if not (isinstance(l2, (int, float)) and l2 > 0 and math.isfinite(l2)):
        raise ValueError(f"`l2` must be a positive finite number; got {l2!r}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"`max_iter` must be a positive integer; got {max_iter!r}")
    if not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f"`check_every` must be a positive integer; got {check_every!r}")
    if sample_weight is None:
        sw = np.full((n,), 1.0 / n, "float32")
    else:
        sw = np.asarray(sample_weight, "float64")
        if sw.shape != (n,) or np.any(sw < 0) or not np.all(np.isfinite(sw)) or sw.sum() <= 0:
            raise ValueError(
                f"`sample_weight` must be ({n},) non-negative finite weights with a positive sum"
            )
        sw = (sw / sw.sum()).astype("float32")
    l2 = float(l2)

    mean, scale = _standardisation(x, standardize)
    xt = (ops.convert_to_tensor(x) - ops.convert_to_tensor(mean)) / ops.convert_to_tensor(scale)
    swt = ops.convert_to_tensor(sw)[:, None]
    yw = ops.one_hot(ops.convert_to_tensor(y), num_classes) * swt  # weighted one-hot (N, C)

    # Preconditioner from Boehning's bound, on the augmented features [x, 1] (host, float64).
    ones_col = ops.ones((n, 1), dtype="float32")
    xa = ops.concatenate([xt, ones_col], axis=1)
    gram = ops.convert_to_numpy(ops.matmul(ops.transpose(xa * swt), xa)).astype("float64")
    gram = 0.5 * (gram + gram.T)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    # Class-contrast directions: curvature <= 0.5 * gram + l2 (bias unpenalised).
    bound = 0.5 * gram + np.diag(reg)
    evals, evecs = np.linalg.eigh(bound)
    floor = max(float(evals.max()) * 1e-12, 1e-30)
    precond = (evecs / np.maximum(evals, floor)) @ evecs.T
    precond_t = ops.convert_to_tensor(precond.astype("float32"))
    inv_reg = np.where(reg > 0, 1.0 / np.where(reg > 0, reg, 1.0), 0.0).astype("float32")
    inv_reg_t = ops.convert_to_tensor(inv_reg)[:, None]
    reg_t = ops.convert_to_tensor(reg.astype("float32"))[:, None]

    def gradient(theta):
        logits = ops.matmul(xa, theta)
        probs = ops.softmax(logits, axis=-1)
        resid = probs * swt - yw
        return ops.matmul(ops.transpose(xa), resid) + reg_t * theta

    def precondition(g):
        # Split each row into its mean over classes (only the penalty acts there: exact step)
        # and the class-contrast part (bounded by the Boehning matrix).
        g_mean = ops.mean(g, axis=1, keepdims=True)
        g_contrast = g - g_mean
        return ops.matmul(precond_t, g_contrast) + inv_reg_t * g_mean

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
    return LinearClassifier(
        theta_np[:-1], theta_np[-1], mean, scale, n_iter=it, converged=converged, l2=l2
    )


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
    num_classes = _check_num_classes(num_classes, y)
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"`epochs` must be a positive integer; got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer; got {batch_size!r}")
    milestones = tuple(int(m) for m in milestones)
    if any(m < 1 for m in milestones) or list(milestones) != sorted(milestones):
        raise ValueError(f"`milestones` must be increasing positive epochs; got {milestones}")
    mean, scale = _standardisation(x, standardize)
    xs = (x - mean) / scale
    steps = math.ceil(len(xs) / batch_size)
    boundaries = [m * steps for m in milestones]
    values = [learning_rate * gamma**i for i in range(len(milestones) + 1)]
    lr = (
        keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
        if boundaries
        else learning_rate
    )
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((xs.shape[1],)), keras.layers.Dense(num_classes, kernel_initializer="zeros")]
    )
    opt = keras.optimizers.SGD(
        learning_rate=lr, momentum=momentum, weight_decay=weight_decay or None
    )
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(xs, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose)
    kernel, bias = (np.asarray(v) for v in model.layers[-1].get_weights())
    return LinearClassifier(kernel, bias, mean, scale, n_iter=epochs * steps, converged=True)


# --------------------------------------------------------------------------- kNN


def _l2_normalise(t):
    return t / ops.maximum(ops.sqrt(ops.sum(ops.square(t), axis=1, keepdims=True)), 1e-12)


def knn_predict(
    train_features,
    train_labels,
    test_features,
    num_classes=None,
    k=200,
    temperature=0.1,
    weighting="exp",
    chunk_size=None,
    memory_budget_mb=256,
    return_scores=False,
):
    """Weighted kNN classification with cosine similarity, chunked over the test set.

    For each test feature, the `k` training features of highest cosine similarity vote for their
    labels with weight `exp(sim / temperature)` (`weighting="exp"`, the InstDisc / SimCLR monitor
    convention), `sim` (`"similarity"`) or 1 (`"uniform"`); votes are summed per class and the
    prediction is the class with the largest sum (the lowest class id on exact ties).

    The (chunk, N_train) similarity block is the largest intermediate: `chunk_size` defaults to the
    number of test rows that keep it within `memory_budget_mb`.

    Returns predicted class ids (N_test,) as numpy, plus the (N_test, C) vote sums when
    `return_scores=True`.

    Example:

    >>> import numpy as np
    >>> xtr = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]); ytr = np.array([0, 0, 1])
    >>> knn_predict(xtr, ytr, np.array([[1.0, 0.05], [0.1, 1.0]]), k=1)
    array([0, 1])
    """
    xtr, ytr = check_features_labels(train_features, train_labels, num_classes, name="train")
    xte = np.asarray(test_features)
    if xte.ndim != 2 or len(xte) == 0:
        raise ValueError(f"`test_features` must be a non-empty (N, D) array; got {xte.shape}")
    if xte.shape[1] != xtr.shape[1]:
        raise ValueError(
            f"`test_features` have dimension {xte.shape[1]} but `train_features` {xtr.shape[1]}"
        )
    num_classes = _check_num_classes(num_classes, ytr)
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= len(xtr):
        raise ValueError(
            f"`k` must be an integer in [1, number of training examples = {len(xtr)}]; got {k!r}"
        )
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"`temperature` must be a positive number; got {temperature!r}")
    if weighting not in ("exp", "similarity", "uniform"):
        raise ValueError(
            f"`weighting` must be one of 'exp', 'similarity', 'uniform'; got {weighting!r}"
        )
    k = int(k)
    n_train = len(xtr)
    if chunk_size is None:
        per_row = 4 * max(n_train, k * num_classes) * 2
        chunk_size = max(1, int(memory_budget_mb * 2**20 // per_row))
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"`chunk_size` must be a positive integer; got {chunk_size!r}")

    bank_t = ops.transpose(_l2_normalise(ops.convert_to_tensor(xtr)))  # (D, N_train)
    ytr_t = ops.convert_to_tensor(ytr)
    preds, scores = [], []
    for s in range(0, len(xte), int(chunk_size)):
        q = _l2_normalise(ops.convert_to_tensor(np.asarray(xte[s : s + chunk_size], "float32")))
        sim = ops.matmul(q, bank_t)
        top_sim, top_idx = ops.top_k(sim, k=k, sorted=False)
        top_lab = ops.take(ytr_t, top_idx)
        if weighting == "exp":
            w = ops.exp(top_sim / temperature)
        elif weighting == "similarity":
            w = top_sim
        else:
            w = ops.ones_like(top_sim)
        votes = ops.sum(ops.one_hot(top_lab, num_classes) * w[..., None], axis=1)
        preds.append(ops.convert_to_numpy(ops.argmax(votes, axis=1)))
        if return_scores:
            scores.append(ops.convert_to_numpy(votes))
    pred = np.concatenate(preds).astype("int64")
    if return_scores:
        return pred, np.concatenate(scores)
    return pred
