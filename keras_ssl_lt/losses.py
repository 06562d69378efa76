"""Self-supervised and supervised losses, written with `keras.ops` only.

Every loss returns a **per-example** vector of shape `(B,)` in float32 (also under mixed precision:
inputs are cast to float32 first), so that re-weighting is a weighted mean of this vector and never
a special code path. The usual scalar loss is `keras.ops.mean(loss_vector)`.

Normalisation divides by `sqrt(max(||x||^2, epsilon^2))`, so a zero vector maps to zero (not NaN)
and its gradient stays finite. Softmax-type losses use `logsumexp`.
"""

from keras import ops

from keras_ssl_lt._checks import check_bool

__all__ = [
    "byol_loss",
    "cross_entropy",
    "embedding_std",
    "info_nce",
    "l2_normalize",
    "negative_cosine_similarity",
    "nt_xent",
]

_EPS = 1e-12
# Added to the self-similarity logits of NT-Xent: exp(-1e9) is exactly 0 in float32, and unlike
# -inf it cannot produce inf - inf = NaN anywhere in the graph or its gradient.
_MASK_VALUE = -1e9


def _f32(x):
    x = ops.convert_to_tensor(x)
    return ops.cast(x, "float32")


def _check_rank(x, rank, name):
    if len(x.shape) != rank:
        raise ValueError(f"`{name}` must have rank {rank}; got shape {tuple(x.shape)}")


def _temperature(temperature):
    """A positive Python number (checked), or a scalar tensor (a schedule's value inside a compiled step,
    taken as it is) as float32."""
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        if temperature <= 0:
            raise ValueError(f"`temperature` must be a positive number; got {temperature!r}")
        return float(temperature)
    if isinstance(temperature, (bool, str)) or temperature is None or not hasattr(temperature, "shape"):
        raise ValueError(f"`temperature` must be a positive number or a scalar tensor; got {temperature!r}")
    if len(tuple(temperature.shape)) != 0:
        raise ValueError(f"`temperature` must be a scalar; got shape {tuple(temperature.shape)}")
    return ops.cast(temperature, "float32")


def l2_normalize(x, axis=-1, epsilon=_EPS):
    """Divide `x` by its L2 norm along `axis` (float32), safely for zero vectors.

    Computes `x / sqrt(max(sum(x**2), epsilon**2))`: a zero vector stays zero and its gradient
    is finite (the `max` routes the gradient away from `sqrt(0)`).

    Example:

    >>> import numpy as np
    >>> np.asarray(l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]])))
    array([[0.6, 0.8],
           [0. , 0. ]], dtype=float32)
    """
    x = _f32(x)
    sq = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x / ops.sqrt(ops.maximum(sq, epsilon * epsilon))


def _cosine(a, b):
    a = _f32(a)
    b = _f32(b)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"the two inputs must have the same feature dimension; got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return ops.sum(l2_normalize(a) * l2_normalize(b), axis=-1)


def negative_cosine_similarity(p, z):
    """SimSiam loss `-cos(p, z)` per example, shape `(B,)`.

    The caller applies the stop-gradient (`keras.ops.stop_gradient(z)`) and symmetrises:
    `0.5 * (D(p1, sg(z2)) + D(p2, sg(z1)))`. Values lie in [-1, 1]; -1 is perfect agreement.

    Example:

    >>> import numpy as np
    >>> np.asarray(negative_cosine_similarity(np.ones((2, 4)), np.ones((2, 4))))
    array([-1., -1.], dtype=float32)
    """
    return -_cosine(p, z)


def byol_loss(p, z):
    """BYOL loss `2 - 2 cos(p, z)` per example, shape `(B,)` (the squared distance of unit vectors).

    The caller passes the target projection `z` through `keras.ops.stop_gradient`.

    Example:

    >>> import numpy as np
    >>> np.asarray(byol_loss(np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]])))
    array([2.], dtype=float32)
    """
    return 2.0 - 2.0 * _cosine(p, z)


def nt_xent(z1, z2, temperature=0.5, global_z1=None, global_z2=None, offset=0, num_groups=1):
    """SimCLR NT-Xent loss per example, shape `(B,)`.

    `z1[i]` and `z2[i]` are the two views of example `i`. Both are L2-normalised inside. Over the
    `2B` views, view `a` has one positive (its partner) and `2B - 2` negatives (every other view,
    itself excluded): `l_a = logsumexp_{c != a}(s_ac / T) - s_a,partner / T` with cosine `s`.
    Example `i` gets `(l_i + l_{i+B}) / 2`, so the mean of the result equals the usual NT-Xent
    (the mean of `l` over all `2B` views).

    `temperature` is a positive number, or a scalar tensor (a schedule's value inside a compiled step, TS).

    Data-parallel training (docs/scaling.md) uses the optional arguments:

    - `global_z1`, `global_z2`: the views of the whole global batch `(N, D)` (gathered over replicas),
      of which `z1`, `z2` are rows `offset .. offset + B`. The `B` local examples are then the anchors
      and all `2N - 1` other views of the global batch their candidates, as multi-GPU SimCLR does; with
      the gradient flowing through the gather, the replicas' losses sum to the single-device loss;
    - `num_groups`: splits the batch into that many equal consecutive blocks and takes negatives only
      from the anchor's own block (per-replica negatives when the whole batch is one program, as
      under JAX's `keras.distribution.DataParallel`). `1` (default) uses the whole batch.

    Example:

    >>> import numpy as np
    >>> z = np.eye(4, dtype="float32")
    >>> tuple(nt_xent(z, z, temperature=0.5).shape)
    (4,)
    """
    temperature = _temperature(temperature)
    if not isinstance(num_groups, int) or isinstance(num_groups, bool) or num_groups < 1:
        raise ValueError(f"`num_groups` must be a positive integer; got {num_groups!r}")
    if (global_z1 is None) != (global_z2 is None):
        raise ValueError("`global_z1` and `global_z2` must be given together (the two views of the global batch)")
    if global_z1 is not None and num_groups != 1:
        raise ValueError(f"`num_groups` must be 1 when `global_z1`/`global_z2` are given; got {num_groups}")
    z1 = l2_normalize(z1)
    z2 = l2_normalize(z2)
    _check_rank(z1, 2, "z1")
    _check_rank(z2, 2, "z2")
    if tuple(z1.shape) != tuple(z2.shape):
        raise ValueError(f"`z1` and `z2` must have the same shape; got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if global_z1 is None:
        g1, g2 = z1, z2
    else:
        g1, g2 = l2_normalize(global_z1), l2_normalize(global_z2)
        _check_rank(g1, 2, "global_z1")
        _check_rank(g2, 2, "global_z2")
        if g1.shape[-1] != z1.shape[-1] or g2.shape[-1] != z1.shape[-1]:
            raise ValueError(
                f"`global_z1` and `global_z2` must have shape (N, {z1.shape[-1]}); got {tuple(g1.shape)} and "
                f"{tuple(g2.shape)}"
            )
    b = ops.shape(z1)[0]
    n = ops.shape(g1)[0]
    anchors = ops.concatenate([z1, z2], axis=0)  # (2B, D)
    candidates = ops.concatenate([g1, g2], axis=0)  # (2N, D)
    sim = ops.matmul(anchors, ops.transpose(candidates)) / temperature  # (2B, 2N)
    rows = ops.arange(b, dtype="int32") + ops.cast(offset, "int32")  # local examples' rows in the global batch
    own = ops.concatenate([rows, rows + n], axis=0)  # each view's own column
    columns = ops.arange(2 * n, dtype="int32")
    masked = ops.equal(ops.expand_dims(own, 1), ops.expand_dims(columns, 0))
    if num_groups > 1:
        size = n // num_groups
        anchor_group = ops.concatenate([rows, rows], axis=0) // size
        column_group = ops.mod(columns, n) // size
        masked = ops.logical_or(
            masked, ops.not_equal(ops.expand_dims(anchor_group, 1), ops.expand_dims(column_group, 0))
        )
    mask = ops.cast(masked, "float32")
    logits = sim * (1.0 - mask) + _MASK_VALUE * mask
    # Positive of view a is its partner: a + N for the first half, a - N for the second.
    pos = ops.sum(z1 * z2, axis=-1) / temperature  # (B,)
    lse = ops.logsumexp(logits, axis=-1)  # (2B,)
    per_view = lse - ops.concatenate([pos, pos], axis=0)
    first, second = ops.split(per_view, 2, axis=0)
    return 0.5 * (first + second)


def info_nce(q, k, queue, temperature=0.2, normalize=True):
    """MoCo InfoNCE loss per example, shape `(B,)`.

    Positive logit `q_i . k_i`, negative logits `q_i . queue_j` for the `K` rows of `queue`
    (shape `(K, D)`, one stored key per row; MoCo's reference code stores the transpose),
    all divided by `temperature` (a positive number, or a scalar tensor such as a schedule's value); the loss is
    the cross-entropy with the positive as class 0.

    With `normalize=True` (default) `q`, `k` and `queue` are L2-normalised here (idempotent when
    the caller already normalised them). With `normalize=False` the caller must pass unit
    vectors, as MoCo's encoder and queue do. The caller stops the gradient of `k` and `queue`.

    Example:

    >>> import numpy as np
    >>> q = np.eye(2, 8, dtype="float32"); queue = np.eye(16, 8, k=0, dtype="float32")
    >>> tuple(info_nce(q, q, queue).shape)
    (2,)
    """
    t = _temperature(temperature)
    normalize = check_bool(normalize, "normalize")
    q, k, queue = _f32(q), _f32(k), _f32(queue)
    _check_rank(q, 2, "q")
    _check_rank(k, 2, "k")
    _check_rank(queue, 2, "queue")
    if tuple(q.shape) != tuple(k.shape):
        raise ValueError(f"`q` and `k` must have the same shape; got {tuple(q.shape)} and {tuple(k.shape)}")
    if queue.shape[-1] != q.shape[-1]:
        raise ValueError(f"`queue` must have shape (K, {q.shape[-1]}) (one key per row); got {tuple(queue.shape)}")
    if normalize:
        q, k, queue = l2_normalize(q), l2_normalize(k), l2_normalize(queue)
    l_pos = ops.sum(q * k, axis=-1, keepdims=True) / t  # (B, 1)
    l_neg = ops.matmul(q, ops.transpose(queue)) / t  # (B, K)
    logits = ops.concatenate([l_pos, l_neg], axis=-1)
    return ops.logsumexp(logits, axis=-1) - l_pos[:, 0]


def cross_entropy(logits, labels):
    """Softmax cross-entropy per example, shape `(B,)`, from integer class `labels` of shape `(B,)`.

    `keras.ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)` in float32 (a log-softmax,
    stable for large logits), with the shapes checked.

    Example:

    >>> import numpy as np
    >>> round(float(cross_entropy(np.zeros((1, 4)), np.array([2]))[0]), 6)  # log(4)
    1.386294
    """
    logits = _f32(logits)
    _check_rank(logits, 2, "logits")
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) != 1:
        raise ValueError(f"`labels` must be integer class indices of shape (B,); got shape {tuple(labels.shape)}")
    return ops.sparse_categorical_crossentropy(ops.cast(labels, "int32"), logits, from_logits=True)


def embedding_std(z):
    """Collapse monitor: mean over dimensions of the per-dimension std of L2-normalised `z`.

    A scalar (not per example). For `d`-dimensional embeddings spread over the sphere it is close
    to `1/sqrt(d)`; it falls to 0 when all embeddings collapse to one vector (SimSiam, Sec. 4.1).
    The std is the population std over the batch (`ddof=0`).

    Example:

    >>> import numpy as np
    >>> float(embedding_std(np.ones((8, 16))))
    0.0
    """
    z = l2_normalize(z)
    _check_rank(z, 2, "z")
    return ops.mean(ops.std(z, axis=0))
