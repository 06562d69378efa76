"""Weighted cosine k-nearest-neighbour classification, on the backend's device with `keras.ops` (or the host).

`knn_predict` works on feature arrays; `knn_features` reports accuracies on feature arrays; `knn`
extracts a model's frozen-encoder features first. The `KNNMonitor` callback calls `knn_features`.

Ties are broken the same way on every backend: among training examples of equal similarity to a
query, the lower training index is the nearer neighbour (the order of a stable sort), and among
classes of equal vote the lower class id wins (`metrics.predict_classes`). An all-zero query, equally
similar to every training example, therefore takes the first `k` training examples as neighbours.

Where the Keras backend computes on the CPU, `knn_predict` runs on the host in numpy by default
(`compute="auto"`): the same similarities and tie rule, with the top-k selection done by `argpartition`
over row blocks in threads (numpy releases the GIL there) instead of a sorted `top_k`, which XLA runs on
one core. On an accelerator the `keras.ops` path runs on the device. Both follow the same rules; their
similarities can differ by float32 rounding (two different matrix products), which can swap neighbours
whose similarities are that close.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
from typing import Any

import numpy as np
from keras import ops
from numpy.typing import ArrayLike

from keras_ssl_lt._checks import check_choice, check_number, check_positive_int
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
)
from keras_ssl_lt.losses import _EPS as _L2_EPS
from keras_ssl_lt.losses import l2_normalize

__all__ = ["COMPUTES", "WEIGHTINGS", "knn", "knn_features", "knn_predict"]

WEIGHTINGS = ("exp", "similarity", "uniform")
COMPUTES = ("auto", "device", "host")
_POOL = {}

# Training indices are compared as float32 keys, exact up to 2**24.
_MAX_TRAIN = 2**24


def _unit_rows(x):
    # Divide each row by its largest |entry| first, so that squaring cannot overflow (|x| ~ 1e20) or
    # underflow (|x| ~ 1e-30) float32; a zero row stays zero.
    peak = ops.max(ops.abs(x), axis=1, keepdims=True)
    return l2_normalize(x / ops.where(peak > 0, peak, ops.ones_like(peak)), axis=1)


def _neighbours(sim, k, index_keys):
    """Indices (rows, k) of the k most similar training examples, ties to the lowest index.

    The exact tie-breaking path: two top-k passes and several (rows, N_train) masks. `knn_predict` uses it
    only for the rows whose k-th and (k + 1)-th similarities are equal (`_top_k_unless_tied`).
    """
    top_sim, _ = ops.top_k(sim, k=k, sorted=False)
    kth = ops.min(top_sim, axis=1, keepdims=True)
    # Everything above the k-th similarity is a neighbour (fewer than k of them); the remaining slots go
    # to the examples tied with it, lowest index first. Keys: above -> n_train (largest), tied -> -index,
    # below -> -inf. All keys of tied examples differ, so the selection is unique on every backend.
    n_train = index_keys.shape[-1]
    key = ops.where(
        sim > kth,
        ops.cast(n_train, "float32"),
        ops.where(sim == kth, -index_keys, ops.cast(-np.inf, "float32")),
    )
    _, idx = ops.top_k(key, k=k, sorted=False)
    return idx


def _top_k_unless_tied(sim, k):
    """One top-(k + 1) pass: the k largest similarities and their indices, and the rows where they are unsure.

    When a row's k-th and (k + 1)-th largest similarities differ, its k largest entries are one well-defined
    set (every other entry is smaller than all of them), whatever order or tie rule `top_k` follows inside
    it; that set is the one the tie rule selects. Rows where the two are equal (`tied`, a boolean (rows,)
    tensor) have examples tied across the k-th place and go through `_neighbours`.
    """
    if k == sim.shape[1]:  # every training example is a neighbour: no (k + 1)-th place
        vals, idx = ops.top_k(sim, k=k, sorted=True)
        return vals, idx, None
    vals, idx = ops.top_k(sim, k=k + 1, sorted=True)
    return vals[:, :k], idx[:, :k], vals[:, k - 1] == vals[:, k]


def _votes(top_sim, top_lab, num_classes, temperature, weighting):
    if weighting == "exp":
        w = ops.exp((top_sim - ops.max(top_sim, axis=1, keepdims=True)) / temperature)
    elif weighting == "similarity":
        w = top_sim
    else:
        w = ops.ones_like(top_sim)
    return ops.convert_to_numpy(ops.sum(ops.one_hot(top_lab, num_classes) * w[..., None], axis=1))


def _host_threads():
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, len(cpus))


def _host_unit_rows(x):
    x = np.asarray(x, dtype=np.float32)
    peak = np.max(np.abs(x), axis=1, keepdims=True)
    x = x / np.where(peak > 0, peak, np.float32(1.0))
    sq = np.sum(np.square(x), axis=1, keepdims=True)
    return x / np.sqrt(np.maximum(sq, np.float32(_L2_EPS * _L2_EPS)))


def _host_top_k_unless_tied(sim, k):
    """`_top_k_unless_tied` in numpy: `argpartition` puts the (k + 1)-th largest similarity of each row in
    its sorted place with the k largest after it (in any order); row blocks run in threads."""
    n_train = sim.shape[1]
    if k == n_train:
        idx = np.broadcast_to(np.arange(n_train), sim.shape)
        return sim, idx, None
    kth = n_train - k - 1  # the (k + 1)-th largest lands at kth, the k largest at kth + 1 ...

    def block(rows):
        return np.argpartition(sim[rows], kth, axis=1)[:, kth:]

    threads = min(_host_threads(), len(sim))
    bounds = np.linspace(0, len(sim), threads + 1).astype(int)
    slices = [slice(a, b) for a, b in itertools.pairwise(bounds)]
    if threads > 1:
        pool = _POOL.get(threads) or _POOL.setdefault(threads, concurrent.futures.ThreadPoolExecutor(threads))
        part = np.concatenate(list(pool.map(block, slices)))
    else:
        part = block(slice(None))
    vals = np.take_along_axis(sim, part, axis=1)
    top_vals, top_idx = vals[:, 1:], part[:, 1:]
    return top_vals, top_idx, np.min(top_vals, axis=1) == vals[:, 0]


def _host_votes(top_sim, top_lab, num_classes, temperature, weighting):
    if weighting == "exp":
        w = np.exp((top_sim - np.max(top_sim, axis=1, keepdims=True)) / np.float32(temperature))
    elif weighting == "similarity":
        w = top_sim
    else:
        w = np.ones_like(top_sim)
    rows = len(top_sim)
    cells = (np.arange(rows)[:, None] * num_classes + top_lab).ravel()
    votes = np.bincount(cells, weights=np.asarray(w, np.float64).ravel(), minlength=rows * num_classes)
    return votes.reshape(rows, num_classes).astype(np.float32)


def _host_knn(xtr, ytr, xte, num_classes, k, temperature, weighting, chunk_size):
    bank = _host_unit_rows(xtr)
    ytr = np.asarray(ytr)
    votes_all = []
    for s in range(0, len(xte), chunk_size):
        sim = _host_unit_rows(xte[s : s + chunk_size]) @ bank.T
        top_sim, idx, tied = _host_top_k_unless_tied(sim, k)
        votes = _host_votes(top_sim, ytr[idx], num_classes, temperature, weighting)
        rows = np.flatnonzero(tied) if tied is not None else ()
        if len(rows):  # examples tied across the k-th place: a stable sort, lower training index first
            sub = sim[rows]
            sub_idx = np.argsort(-sub, axis=1, kind="stable")[:, :k]
            sub_sim = np.take_along_axis(sub, sub_idx, axis=1)
            votes[rows] = _host_votes(sub_sim, ytr[sub_idx], num_classes, temperature, weighting)
        votes_all.append(votes)
    return np.concatenate(votes_all)


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
    compute="auto",
):
    """Weighted kNN classification with cosine similarity, chunked over the test set.

    For each test feature, the `k` training features of highest cosine similarity (the lower training
    index first among equal similarities) vote for their labels with weight `exp(sim / temperature)`
    (`weighting="exp"`, the InstDisc / SimCLR monitor convention), `sim` (`"similarity"`) or 1
    (`"uniform"`); votes are summed per class and the prediction is the class with the largest sum
    (the lowest class id on exact ties). With `"exp"`, the returned votes of a query are divided by
    `exp(max sim / temperature)` (its nearest neighbour weighs 1), which changes no prediction or
    ranking and cannot overflow for small temperatures.

    The (chunk, N_train) similarity block and a few masks of that size are the largest
    intermediates: `chunk_size` defaults to the number of test rows that keep them within
    `memory_budget_mb`. Features must be finite (NaN or inf rows raise ValueError).

    `compute`: "device" runs on the Keras backend's device with `keras.ops`; "host" runs in numpy on the
    CPU (the top-k selection by `argpartition` in threads); "auto" (default) picks "host" when the backend
    computes on the CPU and "device" otherwise. Both follow the same rules and references; their
    similarities may differ by float32 rounding, so a neighbour whose similarity is that close to the k-th
    can differ (1 query in 5,000 on the 512-d benchmark features).

    Returns predicted class ids (N_test,) as numpy, plus the (N_test, C) vote sums when
    `return_scores=True`.

    Example:

    >>> import numpy as np
    >>> xtr = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]); ytr = np.array([0, 0, 1])
    >>> knn_predict(xtr, ytr, np.array([[1.0, 0.05], [0.1, 1.0]]), k=1)
    array([0, 1])
    """
    xtr, ytr = check_features_labels(train_features, train_labels, num_classes, name="train")
    xte = check_features(test_features, "test")
    if xte.shape[1] != xtr.shape[1]:
        raise ValueError(f"`test_features` have dimension {xte.shape[1]} but `train_features` {xtr.shape[1]}")
    num_classes = resolve_num_classes(num_classes, ytr)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= len(xtr):
        raise ValueError(f"`k` must be an integer in [1, number of training examples = {len(xtr)}]; got {k!r}")
    temperature = check_number(temperature, "temperature", low=0.0, low_open=True)
    check_choice(weighting, "weighting", WEIGHTINGS)
    memory_budget_mb = check_number(memory_budget_mb, "memory_budget_mb", low=0.0, low_open=True)
    k = int(k)
    n_train = len(xtr)
    if n_train > _MAX_TRAIN:
        raise ValueError(f"at most {_MAX_TRAIN} training examples are supported; got {n_train}")
    if chunk_size is None:
        per_row = 4 * (4 * n_train + 2 * k * num_classes)
        chunk_size = max(1, int(memory_budget_mb * 2**20 // per_row))
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    check_choice(compute, "compute", COMPUTES)
    if compute == "auto":
        from keras_ssl_lt.training.fused import device_is_cpu

        compute = "host" if device_is_cpu() else "device"
    if compute == "host":
        votes = _host_knn(xtr, ytr, xte, num_classes, k, temperature, weighting, chunk_size)
        pred = predict_classes(votes)
        return (pred, votes) if return_scores else pred

    bank_t = ops.transpose(_unit_rows(ops.convert_to_tensor(xtr)))  # (D, N_train)
    ytr_t = ops.convert_to_tensor(ytr)
    index_keys = None  # made on the first tied row
    votes_all = []
    for s in range(0, len(xte), chunk_size):
        q = _unit_rows(ops.convert_to_tensor(xte[s : s + chunk_size]))
        sim = ops.matmul(q, bank_t)
        top_sim, idx, tied = _top_k_unless_tied(sim, k)
        votes = _votes(top_sim, ops.take(ytr_t, idx), num_classes, temperature, weighting)
        rows = np.flatnonzero(ops.convert_to_numpy(tied)) if tied is not None else ()
        if len(rows):
            # Examples tied across the k-th place: the exact rule, on those rows only. The row count is padded
            # to a power of two (repeating a row) so that backends compiling per shape compile few shapes.
            pad = min(1 << (len(rows) - 1).bit_length(), len(votes))
            take = ops.convert_to_tensor(np.concatenate([rows, np.full(pad - len(rows), rows[0])]).astype("int32"))
            sub = ops.take(sim, take, axis=0)
            if index_keys is None:
                index_keys = ops.convert_to_tensor(np.arange(n_train, dtype="float32")[None, :])
            sub_idx = _neighbours(sub, k, index_keys)
            sub_votes = _votes(
                ops.take_along_axis(sub, sub_idx, axis=1), ops.take(ytr_t, sub_idx), num_classes, temperature, weighting
            )
            votes = np.array(votes)  # writable (a JAX array's numpy view is not)
            votes[rows] = sub_votes[: len(rows)]
        votes_all.append(votes)
    votes = np.concatenate(votes_all)
    pred = predict_classes(votes)
    return (pred, votes) if return_scores else pred


def knn_features(
    train_features: ArrayLike,
    train_labels: ArrayLike,
    test_features: ArrayLike,
    test_labels: ArrayLike,
    num_classes: int | None = None,
    class_groups: dict | None = None,
    k: int = 200,
    temperature: float = 0.1,
    **knn_kwargs: Any,
) -> dict:
    """Weighted cosine kNN accuracy on feature arrays (`knn_predict`).

    Returns `{"acc", "top5", "acc_<group>" ...}` (`metrics.accuracy_summary` of the vote sums).
    Without `num_classes`, a test label absent from the training labels raises ValueError.

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0], [0.9, 0.2], [0.0, 1.0], [0.1, 0.9]]); y = np.array([0, 0, 1, 1])
    >>> knn_features(x, y, x, y, k=2)["acc"]
    1.0
    """
    xtr, ytr = check_features_labels(train_features, train_labels, num_classes, "train")
    xte, yte = check_features_labels(test_features, test_labels, num_classes, "test")
    num_classes = resolve_num_classes(num_classes, ytr, yte)
    groups = check_class_groups(class_groups, num_classes)
    _, votes = knn_predict(xtr, ytr, xte, num_classes, k=k, temperature=temperature, return_scores=True, **knn_kwargs)
    return accuracy_summary(votes, yte, groups)


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
