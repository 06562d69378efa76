"""Per-example weights for re-weighted SAM (rwSAM): class-rank, inverse-frequency and KDE weights.

rwSAM (Liu et al., ICLR 2022) computes the SAM ascent gradient from a per-example weighted loss in
which rare examples weigh more. This module produces those weights as numpy arrays:

- `class_rank_weights`: `base ** rank(class)`, the fixed weights of the authors' code
  (1.2 on CIFAR-10-LT, 1.005 on ImageNet-LT; rank 0 is the most frequent class).
- `inverse_frequency_weights`: `n_c ** -power`, normalised to mean 1.
- `kde_weights`: inverse Gaussian kernel density of the representations, the weights the paper
  describes (its kernel, bandwidth and normalisation were not published; ours are documented in
  docs/weighting.md).

`kde_density` and `kde_bandwidth`, the Gaussian kernel density estimate behind `kde_weights`, live in
`keras_ssl_lt.rwsam.kde` and are re-exported here (`keras_ssl_lt.rwsam.weights.kde_density` keeps working).
"""

import math

import numpy as np

from keras_ssl_lt._checks import check_labels, check_number, check_positive_int, is_number
from keras_ssl_lt.rwsam.kde import check_bandwidth, check_features, kde_bandwidth, kde_density, unit_rows

__all__ = [
    "class_rank_weights",
    "inverse_frequency_weights",
    "kde_bandwidth",
    "kde_density",
    "kde_weights",
    "normalize_clip",
    "validate_weights",
]


# ----------------------------------------------------------------------------------------------
# argument checks (package-internal: also used by `keras_ssl_lt.rwsam.callback` and the pre-trainers)
# ----------------------------------------------------------------------------------------------
def check_power(power):
    return check_number(power, "power", low=0.0)


def check_clip(clip):
    """None or (low, high) with 0 <= low <= 1 <= high, low < high; high may be None or inf."""
    if clip is None:
        return None
    try:
        lo, hi = clip
    except (TypeError, ValueError):
        lo = hi = None
    if hi is None:
        hi = math.inf
    ok = is_number(lo) and is_number(hi) and not math.isnan(lo) and not math.isnan(hi)
    if not ok or not (0 <= lo <= 1 <= hi) or not lo < hi or math.isinf(lo):
        raise ValueError(
            "`clip` must be None or a pair (low, high) with 0 <= low <= 1 <= high, low < high "
            f"(high may be None or inf); got {clip!r}"
        )
    return float(lo), float(hi)


def check_kde_options(bandwidth, power, clip, chunk_size):
    """Checks the options shared by `kde_weights` and `KDEReweighting`; returns them normalised."""
    return (
        check_bandwidth(bandwidth),
        check_power(power),
        check_clip(clip),
        check_positive_int(chunk_size, "chunk_size"),
    )


def validate_weights(weights, name="weights", length=None):
    """Checks a per-example weight vector (finite, >= 0, not all zero); returns it as float32 numpy.

    Example:

    >>> validate_weights([1, 2.5])
    array([1. , 2.5], dtype=float32)
    """
    w = np.asarray(weights)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array of per-example weights; got shape {w.shape}")
    if not np.issubdtype(w.dtype, np.number) or np.issubdtype(w.dtype, np.complexfloating):
        raise ValueError(f"`{name}` must hold real numbers; got dtype {w.dtype}")
    w = w.astype("float32")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"`{name}` must be finite; found NaN or inf")
    if np.any(w < 0):
        raise ValueError(f"`{name}` must be >= 0; found a minimum of {w.min()}")
    if not np.any(w > 0):
        raise ValueError(f"`{name}` must not be all zero")
    if length is not None and w.shape[0] != length:
        raise ValueError(f"`{name}` must have {length} entries (one per source example); got {w.shape[0]}")
    return w


def check_index(index, table_size):
    """Checks the `index` of a batch against an example-weight table of `table_size` entries.

    Raises a ValueError naming the table size and the first offending position (negative positions
    are refused too: they would silently read from the end of the table). Returns the index as int64 numpy.

    Example:

    >>> check_index([0, 3], table_size=4)
    array([0, 3])
    """
    idx = np.asarray(index)
    if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
        raise ValueError(
            f"rwSAM: a batch's `index` must be a 1-D integer array (positions in the source data set); got shape "
            f"{idx.shape}, dtype {idx.dtype}"
        )
    bad = np.flatnonzero((idx < 0) | (idx >= table_size))
    if bad.size:
        pos = int(bad[0])
        raise ValueError(
            f"rwSAM: batch `index` {int(idx[pos])} (at batch position {pos}) is outside the example-weight table "
            f"of {table_size} entries (valid: 0 to {table_size - 1}). {bad.size} of {idx.size} indices are out of "
            "range. The table must have one entry per example of the *source* data set (`num_examples=len(source)`"
            " or one weight per source example); no weight was changed."
        )
    return idx.astype(np.int64)


# ----------------------------------------------------------------------------------------------
# class-based weights
# ----------------------------------------------------------------------------------------------
def class_rank_weights(labels, base=1.2, class_order=None, class_counts=None):
    """Fixed rwSAM weights of the authors' code: `w_i = base ** rank(class of example i)`.

    Rank 0 is the most frequent class. By default classes are ranked by their counts in `labels`
    (descending; ties go to the smaller class id first). The authors used `base=1.2` on
    CIFAR-10-LT and `base=1.005` on ImageNet-LT, whose class ids already run from the most to the
    least frequent class (so there rank = class id: pass `class_order=range(num_classes)`).

    Args:
        labels: 1-D integer array of class ids, one per example.
        base: a number > 0 (values > 1 upweight rare classes).
        class_order: optional sequence of distinct class ids from the most to the least
            frequent; it must contain every class present in `labels`.
        class_counts: optional per-class counts (length > max label) to rank by instead of the
            counts in `labels` (e.g. the counts of the full long-tailed set when `labels` is a
            slice of it). At most one of `class_order` / `class_counts`.

    Returns:
        float32 array of shape `(len(labels),)`. Not normalised (as in the authors' code).

    Example:

    >>> class_rank_weights([0, 0, 0, 1, 1, 2], base=2.0)
    array([1., 1., 1., 2., 2., 4.], dtype=float32)
    >>> class_rank_weights([0, 1, 1], base=2.0)  # class 1 is the more frequent here
    array([2., 1., 1.], dtype=float32)
    """
    labels = check_labels(labels)
    if not is_number(base) or not math.isfinite(base) or base <= 0:
        raise ValueError(f"`base` must be a finite number > 0; got {base!r}")
    if class_order is not None and class_counts is not None:
        raise ValueError("pass at most one of `class_order` and `class_counts`")
    num_classes = int(labels.max()) + 1
    if class_order is not None:
        order = np.asarray(class_order)
        if (
            order.ndim != 1
            or order.size == 0
            or not np.issubdtype(order.dtype, np.integer)
            or np.any(order < 0)
            or len(np.unique(order)) != order.size
        ):
            raise ValueError(
                "`class_order` must be a 1-D sequence of distinct non-negative class ids, most "
                f"frequent first; got {class_order!r}"
            )
        missing = np.setdiff1d(np.unique(labels), order)
        if missing.size:
            raise ValueError(f"`class_order` must contain every class in `labels`; missing {missing.tolist()}")
        order = order.astype(np.int64)
    else:
        if class_counts is None:
            counts = np.bincount(labels, minlength=num_classes)
        else:
            counts = np.asarray(class_counts)
            if (
                counts.ndim != 1
                or counts.size < num_classes
                or not np.issubdtype(counts.dtype, np.number)
                or not np.all(np.isfinite(counts))
                or np.any(counts < 0)
            ):
                raise ValueError(
                    "`class_counts` must be a 1-D array of finite counts >= 0 with one entry per "
                    f"class (at least {num_classes}); got {class_counts!r}"
                )
        # stable sort on -counts: ties keep ascending class id
        order = np.argsort(-np.asarray(counts, dtype=np.float64), kind="stable").astype(np.int64)
    rank = np.full(int(max(order.max(), labels.max())) + 1, -1, dtype=np.int64)
    rank[order] = np.arange(order.size)
    w = np.power(float(base), rank[labels].astype(np.float64))
    if not np.all(np.isfinite(w)) or np.any(w == 0):
        raise ValueError(f"`base`={base!r} ** rank overflows or underflows for {order.size} classes")
    return w.astype(np.float32)


def inverse_frequency_weights(labels, power=1.0):
    """Class inverse-frequency weights `w_i ∝ n_{c_i} ** -power`, normalised to mean 1.

    `n_c` is the number of examples of class `c` in `labels`. With `power=1` every class gets the
    same total weight; `power=0` gives all ones.

    Example:

    >>> inverse_frequency_weights([0, 0, 0, 1])
    array([0.6666667, 0.6666667, 0.6666667, 2.       ], dtype=float32)
    """
    labels = check_labels(labels)
    power = check_power(power)
    counts = np.bincount(labels).astype(np.float64)
    w = counts[labels] ** (-power)
    w = w / w.mean()
    return w.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# weights from log-densities
# ----------------------------------------------------------------------------------------------
def normalize_clip(log_weights, clip=(0.1, 10.0)):
    """Turn unnormalised log-weights into weights with mean exactly 1 that lie inside `clip`.

    Returns `w_i = clip(c * exp(l_i), low, high)` where the single constant `c > 0` is chosen so
    that `mean(w) = 1` (found by bisection on `log c` in float64: the clipped mean is
    monotone in `c`). Unclipped weights therefore keep their ratios exactly; this equals
    "normalise to mean 1, clip, renormalise, repeat until nothing changes". With `clip=None`
    it is `w = exp(l) / mean(exp(l))`, computed stably in the log domain.

    Args:
        log_weights: 1-D array of finite log-weights `l_i`.
        clip: None or (low, high) with 0 <= low <= 1 <= high and low < high (high may be inf).

    Returns:
        float32 array, same shape.

    Example:

    >>> import numpy as np
    >>> w = normalize_clip(np.log([1.0, 1.0, 1.0, 100.0]), clip=(0.1, 2.0))
    >>> [round(float(v), 4) for v in w], round(float(w.mean()), 6)
    ([0.6667, 0.6667, 0.6667, 2.0], 1.0)
    """
    l = np.asarray(log_weights, dtype=np.float64)
    if l.ndim != 1 or l.size == 0:
        raise ValueError(f"`log_weights` must be a non-empty 1-D array; got shape {l.shape}")
    if not np.all(np.isfinite(l)):
        raise ValueError("`log_weights` contains NaN or infinite values")
    clip = check_clip(clip)
    n = l.size
    lse = np.logaddexp.reduce(l)
    t0 = math.log(n) - lse  # unclipped solution: mean(exp(l + t0)) == 1
    if clip is None:
        return np.exp(l + t0).astype(np.float32)
    lo, hi = clip
    log_hi = math.log(hi) if math.isfinite(hi) else math.inf

    def clipped_mean(t):
        e = np.minimum(l + t, log_hi + 1.0) if math.isfinite(log_hi) else l + t
        return float(np.mean(np.clip(np.exp(e), lo, hi)))

    # Bracket: f(t_a) <= 1 <= f(t_b).
    t_a = math.log(lo) - l.max() if lo > 0 else t0
    t_b = log_hi - l.min() if math.isfinite(log_hi) else t0
    t_a, t_b = min(t_a, t0), max(t_b, t0)
    for _ in range(200):
        t_mid = 0.5 * (t_a + t_b)
        if t_mid in (t_a, t_b):
            break
        if clipped_mean(t_mid) < 1.0:
            t_a = t_mid
        else:
            t_b = t_mid
    t = t_a if abs(clipped_mean(t_a) - 1.0) <= abs(clipped_mean(t_b) - 1.0) else t_b
    e = np.minimum(l + t, log_hi + 1.0) if math.isfinite(log_hi) else l + t
    w = np.clip(np.exp(e), lo, hi)
    return w.astype(np.float32)


def kde_weights(
    features,
    bandwidth="median",
    power=1.0,
    clip=(0.1, 10.0),
    normalize=True,
    exclude_self=True,
    chunk_size=1024,
    return_bandwidth=False,
):
    """Inverse kernel-density example weights for rwSAM: rare (low-density) examples weigh more.

    1. `log p_i` = leave-one-out (when `exclude_self`) Gaussian KDE log-density of row i among
       all rows (`kde_density`, rows L2-normalised when `normalize`).
    2. `w_i = clip(c * exp(-power * log p_i), low, high)`, i.e. `w ∝ p^-power`, with the single
       constant `c` chosen so that `mean(w) = 1` exactly after clipping (`normalize_clip`).

    So the weights have mean 1 (up to float32 rounding), lie inside `clip`, and unclipped
    weights are exactly proportional to `p_i ** -power`.

    Args:
        features: (N, D) representations of the training examples.
        bandwidth: a number > 0 or "median" (default), "scott", "silverman" (see `kde_bandwidth`).
        power: exponent >= 0 on the inverse density (0 gives all ones).
        clip: None or (low, high) with 0 <= low <= 1 <= high, low < high.
        normalize: L2-normalise feature rows before the KDE.
        exclude_self: leave each example out of its own density estimate.
        chunk_size: rows per device computation (memory O(chunk_size * N)).
        return_bandwidth: also return the bandwidth used (a float, on the normalised features).

    Returns:
        float32 array of shape (N,), or `(weights, bandwidth)` with `return_bandwidth=True`.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 0.1, (40, 2)) + [1, 0], [[-1.0, 0.2]]]).astype("float32")
    >>> w = kde_weights(x, bandwidth=0.3, normalize=False)
    >>> bool(w[-1] > w[:-1].max()), round(float(w.mean()), 5)
    (True, 1.0)
    """
    bandwidth, power, clip, chunk_size = check_kde_options(bandwidth, power, clip, chunk_size)
    x = check_features(features)
    if normalize:
        x = unit_rows(x, "features")
    h = kde_bandwidth(x, bandwidth, normalize=False)
    logp = kde_density(
        x,
        bandwidth=h,
        normalize=False,
        exclude_self=exclude_self,
        return_log=True,
        chunk_size=chunk_size,
    )
    w = normalize_clip(-power * logp, clip=clip)
    return (w, h) if return_bandwidth else w
