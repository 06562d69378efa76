"""How many examples per class: long-tailed count profiles and many / medium / few class groups.

Pure numpy functions of their arguments (no labels, no randomness): `long_tail_counts` gives the
per-rank counts of a profile, `class_groups` cuts classes into many / medium / few-shot groups.
`keras_ssl_lt.data.imbalance` turns them into subsets of a labelled source.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from keras_ssl_lt._checks import check_fraction, check_int, check_number

__all__ = ["GROUP_RULES", "PROFILES", "check_class_order", "class_groups", "floor_counts", "long_tail_counts"]

PROFILES = ("exp", "pareto", "step", "balanced")
GROUP_RULES = ("rank", "counts")

# Floors are taken after adding this relative tolerance so that products that are integers in exact
# arithmetic (5000 * 0.01 = 50) never lose one to binary round-off (49.999999...).
_FLOOR_RTOL = 1e-9


def floor_counts(x):
    """`floor` of non-negative counts, robust to binary round-off just below an integer (int64).

    Example:

    >>> floor_counts([5000 * 0.01, 2.5]).tolist()
    [50, 2]
    """
    x = np.asarray(x, dtype=np.float64)
    return np.floor(x * (1.0 + _FLOOR_RTOL) + _FLOOR_RTOL).astype(np.int64)


def long_tail_counts(
    num_classes: int, max_per_class: int, ratio: float = 0.01, profile: str = "exp", alpha: float = 6.0
) -> np.ndarray:
    """Per-rank example counts of a long-tailed profile, most frequent first.

    `ratio` is always min/max: the last rank gets `floor(max_per_class * ratio)` and the first
    `max_per_class`; `ratio=1` gives a balanced profile. With `C = num_classes`, rank `c` in
    `0..C-1`, `M = max_per_class`, `r = ratio` and `floor` applied once at the end:

    - `"exp"`: `M * r ** (c / (C - 1))` (Cao et al. 2019, the paper's CIFAR-10-LT).
    - `"step"`: `M` for the first `ceil(C / 2)` ranks, `M * r` for the rest (Buda et al. 2018).
    - `"pareto"`: ImageNet-LT style. The Lomax (Pareto II) quantile with shape `alpha` at
      exceedance probability `(c + 1) / C`, `x_c = ((c + 1) / C) ** (-1 / alpha) - 1`, rescaled
      linearly so that `x_0 -> M` and `x_{C-1} = 0 -> M * r`:
      `M * r + M * (1 - r) * x_c / x_0`. With `C=1000, M=1280, r=5/1280, alpha=6` this gives
      121,449 images from 1280 down to 5 (ImageNet-LT: 115,846).
    - `"balanced"`: `M` for every rank (`ratio` must be 1).

    Args:
        num_classes: number of classes `C >= 1`.
        max_per_class: count of the most frequent class `M >= 1`.
        ratio: imbalance ratio min/max in (0, 1].
        profile: one of `"exp"`, `"pareto"`, `"step"`, `"balanced"`.
        alpha: Pareto shape (only for `"pareto"`), > 0.

    Returns:
        int64 array of length `C`, non-increasing.

    Example:

    >>> long_tail_counts(10, 5000, 0.01, "exp").tolist()
    [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    """
    C = check_int(num_classes, "num_classes", low=1)
    M = check_int(max_per_class, "max_per_class", low=1)
    r = check_fraction(ratio, "ratio")
    if profile not in PROFILES:
        raise ValueError(f"`profile` must be one of {PROFILES}; got {profile!r}")
    rank = np.arange(C, dtype=np.float64)
    if profile == "balanced":
        if r != 1.0:
            raise ValueError(f"`ratio` must be 1 for profile='balanced'; got {ratio!r}")
        raw = np.full(C, float(M))
    elif C == 1:
        raw = np.array([float(M)])
    elif profile == "exp":
        raw = M * r ** (rank / (C - 1))
    elif profile == "step":
        raw = np.where(rank < (C + 1) // 2, float(M), M * r)
    else:  # pareto
        alpha = check_number(alpha, "alpha", low=0.0, low_open=True)
        x = ((rank + 1.0) / C) ** (-1.0 / alpha) - 1.0
        raw = M * r + M * (1.0 - r) * x / x[0]
    counts = floor_counts(raw)
    counts[0] = M  # exact by definition; guards the floor of M * (1 - r) + M * r
    if counts[-1] < 1:
        raise ValueError(
            f"`ratio`={ratio!r} with `max_per_class`={M} gives the rarest class "
            f"floor({M} * {ratio!r}) = 0 examples; choose ratio >= 1 / max_per_class = {1 / M:.6g}"
        )
    return counts


def check_class_order(class_order, num_classes):
    """`class_order` as an int64 permutation of `0..num_classes-1` (class id at each frequency rank).

    Example:

    >>> check_class_order([2, 0, 1], 3).tolist()
    [2, 0, 1]
    """
    order = np.asarray(class_order)
    if (
        order.ndim != 1
        or not np.issubdtype(order.dtype, np.integer)
        or order.dtype == bool
        or sorted(order.tolist()) != list(range(num_classes))
    ):
        raise ValueError(
            f"`class_order` must be None, 'random' or a permutation of 0..{num_classes - 1}; got {class_order!r}"
        )
    return order.astype(np.int64)


def _check_counts(counts):
    arr = np.asarray(counts)
    if arr.ndim != 1 or arr.size == 0 or arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            "`counts` must be a non-empty 1-D array of integer examples per class; "
            f"got shape {arr.shape}, dtype {arr.dtype}"
        )
    if arr.min() < 0:
        raise ValueError(f"`counts` must be non-negative examples per class; got {int(arr.min())}")
    return arr.astype(np.int64)


def class_groups(
    counts: ArrayLike,
    rule: str = "rank",
    many_threshold: int = 100,
    few_threshold: int = 20,
    class_order: ArrayLike | None = None,
) -> dict[str, np.ndarray]:
    """Split class ids into many / medium / few-shot groups.

    - `rule="rank"` (default): classes sorted by frequency rank (`class_order`, most frequent
      first; by default by decreasing count, ties to the smaller id) are cut into three
      near-equal parts with `numpy.array_split` (C=10 gives 4 / 3 / 3). Groups do not change when
      the whole profile is scaled by `sampling`, so results for different n compare directly.
    - `rule="counts"`: the long-tail convention at ImageNet-LT scale: many = more than
      `many_threshold` examples, few = fewer than `few_threshold`, medium = the rest (inclusive).

    `counts` must be non-negative integers (one per class id), `class_order` None or a
    permutation of the class ids; the thresholds are checked (integers >= 0) under either rule.

    Returns:
        dict with keys "many", "medium", "few" mapping to sorted int64 arrays of class ids.

    Example:

    >>> {k: v.tolist() for k, v in class_groups([500, 90, 10], rule="counts").items()}
    {'many': [0], 'medium': [1], 'few': [2]}
    """
    counts = _check_counts(counts)
    if rule not in GROUP_RULES:
        raise ValueError(f"`group_rule` must be one of {GROUP_RULES}; got {rule!r}")
    check_int(many_threshold, "many_threshold", low=0)
    check_int(few_threshold, "few_threshold", low=0)
    if rule == "counts":
        if few_threshold > many_threshold + 1:
            raise ValueError(
                f"`few_threshold` ({few_threshold}) must be <= `many_threshold` + 1 ({many_threshold + 1})"
            )
        ids = np.arange(counts.size, dtype=np.int64)
        many = ids[counts > many_threshold]
        few = ids[counts < few_threshold]
        medium = ids[(counts <= many_threshold) & (counts >= few_threshold)]
    else:
        if class_order is None:
            class_order = np.lexsort((np.arange(counts.size), -counts))
        parts = np.array_split(check_class_order(class_order, counts.size), 3)
        many, medium, few = (np.sort(p) for p in parts)
    return {"many": many, "medium": medium, "few": few}
