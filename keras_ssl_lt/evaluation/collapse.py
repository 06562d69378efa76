"""Collapse diagnostics of embeddings: RankMe, the effective rank of a batch of representations.

RankMe (Garrido, Balestriero, Najman & LeCun, ICML 2023) is `exp(H(p))` with `p_k = s_k / sum(s) + eps`, the
singular values `s` of the `(N, D)` embedding matrix normalised to a distribution and `H` its Shannon entropy.
It is 1 for a collapsed (rank-one) batch and `min(N, D)` for an isotropic one, costs one SVD of a batch, and is
written with `keras.ops`, so it runs inside a compiled step on every backend.

Example:

>>> import numpy as np
>>> round(float(rankme(np.eye(4, dtype="float32"))), 4)
4.0
>>> round(float(rankme(np.ones((8, 4), "float32"))), 3)
1.0
"""

from __future__ import annotations

from keras import ops

__all__ = ["rankme"]


def rankme(embeddings, eps: float = 1e-7):
    """RankMe of `embeddings` `(N, D)` (float32 scalar tensor); `eps` as in the paper (1e-7).

    The SVD is computed in float32 whatever the embeddings' dtype (bfloat16 under mixed precision).
    """
    if len(embeddings.shape) != 2:
        raise ValueError(f"`embeddings` must be (N, D); got shape {tuple(embeddings.shape)}")
    if not float(eps) > 0:
        raise ValueError(f"`eps` must be a positive number; got {eps!r}")
    s = ops.svd(ops.cast(embeddings, "float32"), compute_uv=False)
    p = s / (ops.sum(s) + 1e-12) + eps
    return ops.exp(-ops.sum(p * ops.log(p)))
