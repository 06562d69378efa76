"""Collapse diagnostics of embeddings: RankMe, the effective rank of a batch of representations.

`rankme(embeddings)` takes one batch; `RankMeMetric` accumulates a whole epoch in a Keras metric, cheaply
(one `D x D` matrix product per step), and computes the singular values only when its result is read.

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

import keras
import numpy as np
from keras import ops

__all__ = ["RankMeMetric", "rankme", "rankme_from_singular_values"]


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


def rankme_from_singular_values(s, eps: float = 1e-7) -> float:
    """RankMe from singular values `s` (numpy, float64): `exp(-sum p log p)`, `p = s / sum(s) + eps`.

    >>> rankme_from_singular_values(np.ones(3))
    3.0000000...
    """
    s = np.asarray(s, dtype="float64")
    total = float(s.sum())
    if not total > 0:
        return 0.0
    p = s / total + eps
    return float(np.exp(-np.sum(p * np.log(p))))


class RankMeMetric(keras.metrics.Metric):
    """RankMe of all the embeddings seen since the last reset (an epoch in `fit`, the whole data in `evaluate`).

    RankMe of the stacked `(N, D)` embeddings `Z` (Garrido et al., ICML 2023; the representations as they are,
    not normalised) from the eigenvalues of the Gram matrix `Z^T Z`, whose square roots are the singular values
    of `Z`. Each `update_state(z)` adds a batch: `(z - c)^T (z - c)`, the column sums of `z` and the count, in
    float32 whatever the compute dtype (bfloat16 under `mixed_bfloat16`), so a step costs one `D x D` matrix
    product. `result()` rebuilds `Z^T Z = C + c s^T + s c^T - N c c^T` on the host in float64 and takes its
    eigenvalues there (`numpy.linalg.eigvalsh`): the result is read once per epoch by Keras (the per-step logs of
    a `Pretrainer` carry 0 for it, see `Pretrainer._update_metrics`), never inside the compiled step.

    Why the shift `c` (the mean embedding of the previous reset's data; zero at first): a float32 Gram of nearly
    collapsed embeddings (all close to one vector) carries rounding noise proportional to its one large
    eigenvalue, which would show up as many small spurious singular values and read as a rank well above 1.
    About their mean, the embeddings' float32 Gram is small when they collapse, and the large rank-one part is
    added in float64 (tested: a collapsed epoch reads 1, as `rankme` on the stacked embeddings does).

    The state is sums (the Gram, column sums, count): under `tf.distribute` they are summed over the replicas
    when read, which is the Gram of the global batch; the shift is the same on every replica.

    Args:
        dim: the embeddings' dimension `D`; `None` leaves the state to `build(dim)` (a `Pretrainer` creates its
            tracker before its heads exist and builds it at the first use).
        eps: RankMe's `eps` (the paper's 1e-7), as in `rankme`.

    Example:

    >>> import numpy as np
    >>> m = RankMeMetric(4)
    >>> m.update_state(np.eye(4, dtype="float32")[:2]); m.update_state(np.eye(4, dtype="float32")[2:])
    >>> round(float(m.result()), 4)
    4.0
    """

    def __init__(self, dim: int | None = None, eps: float = 1e-7, name: str = "rankme", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        if not (isinstance(eps, (int, float)) and not isinstance(eps, bool) and eps > 0 and np.isfinite(eps)):
            raise ValueError(f"`eps` must be a positive number; got {eps!r}")
        self.eps, self.dim = float(eps), None
        if dim is not None:
            self.build(dim)

    @property
    def built(self) -> bool:
        return self.dim is not None

    def build(self, dim: int) -> None:
        """Creates the state for `dim`-dimensional embeddings (once)."""
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"`dim` must be a positive int (the embeddings' dimension); got {dim!r}")
        if self.dim is not None:
            if int(dim) != self.dim:
                raise ValueError(f"this RankMeMetric is built for dimension {self.dim}; got {dim}")
            return
        self.dim = int(dim)
        self.gram = self.add_variable(shape=(self.dim, self.dim), initializer="zeros", dtype="float32", name="gram")
        self.total = self.add_variable(shape=(self.dim,), initializer="zeros", dtype="float32", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="count")
        self.shift = self.add_variable(
            shape=(self.dim,), initializer="zeros", dtype="float32", aggregation="mean", name="shift"
        )

    def update_state(self, embeddings, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("`sample_weight` is not supported by RankMeMetric")
        z = ops.cast(embeddings, "float32")
        if not self.built:
            raise ValueError("RankMeMetric needs `dim` (or `build(dim)`) before its first update")
        if len(z.shape) != 2 or z.shape[-1] != self.dim:
            raise ValueError(f"`embeddings` must be (N, {self.dim}); got shape {tuple(z.shape)}")
        y = z - self.shift
        self.gram.assign_add(ops.matmul(ops.transpose(y), y))
        self.total.assign_add(ops.sum(z, axis=0))
        self.count.assign_add(ops.cast(ops.shape(z)[0], "float32"))

    def gram_matrix(self) -> np.ndarray:
        """`Z^T Z` of the embeddings seen since the last reset, float64 numpy `(D, D)` (host)."""
        c = np.asarray(ops.convert_to_numpy(self.shift), "float64")
        s = np.asarray(ops.convert_to_numpy(self.total), "float64")
        n = float(ops.convert_to_numpy(self.count))
        g = np.asarray(ops.convert_to_numpy(self.gram), "float64")
        return g + np.outer(c, s) + np.outer(s, c) - n * np.outer(c, c)

    def result(self):
        """RankMe of the accumulated embeddings (0 before any update, NaN after a non-finite one); on the host."""
        if not self.built or float(ops.convert_to_numpy(self.count)) == 0:
            return ops.convert_to_tensor(0.0, "float32")
        gram = self.gram_matrix()
        if not np.all(np.isfinite(gram)):  # non-finite embeddings (a diverged step): NaN, as the loss reads
            return ops.convert_to_tensor(float("nan"), "float32")
        lam = np.linalg.eigvalsh(gram)
        value = rankme_from_singular_values(np.sqrt(np.clip(lam, 0.0, None)), self.eps)
        return ops.convert_to_tensor(value, "float32")

    def reset_state(self):
        """Empties the sums; the shift becomes the mean embedding of the data seen since the previous reset."""
        if not self.built:
            return
        n = float(ops.convert_to_numpy(self.count))
        mean = ops.convert_to_numpy(self.total) / np.float32(max(n, 1.0))
        if n > 0 and np.all(np.isfinite(mean)):  # a non-finite epoch keeps the previous shift
            self.shift.assign(mean)
        self.gram.assign(ops.zeros((self.dim, self.dim), "float32"))
        self.total.assign(ops.zeros((self.dim,), "float32"))
        self.count.assign(0.0)

    def get_config(self):
        return {"dim": self.dim, "eps": self.eps, "name": self.name, "dtype": self.dtype}
