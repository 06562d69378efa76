"""Long-tailed subsets as pure functions of the labels: `make_subset`, balanced counterparts, `Subset`.

Everything here is numpy only (no TensorFlow, no Keras) and deterministic: the same labels,
arguments and seed give the same indices on every backend and machine. Randomness comes only
from `numpy.random.default_rng` (PCG64) seeded with integer tuples, never from Python's `hash()`.
The per-class counts come from `keras_ssl_lt.data.profiles`; manifests are read and written by
`keras_ssl_lt.data.manifest`.
"""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import ArrayLike

from keras_ssl_lt._checks import check_fraction, check_int
from keras_ssl_lt._checks import check_labels as _check_labels
from keras_ssl_lt.data.manifest import build_manifest, check_manifest, labels_hash, load_manifest, save_manifest
from keras_ssl_lt.data.profiles import (
    GROUP_RULES,
    PROFILES,
    check_class_order,
    class_groups,
    floor_counts,
    long_tail_counts,
)

__all__ = [
    "GROUP_RULES",
    "PROFILES",
    "Subset",
    "balanced_counterpart",
    "check_labels",
    "class_groups",
    "long_tail_counts",
    "make_subset",
    "subset_of_split",
]

# Stream ids mixed into the seed: one stream for the class order, one per class for the examples.
_STREAM_ORDER = 0
_STREAM_CLASS = 1


def check_labels(labels, num_classes=None):
    """Validate class labels and return them as an int64 array plus the number of classes.

    Labels must be a non-empty 1-D array of integers in `0..C-1` (`C = num_classes`, or `max + 1` when
    `num_classes` is None). Floats are refused even when integral, so nothing is rounded silently
    (`_checks.check_labels` with `integral_floats=False`: the package's one label rule).

    Example:

    >>> check_labels([0, 2, 1])[1]
    3
    """
    arr = np.asarray(labels)
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"`labels` must be class ids 0..C-1; got a label {int(arr.max())}")
    arr = _check_labels(labels, "labels", integral_floats=False)
    num_classes = int(arr.max()) + 1 if num_classes is None else check_int(num_classes, "num_classes", low=1)
    return _check_labels(arr, "labels", num_classes=num_classes, integral_floats=False), num_classes


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
    return check_class_order(class_order, num_classes)


def _class_permutation(labels, c, seed):
    """The seeded random order of the examples of class `c` (positions into `labels`).

    Every subset takes a prefix of this order, so subsets of one class for the same seed are
    nested: smaller `sampling` / `n`, or the balanced counterpart, re-use the same examples.
    """
    pos = np.flatnonzero(labels == c)
    rng = np.random.default_rng([seed, _STREAM_CLASS, int(c)])
    return pos[rng.permutation(pos.size)]


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
    def from_manifest(cls, manifest, labels, where="`manifest`"):
        """Rebuild a Subset from a manifest dict, checking it field by field, against `labels` and its recipe.

        In order: the manifest's own fields (`check_manifest`: every field present, typed and in
        range, indices strictly increasing positions, counts summing to n, groups a partition of the
        classes); `labels` (the same number and SHA-256 as the labels it was built from); its
        indices hold its counts; and rebuilding it from its recipe gives exactly its fields
        (`make_subset` with its profile, ratio, alpha, max_per_class, sampling or n, seed, class order
        and group rule; the balanced-counterpart rule; for a split file, what its indices hold). So a
        hand-edited ratio, profile, seed, count, group or index is refused, naming the fields that
        disagree. `where` names the manifest in the errors (`load` passes the file's path).

        Example:

        >>> import numpy as np
        >>> y = np.repeat(np.arange(3), 10)
        >>> m = dict(make_subset(y, ratio=0.1).manifest, ratio=0.2)
        >>> Subset.from_manifest(m, y)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: `manifest` is inconsistent: its fields ['n', 'counts', 'indices'] are not what its recipe ...
        """
        m = check_manifest(manifest, where)
        arr, num_classes = check_labels(labels, m["num_classes"])
        digest = labels_hash(arr)
        if digest != m["labels_sha256"] or arr.size != m["num_examples"]:
            raise ValueError(
                f"`labels` do not match {where}: it was built for "
                f"{m['num_examples']} labels with sha256 {m['labels_sha256'][:16]}..., "
                f"got {arr.size} labels with sha256 {digest[:16]}...; load it with the labels it "
                "was built from"
            )
        indices = np.asarray(m["indices"], dtype=np.int64)
        counts = np.bincount(arr[indices], minlength=num_classes)
        if counts.tolist() != m["counts"]:
            raise ValueError(
                f"{where}: field `counts` {m['counts']} is not what its `indices` hold in `labels` ({counts.tolist()})"
            )
        expected = _rebuild(arr, m, where)
        differ = [k for k in m if expected[k] != m[k]]
        if differ:
            recipe = ", ".join(f"{k}={m[k]!r}" for k in _RECIPE[m["kind"]])
            raise ValueError(
                f"{where} is inconsistent: its fields {differ} are not what its recipe ({recipe}) gives on "
                "these labels; the file was edited or comes from another version: rebuild the subset "
                "(make_subset / balanced_counterpart / split_subset) instead of editing its manifest"
            )
        return cls(indices, counts, m["groups"], m)

    @classmethod
    def load(cls, path, labels):
        """Read a manifest written by `save` and check it as `from_manifest` does (errors name the file).

        Example:

        >>> import numpy as np, os, tempfile
        >>> y = np.repeat(np.arange(3), 10)
        >>> p = os.path.join(tempfile.mkdtemp(), "s.json")
        >>> make_subset(y, ratio=0.1).save(p)
        >>> Subset.load(p, y).counts.tolist()
        [10, 3, 1]
        """
        return cls.from_manifest(load_manifest(path), labels, where=f"manifest file {os.fspath(path)!r}")


# The fields a subset of each kind is rebuilt from (named in the errors of `Subset.from_manifest`).
_RECIPE = {
    "long_tail": ("profile", "ratio", "alpha", "max_per_class", "sampling", "n_requested", "seed", "class_order"),
    "balanced_counterpart": ("n", "seed", "class_order", "group_rule"),
    "split_file": ("indices", "group_rule", "many_threshold", "few_threshold"),
}


def _rebuild(arr, m, where):
    """The manifest that the recipe of manifest `m` gives on labels `arr` (checked by `check_manifest`)."""
    rule = {"group_rule": m["group_rule"], "many_threshold": m["many_threshold"], "few_threshold": m["few_threshold"]}
    try:
        if m["kind"] == "long_tail":
            if (m["profile"] == "pareto") != (m["alpha"] is not None):
                raise ValueError(
                    f"`alpha` must be a number for profile='pareto' and null otherwise; got {m['alpha']!r}"
                )
            n = m["n_requested"]
            return make_subset(
                arr,
                m["profile"],
                ratio=m["ratio"],
                sampling=m["sampling"] if n is None else 1.0,
                n=n,
                class_order=m["class_order"],
                seed=m["seed"],
                max_per_class=m["max_per_class"],
                num_classes=m["num_classes"],
                alpha=6.0 if m["alpha"] is None else m["alpha"],
                **rule,
            ).manifest
        if m["kind"] == "balanced_counterpart":
            groups = m["groups"]
            if m["group_rule"] == "rank":  # rank groups follow the class order alone
                groups = class_groups(np.zeros(m["num_classes"], np.int64), "rank", class_order=m["class_order"])
            else:  # "counts" groups come from the long-tailed subset's counts, not recorded here
                class_groups(np.zeros(m["num_classes"], np.int64), **_rule_args(rule))
            parent = m["counterpart_of"]
            return _counterpart(
                arr, m["num_classes"], m["n"], m["seed"], m["class_order"], groups, rule, parent
            ).manifest
        return subset_of_split(arr, m["indices"], m["split_file"], m["num_classes"], **rule).manifest
    except ValueError as e:
        raise ValueError(f"{where}: its recipe does not rebuild on these labels: {e}") from None


def _rule_args(rule):
    return {
        "rule": rule["group_rule"],
        "many_threshold": rule["many_threshold"],
        "few_threshold": rule["few_threshold"],
    }


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
    counts = floor_counts(exact)
    counts = np.minimum(counts, base)
    leftover = n - int(counts.sum())
    frac = exact - counts
    # Largest fractional part first; ties go to the earlier (more frequent) rank.
    order = np.lexsort((np.arange(base.size), -np.round(frac, 12)))
    counts[order[:leftover]] += 1
    return counts


def make_subset(
    labels: ArrayLike,
    profile: str = "exp",
    ratio: float | None = None,
    sampling: float = 1.0,
    n: int | None = None,
    class_order: ArrayLike | str | None = None,
    seed: int = 0,
    max_per_class: int | None = None,
    num_classes: int | None = None,
    alpha: float = 6.0,
    group_rule: str = "rank",
    many_threshold: int = 100,
    few_threshold: int = 20,
) -> Subset:
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
    if C < 2:
        raise ValueError(f"a long-tailed subset needs at least 2 classes; `labels` (num_classes={C}) hold only class 0")
    if C > arr.size:
        raise ValueError(
            f"`num_classes`={C} exceeds the number of labels ({arr.size}): every class of a subset needs "
            "at least one example"
        )
    seed = check_int(seed, "seed", low=0)
    if profile not in PROFILES:
        raise ValueError(f"`profile` must be one of {PROFILES}; got {profile!r}")
    if ratio is None:
        ratio = 1.0 if profile == "balanced" else 0.01
    sampling = check_fraction(sampling, "sampling")
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
        n = check_int(n, "n", low=C)
        full = int(by_rank.sum())
        if n > full:
            raise ValueError(f"`n` must be in {C}..{full} (the full {profile} profile at ratio={ratio}); got {n}")
        scaled = _scale_to_n(by_rank, n)
        eff_sampling = n / full
    else:
        scaled = floor_counts(by_rank * sampling)
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
    manifest = build_manifest(
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
        group_rule=group_rule,
        many_threshold=many_threshold,
        few_threshold=few_threshold,
        indices=indices,
    )
    return Subset(indices, counts, groups, manifest)


def balanced_counterpart(labels: ArrayLike, subset: Subset, seed: int | None = None) -> Subset:
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
    m = subset.manifest
    seed = m["seed"] if seed is None else check_int(seed, "seed", low=0)
    rule = {"group_rule": m["group_rule"], "many_threshold": m["many_threshold"], "few_threshold": m["few_threshold"]}
    parent = {
        "profile": m["profile"],
        "ratio": m["ratio"],
        "n": m["n"],
        "seed": m["seed"],
        "indices_sha256": labels_hash(subset.indices),
    }
    return _counterpart(arr, C, subset.n, seed, m["class_order"], subset.groups, rule, parent)


def _counterpart(arr, C, n, seed, class_order, groups, rule, parent):
    """The balanced counterpart of size `n`; `groups`, `class_order`, `rule` and `parent` come from the subset."""
    counts = np.full(C, n // C, dtype=np.int64)
    counts[: n % C] += 1
    indices = _select(arr, counts, seed)
    manifest = build_manifest(
        arr,
        kind="balanced_counterpart",
        profile="balanced",
        ratio=1.0,
        alpha=None,
        max_per_class=int(counts.max()),
        sampling=1.0,
        n_requested=n,
        seed=seed,
        class_order=class_order,
        counts=counts,
        groups=groups,
        indices=indices,
        counterpart_of=parent,
        **rule,
    )
    return Subset(indices, counts, groups, manifest)


def subset_of_split(
    labels, indices, split_file, num_classes=None, group_rule="counts", many_threshold=100, few_threshold=20
):
    """The Subset of given source positions (a published split, e.g. ImageNet-LT's), described by what they hold.

    `indices` must be distinct positions in `labels`; they are sorted. The manifest (kind
    "split_file", profile "split") records the counts the positions hold, `ratio` = the smallest
    over the largest non-zero class count, the class order by decreasing count (ties to the smaller
    id), the groups by `group_rule` (default ImageNet-LT's: many > 100, few < 20) and `split_file`,
    a dict `{"name", "sha256"}` of the split file. `keras_ssl_lt.data.split_subset` builds it from
    a file.

    Example:

    >>> import numpy as np
    >>> s = subset_of_split(np.array([0, 0, 1, 1, 1]), [4, 0, 2], {"name": "s.txt", "sha256": "0" * 64})
    >>> s.indices.tolist(), s.counts.tolist(), s.manifest["ratio"]
    ([0, 2, 4], [1, 2], 0.5)
    """
    arr, C = check_labels(labels, num_classes)
    idx = np.asarray(indices)
    if idx.ndim != 1 or idx.size == 0 or idx.dtype == bool or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"`indices` must be a non-empty 1-D integer array; got shape {idx.shape}, dtype {idx.dtype}")
    idx = np.sort(idx.astype(np.int64))
    if idx[0] < 0 or idx[-1] >= arr.size or np.any(np.diff(idx) == 0):
        raise ValueError(f"`indices` must be distinct positions in 0..{arr.size - 1}")
    counts = np.bincount(arr[idx], minlength=C).astype(np.int64)
    order = np.lexsort((np.arange(C), -counts))
    groups = class_groups(counts, group_rule, many_threshold, few_threshold, class_order=order)
    present = counts[counts > 0]
    manifest = build_manifest(
        arr,
        kind="split_file",
        profile="split",
        ratio=float(present.min() / present.max()),
        alpha=None,
        max_per_class=int(counts.max()),
        sampling=1.0,
        n_requested=None,
        seed=0,
        class_order=order,
        counts=counts,
        groups=groups,
        group_rule=group_rule,
        many_threshold=many_threshold,
        few_threshold=few_threshold,
        indices=idx,
        split_file=split_file,
    )
    return Subset(idx, counts, groups, manifest)
