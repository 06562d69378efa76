"""Per-example weights for re-weighted SAM (rwSAM): class-rank, inverse-frequency and KDE weights.

rwSAM (Liu et al., ICLR 2022) computes the SAM ascent gradient from a per-example weighted loss in
which rare examples weigh more. This module produces those weights as numpy arrays:

- `class_rank_weights`: `base ** rank(class)`, the fixed weights of the authors' code
  (1.2 on CIFAR-10-LT, 1.005 on ImageNet-LT; rank 0 is the most frequent class).
- `inverse_frequency_weights`: `n_c ** -power`, normalised to mean 1.
- `kde_weights`: inverse Gaussian kernel density of the representations, the weights the paper
  describes (its kernel, bandwidth and normalisation were not published; ours are documented in
  docs/weighting.md).

`kde_density` is the chunked Gaussian kernel density estimate behind `kde_weights`; its O(N^2 D)
part runs with `keras.ops` on the backend's device and never holds an N x N matrix.
"""

import math

import numpy as np
from keras import ops

from keras_ssl_lt._checks import check_number, check_positive_int, is_int, is_number
from keras_ssl_lt.losses import l2_normalize
from keras_ssl_lt.training.fused import exp_row_sums

__all__ = [
    "class_rank_weights",
    "inverse_frequency_weights",
    "kde_bandwidth",
    "kde_density",
    "kde_weights",
    "normalize_clip",
    "validate_weights",
]

BANDWIDTH_RULES = ("scott", "silverman", "median")


# ----------------------------------------------------------------------------------------------
# argument checks (package-internal: also used by `keras_ssl_lt.rwsam.callback` and the pre-trainers)
# ----------------------------------------------------------------------------------------------
def check_labels(labels):
    """1-D non-negative integer class ids (integer-valued floats accepted) as int64."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"`labels` must be a non-empty 1-D array of class ids; got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if (
            np.issubdtype(labels.dtype, np.floating)
            and np.all(np.isfinite(labels))
            and np.all(labels == np.round(labels))
        ):
            labels = labels.astype(np.int64)
        else:
            raise ValueError(f"`labels` must hold integer class ids; got dtype {labels.dtype}")
    if labels.min() < 0:
        raise ValueError(f"`labels` must be non-negative class ids; got minimum {labels.min()}")
    return labels.astype(np.int64)


def check_features(features, name="features"):
    """A finite, non-empty (N, D) numeric array as float32."""
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"`{name}` must be a non-empty 2-D array of shape (N, D); got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"`{name}` must be a numeric array; got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return x


def unit_rows(x, name):
    """Rows of `x` divided by their L2 norm (`keras_ssl_lt.losses.l2_normalize`); all-zero rows are refused."""
    zero = int(np.sum(~np.any(x != 0, axis=1)))
    if zero:
        raise ValueError(
            f"`{name}` has {zero} all-zero rows, which cannot be L2-normalised; pass normalize=False or fix "
            "the features"
        )
    return np.asarray(ops.convert_to_numpy(l2_normalize(x, axis=1)), dtype=np.float32)


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


def check_bandwidth(bandwidth):
    """A finite number > 0 (returned as float) or one of `BANDWIDTH_RULES`."""
    if is_number(bandwidth):
        if not math.isfinite(bandwidth) or bandwidth <= 0:
            raise ValueError(f"`bandwidth` must be a number > 0 or one of {BANDWIDTH_RULES}; got {bandwidth!r}")
        return float(bandwidth)
    if not isinstance(bandwidth, str) or bandwidth not in BANDWIDTH_RULES:
        raise ValueError(f"`bandwidth` must be a number > 0 or one of {BANDWIDTH_RULES}; got {bandwidth!r}")
    return bandwidth


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
# kernel density estimation
# ----------------------------------------------------------------------------------------------
def kde_bandwidth(features, rule="scott", normalize=True, max_samples=1000, seed=0):
    """The Gaussian-kernel bandwidth `h` for `features` under a named rule (or a given number).

    Rules (N examples, D dims, after L2-normalising rows when `normalize=True`):

    - `"scott"`: `h = sigma * N ** (-1 / (D + 4))`
    - `"silverman"`: `h = sigma * (N * (D + 2) / 4) ** (-1 / (D + 4))`
    - `"median"`: `h` = the median Euclidean distance between distinct pairs of at most
      `max_samples` rows (drawn without replacement with `seed` when N is larger).

    `sigma` is the mean over dimensions of the per-dimension standard deviation (ddof=1) of the
    features: the isotropic version of the scipy `gaussian_kde` factors. In high dimensions
    Scott/Silverman give `h` far below the typical distance between points (about
    `sigma * sqrt(2 D)`), so each point's density is dominated by its nearest neighbour; the
    median rule keeps the kernel as wide as a typical distance.

    Args:
        features: (N, D) array.
        rule: "scott", "silverman", "median" or a number > 0 (returned as is).

    Returns:
        the bandwidth as a Python float > 0.

    Example:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(100, 4))
    >>> round(kde_bandwidth(x, 0.5), 3)
    0.5
    >>> kde_bandwidth(x, "scott") > 0
    True
    """
    rule = check_bandwidth(rule)
    if not isinstance(rule, str):
        return rule
    x = check_features(features)
    if normalize:
        x = unit_rows(x, "features")
    n, d = x.shape
    if n < 2:
        raise ValueError(f"`features` needs at least 2 rows for the {rule!r} bandwidth rule; got {n}")
    if rule == "median":
        if not is_int(max_samples) or max_samples < 2:
            raise ValueError(f"`max_samples` must be an integer >= 2; got {max_samples!r}")
        if n > max_samples:
            idx = np.random.default_rng(seed).choice(n, int(max_samples), replace=False)
            x = x[np.sort(idx)]
        x64 = x.astype(np.float64)
        sq = np.sum(x64 * x64, axis=1)
        d2 = sq[:, None] + sq[None, :] - 2.0 * (x64 @ x64.T)
        iu = np.triu_indices(len(x64), k=1)
        h = float(np.sqrt(np.median(np.maximum(d2[iu], 0.0))))
    else:
        sigma = float(np.mean(np.std(x.astype(np.float64), axis=0, ddof=1)))
        if rule == "scott":
            h = sigma * n ** (-1.0 / (d + 4))
        else:
            h = sigma * (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))
    if not h > 0:
        raise ValueError(
            f"the {rule!r} bandwidth rule gives h={h!r} (the features are all identical); "
            "pass a positive number as `bandwidth`"
        )
    return h


def kde_density(
    features,
    bandwidth="scott",
    reference=None,
    normalize=True,
    exclude_self=False,
    return_log=False,
    chunk_size=1024,
):
    """Gaussian kernel density of each row of `features` under the `reference` rows.

    `p(x) = (1/M) sum_j (2 pi h^2)^(-D/2) exp(-||x - r_j||^2 / (2 h^2))` over the M reference
    rows `r_j` (default: `features` itself), the same estimate as
    `sklearn.neighbors.KernelDensity(kernel="gaussian", bandwidth=h)`. Rows of both sets are
    L2-normalised first when `normalize=True` (then `h` refers to the normalised features).
    With `exclude_self=True` (only when `reference` is None) each point is left out of its own
    sum (leave-one-out: M - 1 terms).

    The pairwise part runs with `keras.ops` in float32 on the current backend, `chunk_size`
    query rows at a time: memory is O(chunk_size * M), never N x M. The log-sum-exp is taken per
    chunk; the normalising constant is added in float64.

    Args:
        features: (N, D) array of query points.
        bandwidth: a number > 0 or a rule name (see `kde_bandwidth`; computed on the reference).
        reference: optional (M, D) array; default `features`.
        normalize: L2-normalise rows of both sets first.
        exclude_self: leave each point out of its own density (requires `reference=None`).
        return_log: return the log-density instead of the density. In high dimensions the
            density itself under- or overflows float64; use the log.
        chunk_size: query rows per device computation.

    Returns:
        float64 array of shape (N,): the density, or its natural log when `return_log=True`.

    Example:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(50, 3)).astype("float32")
    >>> logp = kde_density(x, bandwidth=0.5, return_log=True)
    >>> logp.shape
    (50,)
    """
    x = check_features(features)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    if reference is None:
        r = None
    else:
        if exclude_self:
            raise ValueError(
                "`exclude_self=True` needs `reference=None` (a point is only left out of its own data set)"
            )
        r = check_features(reference, "reference")
        if r.shape[1] != x.shape[1]:
            raise ValueError(
                f"`reference` must have the same feature dimension as `features`: {r.shape[1]} != {x.shape[1]}"
            )
    if normalize:
        x = unit_rows(x, "features")
        if r is not None:
            r = unit_rows(r, "reference")
    ref = x if r is None else r
    m, d = ref.shape
    if exclude_self and m < 2:
        raise ValueError("`exclude_self=True` needs at least 2 rows in `features`")
    h = kde_bandwidth(ref, bandwidth, normalize=False)
    # Distances are shift-invariant: centring both sets on the reference mean reduces the float32
    # cancellation in ||x||^2 + ||r||^2 - 2 x.r.
    centre = ref.mean(axis=0, dtype=np.float64).astype(np.float32)
    xq = x - centre
    rc = xq if r is None else ref - centre
    lse = _chunked_logsumexp(xq, rc, 1.0 / (2.0 * h * h), exclude_self, chunk_size)
    count = m - 1 if exclude_self else m
    log_norm = -math.log(count) - 0.5 * d * math.log(2.0 * math.pi * h * h)
    logp = lse.astype(np.float64) + log_norm
    if return_log:
        return logp
    return np.exp(logp)


# A row's sum of kernel terms is read off a plain sum of `exp` when it is at least this large (so that terms
# flushed to zero or denormal cannot matter) and, leaving itself out, keeps at least half of it (so that the
# subtraction of its own term cannot cost precision); other rows take the max-shifted log-sum-exp.
_PLAIN_SUM_MIN = 1e-20
_PLAIN_SUM_KEEP = 0.5


def _row_sq(a, block=8192):
    """Squared L2 norms of the rows of float32 `a`, summed in float64 a block of rows at a time (bounded memory)."""
    out = np.empty(len(a), np.float32)
    for s in range(0, len(a), block):
        out[s : s + block] = np.sum(np.square(a[s : s + block], dtype=np.float64), axis=1)
    return out


def _chunked_logsumexp(xq, rc, inv_two_h2, exclude_self, chunk_size):
    """log sum_j exp(-||x_i - r_j||^2 * inv_two_h2) for every query row, chunked over queries.

    On the backend's device. One matrix product of augmented rows gives the exponents directly,
    `[2 s x, -s, -s |x|^2] . [r, |r|^2, 1] = -s ||x - r||^2` (`s = inv_two_h2`, all <= 0 up to rounding), so
    each chunk costs that product, one `exp` and one row sum (`keras_ssl_lt.training.fused.exp_row_sums`, fused
    where the backend allows); the leave-one-out sum subtracts the row's own term. Rows where that plain sum is unsafe (see `_PLAIN_SUM_MIN`, `_PLAIN_SUM_KEEP`: an isolated
    point under a narrow kernel, or one whose own term dominates) are redone with the max-shifted
    `ops.logsumexp`, their own entry masked. Every chunk has the same shape (the last one is zero-padded and
    the padding discarded), so backends that compile each op per shape (JAX) compile once per (chunk,
    reference) shape and reuse it across calls.
    """
    n, d = xq.shape
    m = rc.shape[0]
    chunk = min(chunk_size, n)
    s = np.float32(inv_two_h2)
    r_aug = np.empty((m, d + 2), np.float32)
    r_aug[:, :d] = rc
    r_aug[:, d] = _row_sq(rc)
    r_aug[:, d + 1] = 1.0
    r_aug_t = ops.transpose(ops.convert_to_tensor(r_aug, dtype="float32"))  # (D + 2, M)
    del r_aug
    q_sq = _row_sq(xq)
    col = ops.arange(m, dtype="int32")[None, :] if exclude_self else None
    out = np.empty(n, dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        rows = stop - start
        # A fresh array per chunk: a backend may share its memory (zero-copy) while the product is pending.
        q_aug = np.zeros((chunk, d + 2), np.float32)  # padding rows stay zero
        q_aug[:rows, :d] = xq[start:stop] * (2 * s)
        q_aug[:rows, d] = -s
        q_aug[:rows, d + 1] = -s * q_sq[start:stop]
        # exp of the (chunk, M) product -s ||x_i - r_j||^2, summed per row (fused where the backend allows).
        own = np.minimum(np.arange(start, start + chunk), m - 1).astype(np.int32)[:, None] if exclude_self else None
        total, own = exp_row_sums(q_aug, r_aug_t, own)
        total = total.astype(np.float64)
        if exclude_self:
            kept = total - own.astype(np.float64)
            ok = (kept >= _PLAIN_SUM_MIN) & (kept >= _PLAIN_SUM_KEEP * total)
        else:
            kept = total
            ok = kept >= _PLAIN_SUM_MIN
        lse = np.log(np.where(ok, kept, 1.0))
        redo = np.flatnonzero(~ok[:rows])
        if redo.size:
            # The exact path on those rows only; their count is padded to a power of two (repeating a row) so
            # that backends compiling per shape compile few shapes.
            pad = min(1 << (redo.size - 1).bit_length(), chunk)
            take = np.concatenate([redo, np.full(pad - redo.size, redo[0])]).astype(np.int32)
            sub = ops.matmul(ops.convert_to_tensor(q_aug[take]), r_aug_t)
            if exclude_self:
                row = ops.convert_to_tensor((start + take)[:, None])
                sub = ops.where(row == col, -np.inf, sub)
            lse[redo] = ops.convert_to_numpy(ops.logsumexp(sub, axis=1))[: redo.size]
            del sub
        out[start:stop] = lse[:rows]
    return out


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
