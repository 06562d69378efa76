"""Long-tailed subsets as pure functions of the labels: profiles, `make_subset`, balanced counterparts.

Everything here is numpy only (no TensorFlow, no Keras) and deterministic: the same labels,
arguments and seed give the same indices on every backend and machine. Randomness comes only
from `numpy.random.default_rng` (PCG64) seeded with integer tuples, never from Python's `hash()`.
"""

import numpy as np

from keras_ssl_lt.data.manifest import labels_hash, load_manifest, save_manifest

__all__ = [
    "PROFILES",
    "GROUP_RULES",
    "long_tail_counts",
    "make_subset",
    "balanced_counterpart",
    "class_groups",
    "check_labels",
    "Subset",
]

PROFILES = ("exp", "pareto", "step", "balanced")
GROUP_RULES = ("rank", "counts")
MANIFEST_FORMAT = "keras_ssl_lt.subset/1"

# Floors are taken after adding this relative tolerance so that products that are integers in exact
# arithmetic (5000 * 0.01 = 50) never lose one to binary round-off (49.999999...).
_FLOOR_RTOL = 1e-9
# Stream ids mixed into the seed: one stream for the class order, one per class for the examples.
_STREAM_ORDER = 0
_STREAM_CLASS = 1


def _floor(x):
    x = np.asarray(x, dtype=np.float64)
    return np.floor(x * (1.0 + _FLOOR_RTOL) + _FLOOR_RTOL).astype(np.int64)


def _check_fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{name}` must be a number in (0, 1]; got {value!r}")
    value = float(value)
    if not (0.0 < value <= 1.0):
        raise ValueError(f"`{name}` must be in (0, 1]; got {value!r}")
    return value


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}")
    return int(value)


def long_tail_counts(num_classes, max_per_class, ratio=0.01, profile="exp", alpha=6.0):
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
    num_classes = _check_int("num_classes", num_classes, 1)
    max_per_class = _check_int("max_per_class", max_per_class, 1)
    ratio = _check_fraction("ratio", ratio)
    if profile not in PROFILES:
        raise ValueError(f"`profile` must be one of {PROFILES}; got {profile!r}")
    C, M, r = num_classes, max_per_class, ratio
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
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
            raise ValueError(f"`alpha` must be a number > 0; got {alpha!r}")
        if not alpha > 0:
            raise ValueError(f"`alpha` must be > 0; got {alpha!r}")
        x = ((rank + 1.0) / C) ** (-1.0 / alpha) - 1.0
        raw = M * r + M * (1.0 - r) * x / x[0]
    counts = _floor(raw)
    counts[0] = M  # exact by definition; guards the floor of M * (1 - r) + M * r
    if counts[-1] < 1:
        raise ValueError(
            f"`ratio`={ratio!r} with `max_per_class`={M} gives the rarest class "
            f"floor({M} * {ratio!r}) = 0 examples; choose ratio >= 1 / max_per_class = {1 / M:.6g}"
        )
    return counts


def check_labels(labels, num_classes=None):
    """Validate class labels and return them as an int64 array plus the number of classes.

    Labels must be a 1-D array of integers in `0..C-1` (`C = num_classes`, or `max + 1` when
    `num_classes` is None). Floats are refused even when integral, so nothing is rounded silently.

    Example:

    >>> check_labels([0, 2, 1])[1]
    3
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"`labels` must be 1-D integers in 0..C-1; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("`labels` must be 1-D integers in 0..C-1; got an empty array")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"`labels` must be 1-D integers in 0..C-1; got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    lo, hi = int(arr.min()), int(arr.max())
    if num_classes is None:
        num_classes = hi + 1
    num_classes = _check_int("num_classes", num_classes, 1)
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"`labels` must be integers in 0..{num_classes - 1} (num_classes={num_classes}); got values in {lo}..{hi}"
        )
    return arr, num_classes


def _class_order(class_order, num_classes, seed):
    """Class id at each frequency rank."""
    if class_order is None:
        return np.arange(num_classes, dtype=np.int64)
    if isinstance(class_order, str):
        if class_order != "random":
            raise ValueError(
                f"`class_order` must be None, 'random' or a permutation of 0..{num_classes - 1}; got {class_order!r}"
            )
        rng = np.random.default_rng([seed, _STREAM_ORDER])
        return rng.permutation(num_classes).astype(np.int64)
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


def _class_permutation(labels, c, seed):
    """The seeded random order of the examples of class `c` (positions into `labels`).

    Every subset takes a prefix of this order, so subsets of one class for the same seed are
    nested: smaller `sampling` / `n`, or the balanced counterpart, re-use the same examples.
    """
    pos = np.flatnonzero(labels == c)
    rng = np.random.default_rng([seed, _STREAM_CLASS, int(c)])
    return pos[rng.permutation(pos.size)]


def class_groups(counts, rule="rank", many_threshold=100, few_threshold=20, class_order=None):
    """Split class ids into many / medium / few-shot groups.

    - `rule="rank"` (default): classes sorted by frequency rank (`class_order`, most frequent
      first; by default by decreasing count, ties to the smaller id) are cut into three
      near-equal parts with `numpy.array_split` (C=10 gives 4 / 3 / 3). Groups do not change when
      the whole profile is scaled by `sampling`, so results for different n compare directly.
    - `rule="counts"`: the long-tail convention at ImageNet-LT scale: many = more than
      `many_threshold` examples, few = fewer than `few_threshold`, medium = the rest (inclusive).

    Returns:
        dict with keys "many", "medium", "few" mapping to sorted int64 arrays of class ids.

    Example:

    >>> {k: v.tolist() for k, v in class_groups([500, 90, 10], rule="counts").items()}
    {'many': [0], 'medium': [1], 'few': [2]}
    """
    counts = np.asarray(counts, dtype=np.int64)
    if rule not in GROUP_RULES:
        raise ValueError(f"`group_rule` must be one of {GROUP_RULES}; got {rule!r}")
    if rule == "counts":
        _check_int("many_threshold", many_threshold, 0)
        _check_int("few_threshold", few_threshold, 0)
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
        parts = np.array_split(np.asarray(class_order, dtype=np.int64), 3)
        many, medium, few = (np.sort(p) for p in parts)
    return {"many": many, "medium": medium, "few": few}


class Subset:
    """A subset of a labelled source: indices, per-class counts, class groups and a manifest.

    Attributes:
        indices: sorted int64 array of positions in the source.
        counts: int64 array of length C, examples per class in the subset.
        groups: dict "many" / "medium" / "few" -> int64 arrays of class ids.
        n: number of examples.
        manifest: JSON-ready dict describing how the subset was built (see `docs/data.md`).

    Build one with `make_subset` or `balanced_counterpart`; save and re-load it with
    `save(path)` / `Subset.load(path, labels)`.

    Example:

    >>> import numpy as np
    >>> labels = np.repeat(np.arange(3), 10)
    >>> s = make_subset(labels, profile="exp", ratio=0.1)
    >>> s.counts.tolist(), s.n
    ([10, 3, 1], 14)
    """

    def __init__(self, indices, counts, groups, manifest):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.groups = {k: np.asarray(groups[k], dtype=np.int64) for k in ("many", "medium", "few")}
        self.manifest = manifest

    @property
    def n(self):
        return int(self.indices.size)

    @property
    def num_classes(self):
        return int(self.counts.size)

    def __len__(self):
        return self.n

    def __repr__(self):
        m = self.manifest
        return (
            f"Subset(kind={m['kind']!r}, profile={m['profile']!r}, ratio={m['ratio']}, "
            f"n={self.n}, num_classes={self.num_classes}, seed={m['seed']})"
        )

    def labels(self, labels):
        """The labels of the subset's examples (`labels[indices]`)."""
        return np.asarray(labels)[self.indices]

    def balanced(self, labels, seed=None):
        """`balanced_counterpart(labels, self, seed)`."""
        return balanced_counterpart(labels, self, seed=seed)

    def save(self, path):
        """Write the manifest as JSON to `path`."""
        save_manifest(self.manifest, path)

    @classmethod
    def from_manifest(cls, manifest, labels):
        """Rebuild a Subset from a manifest dict, checking it against `labels`.

        Raises ValueError when the labels hash, length or the per-class counts differ.
        """
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(
                f"`manifest` must be a dict with format={MANIFEST_FORMAT!r}; "
                f"got format={getattr(manifest, 'get', lambda k: None)('format')!r}"
            )
        arr, num_classes = check_labels(labels, manifest["num_classes"])
        digest = labels_hash(arr)
        if digest != manifest["labels_sha256"] or arr.size != manifest["num_examples"]:
            raise ValueError(
                "`labels` do not match the manifest: it was built for "
                f"{manifest['num_examples']} labels with sha256 {manifest['labels_sha256'][:16]}..., "
                f"got {arr.size} labels with sha256 {digest[:16]}...; load it with the labels it "
                "was built from"
            )
        indices = np.asarray(manifest["indices"], dtype=np.int64)
        counts = np.bincount(arr[indices], minlength=num_classes)
        if indices.size != manifest["n"] or counts.tolist() != list(manifest["counts"]):
            raise ValueError("`manifest` is inconsistent: its indices do not give its counts / n")
        return cls(indices, counts, manifest["groups"], manifest)

    @classmethod
    def load(cls, path, labels):
        """Read a manifest written by `save` and check it against `labels`."""
        return cls.from_manifest(load_manifest(path), labels)


def _select(labels, counts, seed):
    available = np.bincount(labels, minlength=counts.size)
    short = np.flatnonzero(counts > available)
    if short.size:
        c = int(short[0])
        raise ValueError(
            f"class {c} is asked for {int(counts[c])} examples but `labels` hold only "
            f"{int(available[c])}; lower `max_per_class`, `sampling` or `n` "
            f"(at most {int(available[c])} for class {c})"
        )
    parts = [_class_permutation(labels, c, seed)[: counts[c]] for c in range(counts.size)]
    return np.sort(np.concatenate(parts)).astype(np.int64)


def _scale_to_n(base, n):
    """Scale `base` counts to exactly `n` in total (largest-remainder rounding)."""
    total = int(base.sum())
    exact = base * (n / total)
    counts = _floor(exact)
    counts = np.minimum(counts, base)
    leftover = n - int(counts.sum())
    frac = exact - counts
    # Largest fractional part first; ties go to the earlier (more frequent) rank.
    order = np.lexsort((np.arange(base.size), -np.round(frac, 12)))
    counts[order[:leftover]] += 1
    return counts


def make_subset(
    labels,
    profile="exp",
    ratio=None,
    sampling=1.0,
    n=None,
    class_order=None,
    seed=0,
    max_per_class=None,
    num_classes=None,
    alpha=6.0,
    group_rule="rank",
    many_threshold=100,
    few_threshold=20,
):
    """Draw a long-tailed subset of a labelled source (labels only, never images).

    Per-rank counts are `long_tail_counts(C, max_per_class, ratio, profile, alpha)`; rank `k`
    goes to class `class_order[k]` (default: class `k`, so class 0 is the most frequent;
    `"random"` draws a permutation from `seed`). Then either:

    - `sampling` in (0, 1] scales every class: `floor(count * sampling)` (the paper's
      0.75 / 0.5 / 0.25 / 0.125); or
    - `n=` gives exactly `n` examples: `s = n / N_full`, each class gets `floor(count * s)` and
      the `n - sum` left over go one each to the classes with the largest fractional part
      (ties to the more frequent rank). `manifest["sampling"]` records `s`.

    Within each class the examples are a prefix of a seeded random order of that class (a
    stream of `default_rng([seed, 1, class])`), so subsets with the same seed are nested.

    Args:
        labels: 1-D integer labels `0..C-1` of the whole source.
        profile: "exp", "pareto", "step" or "balanced".
        ratio: min/max class count in (0, 1]; default 0.01 (1 for profile="balanced").
        sampling: fraction in (0, 1] kept of every class (exclusive with `n`).
        n: exact total size, at most the full profile's size (exclusive with `sampling` != 1).
        class_order: None, "random", or a permutation of class ids (most frequent first).
        seed: non-negative integer.
        max_per_class: count of the most frequent class; default the smallest class size in
            `labels`, so that any class can take any rank.
        num_classes: C; default `labels.max() + 1`.
        alpha: Pareto shape for profile="pareto".
        group_rule, many_threshold, few_threshold: see `class_groups`.

    Returns:
        A `Subset`.

    Example:

    >>> import numpy as np
    >>> labels = np.repeat(np.arange(10), 5000)
    >>> s = make_subset(labels, "exp", ratio=0.01)
    >>> s.n, s.counts[:3].tolist(), s.groups["few"].tolist()
    (12406, [5000, 2997, 1796], [7, 8, 9])
    """
    arr, C = check_labels(labels, num_classes)
    seed = _check_int("seed", seed, 0)
    if profile not in PROFILES:
        raise ValueError(f"`profile` must be one of {PROFILES}; got {profile!r}")
    if ratio is None:
        ratio = 1.0 if profile == "balanced" else 0.01
    sampling = _check_fraction("sampling", sampling)
    if n is not None and sampling != 1.0:
        raise ValueError(f"pass either `sampling` or `n`, not both; got sampling={sampling!r}, n={n!r}")
    available = np.bincount(arr, minlength=C)
    if max_per_class is None:
        max_per_class = int(available.min())
        if max_per_class < 1:
            raise ValueError(
                f"`labels` have no example of class {int(np.argmin(available))}; pass "
                "`max_per_class` explicitly (or `num_classes` matching the labels)"
            )
    order = _class_order(class_order, C, seed)
    by_rank = long_tail_counts(C, max_per_class, ratio, profile, alpha)
    if n is not None:
        n = _check_int("n", n, C)
        full = int(by_rank.sum())
        if n > full:
            raise ValueError(f"`n` must be in {C}..{full} (the full {profile} profile at ratio={ratio}); got {n}")
        scaled = _scale_to_n(by_rank, n)
        eff_sampling = n / full
    else:
        scaled = _floor(by_rank * sampling)
        eff_sampling = sampling
    if scaled.min() < 1:
        k = int(np.argmin(scaled))
        raise ValueError(
            f"class {int(order[k])} would get 0 examples (profile count {int(by_rank[k])} x "
            f"sampling {eff_sampling:.6g}); increase `sampling` / `n` or `ratio`"
        )
    counts = np.zeros(C, dtype=np.int64)
    counts[order] = scaled
    indices = _select(arr, counts, seed)
    groups = class_groups(counts, group_rule, many_threshold, few_threshold, class_order=order)
    manifest = _manifest(
        arr,
        kind="long_tail",
        profile=profile,
        ratio=ratio,
        alpha=float(alpha) if profile == "pareto" else None,
        max_per_class=max_per_class,
        sampling=eff_sampling,
        n_requested=n,
        seed=seed,
        class_order=order,
        counts=counts,
        groups=groups,
        group_rule=(group_rule, many_threshold, few_threshold),
        indices=indices,
        num_classes=C,
    )
    return Subset(indices, counts, groups, manifest)


def balanced_counterpart(labels, subset, seed=None):
    """A balanced subset with the same total n as `subset`, for the paper's A(n, 1) vs A(n, r).

    Every class gets `n // C` examples; the `n % C` left over go one each to classes
    `0, 1, ..., n % C - 1` (smallest ids). Examples are prefixes of the same per-class orders as
    `make_subset` with this seed (default: the subset's seed), so the two sets share as many
    examples as their counts allow. Groups are those of `subset` (by frequency in the long-tailed
    set), so per-group accuracy compares the same classes.

    Example:

    >>> import numpy as np
    >>> labels = np.repeat(np.arange(10), 5000)
    >>> b = balanced_counterpart(labels, make_subset(labels, "exp", ratio=0.01))
    >>> b.n, b.counts.tolist()
    (12406, [1241, 1241, 1241, 1241, 1241, 1241, 1240, 1240, 1240, 1240])
    """
    if not isinstance(subset, Subset):
        raise ValueError(f"`subset` must be a Subset; got {type(subset).__name__}")
    C = subset.num_classes
    arr, _ = check_labels(labels, C)
    if labels_hash(arr) != subset.manifest["labels_sha256"]:
        raise ValueError("`labels` are not the labels `subset` was built from (sha256 differs)")
    seed = subset.manifest["seed"] if seed is None else _check_int("seed", seed, 0)
    n = subset.n
    counts = np.full(C, n // C, dtype=np.int64)
    counts[: n % C] += 1
    indices = _select(arr, counts, seed)
    m = subset.manifest
    manifest = _manifest(
        arr,
        kind="balanced_counterpart",
        profile="balanced",
        ratio=1.0,
        alpha=None,
        max_per_class=int(counts.max()),
        sampling=1.0,
        n_requested=n,
        seed=seed,
        class_order=np.asarray(m["class_order"]),
        counts=counts,
        groups=subset.groups,
        group_rule=(m["group_rule"], m["many_threshold"], m["few_threshold"]),
        indices=indices,
        num_classes=C,
        counterpart_of={
            "profile": m["profile"],
            "ratio": m["ratio"],
            "n": m["n"],
            "seed": m["seed"],
            "indices_sha256": labels_hash(subset.indices),
        },
    )
    return Subset(indices, counts, subset.groups, manifest)


def _manifest(labels, *, group_rule, counterpart_of=None, **fields):
    rule, many_t, few_t = group_rule
    out = {
        "format": MANIFEST_FORMAT,
        "kind": fields["kind"],
        "profile": fields["profile"],
        "ratio": float(fields["ratio"]),
        "alpha": fields["alpha"],
        "max_per_class": int(fields["max_per_class"]),
        "sampling": float(fields["sampling"]),
        "n_requested": fields["n_requested"],
        "n": int(fields["indices"].size),
        "seed": int(fields["seed"]),
        "num_classes": int(fields["num_classes"]),
        "num_examples": int(labels.size),
        "labels_sha256": labels_hash(labels),
        "class_order": [int(c) for c in fields["class_order"]],
        "counts": [int(c) for c in fields["counts"]],
        "group_rule": rule,
        "many_threshold": int(many_t),
        "few_threshold": int(few_t),
        "groups": {k: [int(c) for c in v] for k, v in fields["groups"].items()},
        "indices": [int(i) for i in fields["indices"]],
    }
    if counterpart_of is not None:
        out["counterpart_of"] = counterpart_of
    return out
