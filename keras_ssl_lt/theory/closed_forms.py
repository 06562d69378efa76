"""What the toy model's learners converge to, in closed form.

- SSL: writing `M = W^T W` (PSD, rank <= m), the objective is `-tr(M S) + 1/2 ||M||_F^2` with `S` the
  positive-pair second moment (`toy_second_moment`, or `X^T X / n` on a sample): the augmentation noise has
  mean zero and is independent across the pair. Its minimiser over rank-`m` PSD matrices keeps the top `m`
  eigenpairs with positive eigenvalue: `M* = sum_{i<=m} max(l_i, 0) v_i v_i^T` (Eckart-Young). For the toy
  distribution the two largest eigenvalues belong to `e1` (`1 - p + rho^2`) and `e2`
  (`(1 - p) tau^2 / 2 + p + rho^2`): both kept for `m >= 2` whatever the rare share `p`.
- Supervised: on the noiseless toy data with no rare example, the minimum-norm solution of the two-layer
  network with margin 1 has effective map `[e1; -e1; 0]` (class rows), so `W1` is rank one along `e1`:
  `e2` is lost (no constraint needs it, and any `e2` weight only adds norm).
"""

import numpy as np

from keras_ssl_lt.theory.toy_data import toy_basis, toy_second_moment

__all__ = ["ssl_closed_form", "ssl_closed_form_alignment", "supervised_min_norm_features"]


def ssl_closed_form(second_moment, feature_dim):
    """The minimiser `M* = W^T W` of the SSL objective with `feature_dim` features (float64 `(d, d)`).

    >>> import numpy as np
    >>> ssl_closed_form(np.diag([3.0, 2.0, 1.0]), 2).diagonal().tolist()
    [3.0, 2.0, 0.0]
    """
    s = np.asarray(second_moment, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"`second_moment` must be a square matrix; got shape {s.shape}")
    if isinstance(feature_dim, bool) or not isinstance(feature_dim, (int, np.integer)) or feature_dim < 1:
        raise ValueError(f"`feature_dim` must be a positive integer; got {feature_dim!r}")
    vals, vecs = np.linalg.eigh((s + s.T) / 2)
    top = np.argsort(vals)[::-1][:feature_dim]
    lam = np.clip(vals[top], 0.0, None)
    return (vecs[:, top] * lam) @ vecs[:, top].T


def ssl_closed_form_alignment(d, tau, rho, rare_share, feature_dim):
    """`(alignment with e1, alignment with e2)` of the SSL minimiser on the population (see `measures.alignment`).

    >>> a1, a2 = ssl_closed_form_alignment(8, tau=1.0, rho=0.0, rare_share=0.0, feature_dim=2)
    >>> round(a1, 3), round(a2, 3)
    (1.0, 0.707)
    """
    m = ssl_closed_form(toy_second_moment(d, tau, rho, rare_share), feature_dim)
    e1, e2 = toy_basis(d)
    top = np.sqrt(max(np.linalg.eigvalsh(m).max(), 0.0))
    if top == 0:
        return 0.0, 0.0
    # ||W e|| = sqrt(e^T M e) and ||W||_op = sqrt(lambda_max(M)).
    return float(np.sqrt(e1 @ m @ e1) / top), float(np.sqrt(e2 @ m @ e2) / top)


def supervised_min_norm_features(d):
    """The feature direction of the supervised minimum-norm margin solution (rare share 0, no noise): `e1`.

    Returns `W1` as a `(1, d)` unit-norm array (its scale is irrelevant to alignments and probes).

    >>> supervised_min_norm_features(3).tolist()
    [[1.0, 0.0, 0.0]]
    """
    e1, _ = toy_basis(d)
    return e1[None, :].copy()
