"""What the theorem is about, measured: feature alignments and linear probes on fresh samples.

- `alignment(W, e) = ||W e|| / ||W||_op` in [0, 1]: 1 when `e` is represented as strongly as the best
  direction, 0 when the features cannot see it.
- `linear_probe_accuracy`: multinomial logistic regression on the features (L2 penalty, Newton's method in
  numpy: the toy features have a handful of dimensions), per-class accuracy on a test set. With
  `bias=False` it is the theorem's linear head `y = argmax V z`; with `bias=True` an affine head. Features
  are divided by their training RMS first (one scalar), so the penalty means the same for every model.
"""

import numpy as np

from keras_ssl_lt.theory.toy_data import FREQUENT, RARE

__all__ = ["alignment", "linear_probe_accuracy"]


def alignment(weights, direction):
    """`||W e|| / ||W||_op` for a `(m, d)` feature map `W` and a direction `e` (normalised here).

    >>> import numpy as np
    >>> w = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> alignment(w, [1, 0, 0]), alignment(w, [0, 1, 0]), alignment(w, [0, 0, 1])
    (1.0, 0.5, 0.0)
    """
    w = np.asarray(weights, dtype=np.float64)
    e = np.asarray(direction, dtype=np.float64).reshape(-1)
    if w.ndim != 2 or w.shape[1] != e.size:
        raise ValueError(f"`weights` must be (m, d) with d = len(direction) = {e.size}; got shape {w.shape}")
    norm_e = np.linalg.norm(e)
    op = np.linalg.norm(w, 2)
    if norm_e == 0:
        raise ValueError("`direction` must be a non-zero vector")
    if op == 0:
        return 0.0
    return float(np.linalg.norm(w @ (e / norm_e)) / op)


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _fit(x, y, k, l2, max_iter=100, tol=1e-9):
    n, m = x.shape
    w = np.zeros((m, k))
    onehot = np.eye(k)[y]

    def objective(w):
        z = x @ w
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - (z * onehot).sum(axis=1)) + 0.5 * l2 * np.sum(w * w))

    f = objective(w)
    for _ in range(max_iter):
        p = _softmax(x @ w)
        grad = x.T @ (p - onehot) / n + l2 * w
        # Hessian H[(a,k),(b,l)] = mean_i x_ia x_ib (p_ik d_kl - p_ik p_il) + l2 I.
        cov = np.einsum("ik,kl->ikl", p, np.eye(k)) - np.einsum("ik,il->ikl", p, p)
        h = np.einsum("ia,ib,ikl->akbl", x, x, cov).reshape(m * k, m * k) / n + l2 * np.eye(m * k)
        step = np.linalg.solve(h, grad.reshape(-1)).reshape(m, k)
        t = 1.0
        while t > 1e-8:
            f_new = objective(w - t * step)
            if f_new <= f - 1e-4 * t * np.sum(grad * step):
                break
            t *= 0.5
        w, f_old, f = w - t * step, f, f_new
        if abs(f_old - f) < tol:
            break
    return w


def linear_probe_accuracy(train_features, train_labels, test_features, test_labels, bias=False, l2=1e-3):
    """Fit a linear probe on `train_*` and report accuracies on `test_*` (toy classes 0, 1 frequent, 2 rare).

    Returns `{"acc", "acc_rare", "acc_frequent", "per_class"}` (per-class recall; `acc_frequent` is the
    mean over the frequent classes).

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0); y = np.repeat([0, 1, 2], 50)
    >>> f = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])[y] + 0.1 * rng.normal(size=(150, 2))
    >>> linear_probe_accuracy(f, y, f, y)["acc_rare"]
    1.0
    """
    xtr, xte = np.asarray(train_features, np.float64), np.asarray(test_features, np.float64)
    ytr, yte = np.asarray(train_labels).astype(np.int64), np.asarray(test_labels).astype(np.int64)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"features must be (n, m) arrays of one width; got {xtr.shape} and {xte.shape}")
    if ytr.shape != (len(xtr),) or yte.shape != (len(xte),):
        raise ValueError("labels must be 1-D with one entry per feature row")
    if not (isinstance(l2, (int, float)) and l2 > 0):
        raise ValueError(f"`l2` must be a positive number; got {l2!r}")
    k = int(max(ytr.max(), yte.max(), RARE)) + 1
    scale = float(np.sqrt(np.mean(xtr**2)))
    scale = scale if scale > 0 else 1.0
    xtr, xte = xtr / scale, xte / scale
    if bias:
        xtr = np.concatenate([xtr, np.ones((len(xtr), 1))], axis=1)
        xte = np.concatenate([xte, np.ones((len(xte), 1))], axis=1)
    w = _fit(xtr, ytr, k, float(l2))
    pred = np.argmax(xte @ w, axis=1)
    per_class = [float(np.mean(pred[yte == c] == c)) if np.any(yte == c) else float("nan") for c in range(k)]
    return {
        "acc": float(np.mean(pred == yte)),
        "acc_rare": per_class[RARE],
        "acc_frequent": float(np.mean([per_class[c] for c in FREQUENT])),
        "per_class": per_class,
    }
