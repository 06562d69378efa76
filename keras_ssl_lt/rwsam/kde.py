"""Gaussian kernel density estimation of representations, behind rwSAM's KDE weights.

- `kde_bandwidth`: the kernel's bandwidth under a named rule ("scott", "silverman", "median") or a number;
- `kde_density`: the chunked Gaussian kernel density (or its log) of each row, leave-one-out on request.
  Its O(N^2 D) part runs with `keras.ops` on the backend's device and never holds an N x N matrix.

The weights built from these densities (`kde_weights`) are in `keras_ssl_lt.rwsam.weights`, which also
re-exports both functions under their old path (`keras_ssl_lt.rwsam.weights.kde_density`).

Example:

>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(20, 3)).astype("float32")
>>> h = kde_bandwidth(x, "median")
>>> kde_density(x, bandwidth=h, return_log=True, exclude_self=True).shape
(20,)
"""

import math

import numpy as np
from keras import ops

from keras_ssl_lt._checks import check_positive_int, is_int, is_number
from keras_ssl_lt.losses import l2_normalize
from keras_ssl_lt.training.fused import exp_row_sums

__all__ = ["BANDWIDTH_RULES", "check_bandwidth", "check_features", "kde_bandwidth", "kde_density", "unit_rows"]

BANDWIDTH_RULES = ("scott", "silverman", "median")


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


def check_bandwidth(bandwidth):
    """A finite number > 0 (returned as float) or one of `BANDWIDTH_RULES`."""
    if is_number(bandwidth):
        if not math.isfinite(bandwidth) or bandwidth <= 0:
            raise ValueError(f"`bandwidth` must be a number > 0 or one of {BANDWIDTH_RULES}; got {bandwidth!r}")
        return float(bandwidth)
    if not isinstance(bandwidth, str) or bandwidth not in BANDWIDTH_RULES:
        raise ValueError(f"`bandwidth` must be a number > 0 or one of {BANDWIDTH_RULES}; got {bandwidth!r}")
    return bandwidth


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
