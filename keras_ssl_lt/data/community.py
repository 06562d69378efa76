"""The community CIFAR-LT protocol of SDCLR, BCL and TS: a held-out validation split, then r = 0.01 from the rest.

SDCLR (Jiang et al., ICML 2021), BCL (Zhou et al., ICML 2022) and TS (Kukleva et al., ICLR 2023) pre-train on
the same published splits (`split/cifar10_imbSub_with_subsets/split{1..5}_D_i.npy` and
`split/cifar100_imbSub_with_subsets/cifar100_split{1..5}_D_i.npy` of github.com/VITA-Group/SDCLR, copied
unchanged into github.com/MediaBrain-SJTU/BCL). What those files hold, checked here (index arrays into the
official 50,000 training images):

- a validation list of 5,000 images (`valIdxList.npy`: 500 per class of CIFAR-10, 50 per class of CIFAR-100),
  disjoint from every long-tailed split;
- five long-tailed splits of n = 11,165 (CIFAR-10-LT) and n = 9,754 (CIFAR-100-LT), never touching the
  validation list; these are the totals of an exponential profile with r = 0.01 from `M` = 4,500 (5,000 - 500)
  and 450 (500 - 50) images with the count of rank `k` **floored** (`int()` in Python):
  `floor(M * 0.01 ** (k / (C - 1)))` = [4500, 2697, 1617, 969, 581, 348, 208, 125, 75, 45] (sum 11,165) and
  [450, 429, 410, ..., 4] (sum 9,754). Rounding to nearest instead gives 11,167 and 9,806, so floor is the rule;
- balanced splits `D_b` of 11,160 and 9,700 (`floor(n / C)` per class) and few-shot sets `S_b` of 450 and 400
  images (the rarest class's count, 45 or 4, per class, drawn from `D_i`).

The per-class counts of the published files could not be read here (they index the official CIFAR order,
which the local copy does not keep), only their totals, their disjointness and their nesting; the floor rule
is the one that reproduces both totals. `community_split` rebuilds the protocol from any labels with its own
seeded draws, so its indices are not SDCLR's, only their recipe: split `k` uses seed `k`.

How a split is drawn, all with `make_subset` / `balanced_counterpart` (prefixes of one seeded order per class):
the *pool* takes the first `m - v` examples of every class (`m` the smallest class size, `v` the validation
size per class), the validation split takes `v` of the rest, and the long-tailed subset (`M = m - v`) and its
balanced counterpart take shorter prefixes of the same orders, so both lie inside the pool by construction
(checked). One difference from the published files: the validation split is drawn per split (seed `k`), where
SDCLR keeps one list for all five; each split's validation images are still disjoint from its own subsets.
"""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import ArrayLike

from keras_ssl_lt._checks import check_choice, check_int
from keras_ssl_lt.data.imbalance import Subset, balanced_counterpart, check_labels, make_subset
from keras_ssl_lt.data.manifest import labels_hash, load_manifest, save_manifest

__all__ = ["COMMUNITY_DATASETS", "COMMUNITY_FORMAT", "CommunitySplit", "community_split"]

COMMUNITY_FORMAT = "keras_ssl_lt.community/1"

# Per dataset: classes, validation images held out per class, imbalance ratio (SDCLR's split files, see above).
COMMUNITY_DATASETS = {
    "cifar10": {"num_classes": 10, "val_per_class": 500, "ratio": 0.01},
    "cifar100": {"num_classes": 100, "val_per_class": 50, "ratio": 0.01},
}

_STREAM_VAL = 2  # seed stream of the validation draw (imbalance.py uses 0 for class orders, 1 per class)
_RECIPE = ("dataset", "split", "val_per_class", "ratio", "class_order", "group_rule")


def _split_number(split):
    """`split` as a positive int: 3 or "split3"."""
    if isinstance(split, str) and split.startswith("split") and split[5:].isdigit():
        split = int(split[5:])
    if isinstance(split, str):
        raise ValueError(f"`split` must be a positive int or 'split1', 'split2', ...; got {split!r}")
    return check_int(split, "split", low=1)


class CommunitySplit:
    """One split of the community protocol: validation indices, the pool, the long-tailed subset, its balanced twin.

    Attributes:
        dataset: "cifar10" or "cifar100". split: the split number `k` (its seed).
        val: sorted int64 positions of the validation split (`val_per_class` per class).
        pool: `Subset`, every other example kept for training (`m - val_per_class` per class): SDCLR's
            `trainIdxList`, the balanced set of its full-shot linear probe.
        train: `Subset`, the long-tailed pre-training subset (SDCLR's `D_i`), groups by its counts.
        balanced: `Subset`, its balanced counterpart of the same n (`balanced_counterpart`).
        manifest: JSON-ready dict: the recipe, `val_indices` and the three subsets' manifests.

    Save with `save(path)`, reload with `CommunitySplit.load(path, labels)` (rebuilt from its recipe and compared).

    Example:

    >>> import numpy as np
    >>> y = np.repeat(np.arange(10), 5000)
    >>> s = community_split(y, "cifar10", split=1)
    >>> s.train.n, s.train.counts[:3].tolist(), s.val.size, s.balanced.n
    (11165, [4500, 2697, 1617], 5000, 11165)
    """

    def __init__(self, manifest: dict, val: ArrayLike, pool: Subset, train: Subset, balanced: Subset) -> None:
        self.manifest = manifest
        self.val = np.asarray(val, dtype=np.int64)
        self.pool, self.train, self.balanced = pool, train, balanced

    @property
    def dataset(self) -> str:
        return self.manifest["dataset"]

    @property
    def split(self) -> int:
        return self.manifest["split"]

    @property
    def n(self) -> int:
        """The long-tailed subset's size."""
        return self.train.n

    def __repr__(self):
        return (
            f"CommunitySplit(dataset={self.dataset!r}, split={self.split}, n={self.n}, val={self.val.size}, "
            f"pool={self.pool.n})"
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write the manifest as one JSON file."""
        save_manifest(self.manifest, path)

    @classmethod
    def load(cls, path: str | os.PathLike, labels: ArrayLike) -> CommunitySplit:
        """Read a manifest written by `save`, rebuild the split from its recipe on `labels` and compare.

        Refuses a file of another format, missing or unknown fields, other labels (hash), and any field that
        is not what the recipe gives (an edited index, count, seed or ratio), naming the file and the fields.

        Example:

        >>> import numpy as np, os, tempfile
        >>> y = np.repeat(np.arange(10), 60)
        >>> p = os.path.join(tempfile.mkdtemp(), "split.json")
        >>> community_split(y, "cifar10", 2, val_per_class=10, ratio=0.1).save(p)
        >>> CommunitySplit.load(p, y).train.counts.tolist()
        [50, 38, 29, 23, 17, 13, 10, 8, 6, 5]
        """
        where = f"manifest file {os.fspath(path)!r}"
        m = load_manifest(path)
        if m.get("format") != COMMUNITY_FORMAT:
            raise ValueError(f"{where}: field `format` must be {COMMUNITY_FORMAT!r}; got {m.get('format')!r}")
        expected_keys = {"format", *_RECIPE, "seed", "num_examples", "labels_sha256", "val_indices", "pool"}
        expected_keys |= {"train", "balanced"}
        missing, unknown = sorted(expected_keys - set(m)), sorted(set(m) - expected_keys)
        if missing or unknown:
            raise ValueError(f"{where}: missing field(s) {missing}, unknown field(s) {unknown}")
        arr = np.asarray(labels)
        if labels_hash(arr) != m["labels_sha256"] or arr.size != m["num_examples"]:
            raise ValueError(
                f"`labels` do not match {where}: it was built for {m['num_examples']} labels with sha256 "
                f"{str(m['labels_sha256'])[:16]}...; load it with the labels it was built from"
            )
        try:
            rebuilt = community_split(arr, **{k: m[k] for k in _RECIPE})
        except ValueError as e:
            raise ValueError(f"{where}: its recipe does not rebuild on these labels: {e}") from None
        differ = [k for k in m if rebuilt.manifest[k] != m[k]]
        if differ:
            recipe = ", ".join(f"{k}={m[k]!r}" for k in _RECIPE)
            raise ValueError(
                f"{where} is inconsistent: its fields {differ} are not what its recipe ({recipe}) gives on these "
                "labels; rebuild the split with community_split instead of editing its manifest"
            )
        return rebuilt


def community_split(
    labels: ArrayLike,
    dataset: str = "cifar10",
    split: int | str = 1,
    val_per_class: int | None = None,
    ratio: float | None = None,
    class_order: ArrayLike | str | None = None,
    group_rule: str = "rank",
) -> CommunitySplit:
    """Split `k` of the community CIFAR-LT protocol (SDCLR / BCL / TS) on the training labels of `dataset`.

    Holds out `val_per_class` images per class (default 500 for "cifar10", 50 for "cifar100") as a validation
    split, then draws an exponential long-tailed subset with `ratio` (default 0.01) from the rest, the most
    frequent class getting all of its remaining `m - val_per_class` images (`m` the smallest class size: 5,000
    or 500 on the official sets, so n = 11,165 or 9,754), and its balanced counterpart of the same n. All draws
    use seed `k`; see the module docstring for what was checked against the published split files.

    Args:
        labels: 1-D integer training labels of the dataset (all 50,000 for the official sets).
        dataset: "cifar10" or "cifar100" (its number of classes and defaults).
        split: the split number `k >= 1` (or "split1", "split2", ...); the seed of every draw.
        val_per_class: validation images per class (default: the dataset's).
        ratio: imbalance ratio min / max in (0, 1] (default 0.01).
        class_order: None (class 0 most frequent, as Cao et al. and SDCLR's files), "random" (drawn from the
            seed) or a permutation of the class ids, most frequent first.
        group_rule: many / medium / few groups of the long-tailed subset: "rank" (default; thirds by frequency,
            4 / 3 / 3 and 34 / 33 / 33 classes, as SDCLR's `exp_analyse.py` does for CIFAR) or "counts"
            (many > 100, few < 20 images: SDCLR uses it for ImageNet-LT and ImageNet-100-LT only).

    Returns:
        A `CommunitySplit`.

    Example:

    >>> import numpy as np
    >>> y = np.repeat(np.arange(100), 500)
    >>> s = community_split(y, "cifar100", split="split3")
    >>> s.n, s.train.counts[[0, 1, 2, -1]].tolist(), [len(s.train.groups[g]) for g in ("many", "medium", "few")]
    (9754, [450, 429, 410, 4], [34, 33, 33])
    """
    check_choice(dataset, "dataset", tuple(COMMUNITY_DATASETS))
    preset = COMMUNITY_DATASETS[dataset]
    C = preset["num_classes"]
    k = _split_number(split)
    v = preset["val_per_class"] if val_per_class is None else check_int(val_per_class, "val_per_class", low=1)
    ratio = preset["ratio"] if ratio is None else ratio
    arr, _ = check_labels(labels, C)
    available = np.bincount(arr, minlength=C)
    m = int(available.min())
    if m <= v:
        c = int(np.argmin(available))
        raise ValueError(
            f"`val_per_class`={v} leaves nothing to train on: class {c} has {m} examples in `labels` "
            f"(need more than {v}; are these the {dataset} training labels?)"
        )
    common = {"seed": k, "num_classes": C, "max_per_class": m - v}
    pool = make_subset(arr, "balanced", ratio=1.0, group_rule=group_rule, **common)
    val = _validation(arr, pool.indices, v, k, C)
    train = make_subset(arr, "exp", ratio=ratio, class_order=class_order, group_rule=group_rule, **common)
    balanced = balanced_counterpart(arr, train)
    for name, part in (("train", train), ("balanced", balanced)):
        if not np.all(np.isin(part.indices, pool.indices)):  # guaranteed by the nested per-class orders
            raise RuntimeError(f"the {name} subset left the training pool: the per-class orders are not nested")
    manifest = {
        "format": COMMUNITY_FORMAT,
        "dataset": dataset,
        "split": k,
        "val_per_class": v,
        "ratio": float(train.manifest["ratio"]),
        "class_order": class_order
        if class_order is None or isinstance(class_order, str)
        else train.manifest["class_order"],
        "group_rule": group_rule,
        "seed": k,
        "num_examples": int(arr.size),
        "labels_sha256": labels_hash(arr),
        "val_indices": val.tolist(),
        "pool": pool.manifest,
        "train": train.manifest,
        "balanced": balanced.manifest,
    }
    return CommunitySplit(manifest, val, pool, train, balanced)


def _validation(labels, pool, per_class, seed, num_classes):
    """`per_class` examples of every class outside `pool` (all of them when exactly that many remain), sorted."""
    rest = np.setdiff1d(np.arange(labels.size), pool)
    parts = []
    for c in range(num_classes):
        pos = rest[labels[rest] == c]
        if pos.size > per_class:
            pos = np.sort(np.random.default_rng([seed, _STREAM_VAL, c]).choice(pos, per_class, replace=False))
        parts.append(pos)
    return np.sort(np.concatenate(parts)).astype(np.int64)
