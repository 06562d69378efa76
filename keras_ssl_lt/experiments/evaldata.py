"""The data of a protocol run: the pre-training source, the balanced labelled bank, the test and OOD sets, the subset.

`EvalData` holds the arrays; `draw_subset` draws a run's long-tailed subset or its balanced counterpart;
`balanced_positions` samples a class-balanced bank.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["EvalData", "balanced_positions", "draw_subset"]


class EvalData:
    """The arrays a run needs: the pre-training source, a balanced labelled bank, the test set and OOD sets.

    `source` is a `keras_ssl_lt.data.Source` whose labels define the subsets (the train split);
    `bank` is `(images, labels)`, a class-balanced sample of the train split (`bank_per_class` per class,
    or all of it) on which the kNN and the linear probe are fitted; `test` is `(images, labels)`;
    `ood` is None or a dict with `train`, `test` (each `(images, labels)`) and `name`. `bank_index` gives
    the bank's positions explicitly instead.

    Example:

    >>> import numpy as np
    >>> x = np.zeros((40, 8, 8, 3), "uint8"); y = np.repeat(np.arange(4), 10)
    >>> data = EvalData.from_arrays((x, y), (x[:8], y[:8]), bank_per_class=5)
    >>> len(data.bank[1]), data.num_classes
    (20, 4)
    """

    def __init__(self, source, test, bank_per_class=None, ood=None, bank_seed=0, name="dataset", bank_index=None):
        from keras_ssl_lt.evaluation import as_arrays

        self.source = source
        self.name = name
        labels = np.asarray(source.labels)
        self.num_classes = int(labels.max()) + 1
        if bank_index is not None:  # explicit bank positions (e.g. when only some images are at hand)
            if bank_per_class is not None:
                raise ValueError("give `bank_per_class` or `bank_index`, not both")
            self.bank_index = np.sort(np.asarray(bank_index, dtype=np.int64))
            if (
                self.bank_index.ndim != 1
                or not self.bank_index.size
                or self.bank_index.min() < 0
                or (self.bank_index.max() >= labels.size)
            ):
                raise ValueError(f"`bank_index` must be a non-empty 1-D array of positions in [0, {labels.size})")
        else:
            self.bank_index = balanced_positions(labels, bank_per_class, bank_seed)
        self.bank = (source.images(self.bank_index), labels[self.bank_index])
        self.test = as_arrays(test, name="test")
        if ood is not None:
            if not isinstance(ood, dict) or not {"train", "test"} <= set(ood):
                raise ValueError("`ood` must be None or a dict with 'train' and 'test' (images, labels) pairs")
            ood = {
                "name": ood.get("name", "ood"),
                "train": as_arrays(ood["train"], name="ood train"),
                "test": as_arrays(ood["test"], name="ood test"),
            }
        self.ood = ood
        self.floor_cache = {}  # floor_metrics: the untrained encoders' metrics on this data, per config and seed

    @classmethod
    def from_arrays(
        cls,
        train: tuple,
        test: tuple,
        ood: dict | None = None,
        bank_per_class: int | None = None,
        bank_seed: int = 0,
        name: str = "arrays",
    ) -> EvalData:
        """From `(images, labels)` arrays for the train and test splits (and an optional `ood` dict)."""
        from keras_ssl_lt.data import from_arrays

        return cls(from_arrays(*train), test, bank_per_class=bank_per_class, ood=ood, bank_seed=bank_seed, name=name)

    def describe(self) -> dict:
        """Sizes of every part, for records."""
        out = {
            "dataset": self.name,
            "train": len(self.source),
            "bank": len(self.bank[1]),
            "test": len(self.test[1]),
        }
        if self.ood is not None:
            out.update(ood=self.ood["name"], ood_train=len(self.ood["train"][1]), ood_test=len(self.ood["test"][1]))
        return out


def balanced_positions(labels: np.ndarray, per_class: int | None, seed: int = 0) -> np.ndarray:
    """Sorted positions of `per_class` examples of every class (all examples when `per_class` is None).

    Example:

    >>> balanced_positions(np.array([0, 0, 0, 1, 1, 1]), 2, seed=0).size
    4
    """
    labels = np.asarray(labels)
    if per_class is None:
        return np.arange(labels.size)
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"`bank_per_class` must be None or a positive integer; got {per_class!r}")
    smallest = int(np.bincount(labels).min())
    if per_class > smallest:
        raise ValueError(f"`bank_per_class`={per_class} exceeds the smallest class ({smallest} examples)")
    rng = np.random.default_rng([seed, 7])
    return np.sort(
        np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)])
    )


def draw_subset(labels: np.ndarray, spec: Any, cfg: dict) -> Any:
    """The subset of a run: long-tailed for `spec.ratio < 1`, else the balanced counterpart of the same n.

    The balanced counterpart mirrors the long-tailed subset of `spec.extra["counterpart_of"]` (default
    `cfg["counterpart_of"]`, else 0.01) at the same profile and sampling, so A(n, 1) and A(n, r) share n.
    Subsets are drawn with `cfg["subset_seed"]` (default 0), the same for every method and training seed,
    as in the paper ("variants are fixed when comparing algorithms").

    Example:

    >>> from keras_ssl_lt.experiments import RunSpec
    >>> labels = np.repeat(np.arange(10), 5000)
    >>> draw_subset(labels, RunSpec("simclr", ratio=1.0), {}).n
    12406
    """
    from keras_ssl_lt.data import balanced_counterpart, make_subset

    subset_seed = int(cfg.get("subset_seed", 0))
    extra = dict(spec.extra)
    if spec.ratio < 1.0:
        return make_subset(labels, profile=spec.profile, ratio=spec.ratio, sampling=spec.sampling, seed=subset_seed)
    ref_ratio = float(extra.get("counterpart_of", cfg.get("counterpart_of", 0.01)))
    lt = make_subset(labels, profile=spec.profile, ratio=ref_ratio, sampling=spec.sampling, seed=subset_seed)
    return balanced_counterpart(labels, lt, seed=subset_seed)
