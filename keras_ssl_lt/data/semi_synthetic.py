"""The paper's semi-synthetic CIFAR-10 construction: frequent classes carry their label in the left half.

Every example is an image whose left half and right half come from two (possibly equal) source images:

- a **frequent**-class example: the left half of an image of that class (the label is visible there) next to
  the right half of a random image of the source (any class);
- a **rare**-class example: a blank left half (`blank_value`) next to the right half of an image of that
  class (the label is visible only in the right half).

So right halves carry features of every class, rare classes included, but only frequent examples are
plentiful: a method that learns right-half features from frequent data (label-irrelevant there) can use
them for the rare classes. The paper (classes 0-4 frequent with 5000 each, 5-9 rare with 10 each,
r = 0.002) reports a 5-way linear probe on the rare classes of 70.1% for SimCLR against 44.3% for
supervised pre-training.

Everything is a pure function of the source labels, the arguments and the seed (numpy only). Each built
set is a `SemiSyntheticSource` (an `ArraySource`, accepted by `ssl_dataset`, `supervised_dataset` and
`make_subset`) whose `manifest` records the two source positions of every example (`left`, -1 when
blank, and `right`), so `SemiSyntheticSource.from_manifest(manifest, source)` rebuilds it exactly.
"""

import numpy as np

from keras_ssl_lt.data.imbalance import check_labels
from keras_ssl_lt.data.manifest import labels_hash, load_manifest, save_manifest
from keras_ssl_lt.data.sources import ArraySource, Source, load_source

__all__ = [
    "PAPER_FREQUENT_CLASSES",
    "PAPER_RARE_CLASSES",
    "SemiSyntheticSource",
    "compose_halves",
    "semi_synthetic",
    "semi_synthetic_eval",
]

FORMAT = "keras_ssl_lt.semi_synthetic/1"
KINDS = ("pretrain", "probe", "test")
PAPER_FREQUENT_CLASSES = (0, 1, 2, 3, 4)
PAPER_RARE_CLASSES = (5, 6, 7, 8, 9)
# Stream ids mixed into the seed (default_rng([seed, stream, class])).
_STREAM_LEFT = 11
_STREAM_RIGHT = 12
_STREAM_RARE = 13
_STREAM_PROBE = 14
_STREAM_TEST = 15


def _check_count(name, value, minimum=1, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        extra = " or None" if allow_none else ""
        raise ValueError(f"`{name}` must be an integer >= {minimum}{extra}; got {value!r}")
    return int(value)


def _check_classes(name, classes, num_classes):
    arr = np.asarray(classes)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"`{name}` must be a non-empty list of class ids in 0..{num_classes - 1}; got {classes!r}")
    if arr.min() < 0 or arr.max() >= num_classes:
        raise ValueError(f"`{name}` must hold class ids in 0..{num_classes - 1}; got {arr.tolist()}")
    if np.unique(arr).size != arr.size:
        raise ValueError(f"`{name}` must not repeat a class; got {arr.tolist()}")
    return [int(c) for c in arr]


def _check_blank(blank_value):
    if (
        isinstance(blank_value, (bool, np.bool_))
        or not isinstance(blank_value, (int, np.integer))
        or not 0 <= blank_value <= 255
    ):
        raise ValueError(f"`blank_value` must be an integer pixel value in 0..255; got {blank_value!r}")
    return int(blank_value)


def _image_shape(source):
    if len(source) == 0:
        raise ValueError("`source` is empty: the semi-synthetic set needs source images")
    shape = tuple(int(s) for s in source.images(np.array([0])).shape[1:])
    if shape[1] % 2:
        raise ValueError(
            f"the source images must have an even width to be cut into two halves; got shape {shape} (width {shape[1]})"
        )
    return shape


def _take(pool, count, rng, what):
    if count > pool.size:
        raise ValueError(f"{what}: asked for {count} examples but only {pool.size} images are available")
    return rng.permutation(pool)[:count]


def compose_halves(left_images, right_images, blank_left, blank_value=0):
    """Examples made of the left half of `left_images` and the right half of `right_images`.

    Args:
        left_images, right_images: uint8 arrays `(N, H, W, C)` with an even `W`.
        blank_left: boolean `(N,)`; where True, the left half is `blank_value` instead.
        blank_value: integer pixel value in 0..255.

    Example:

    >>> import numpy as np
    >>> a, b = np.full((1, 2, 4, 1), 7, "uint8"), np.full((1, 2, 4, 1), 9, "uint8")
    >>> compose_halves(a, b, np.array([False]))[0, 0, :, 0].tolist()
    [7, 7, 9, 9]
    >>> compose_halves(a, b, np.array([True]), blank_value=1)[0, 0, :, 0].tolist()
    [1, 1, 9, 9]
    """
    left, right = np.asarray(left_images), np.asarray(right_images)
    if left.shape != right.shape or left.ndim != 4:
        raise ValueError(
            f"`left_images` and `right_images` must be (N, H, W, C) arrays of one shape; got {left.shape} "
            f"and {right.shape}"
        )
    if left.shape[2] % 2:
        raise ValueError(f"image width must be even to cut it into halves; got width {left.shape[2]}")
    blank = np.asarray(blank_left, dtype=bool).reshape(-1)
    if blank.size != len(left):
        raise ValueError(f"`blank_left` must have one entry per image ({len(left)}); got {blank.size}")
    half = left.shape[2] // 2
    out = np.array(right, dtype=np.uint8, copy=True)
    out[:, :, :half] = left[:, :, :half]
    out[blank, :, :half] = np.uint8(_check_blank(blank_value))
    return out


class SemiSyntheticSource(ArraySource):
    """A built semi-synthetic set: an `ArraySource` plus its `manifest` (how each example was made).

    Attributes:
        manifest: JSON-ready dict with `format`, `kind` ("pretrain", "probe" or "test"), the construction
            arguments, `source_labels_sha256`, and per example `left` (source position, -1 for a blank
            half), `right` (source position) and `labels`.
        left, right: int64 arrays of the source positions of each example's halves.
        frequent_classes, rare_classes: source class ids.

    Rebuild one anywhere with `from_manifest(manifest, source)` (checks the source labels' hash) or
    `load(path, source)` after `save(path)`.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, (40, 4, 4, 3), dtype=np.uint8); labels = np.arange(40) % 4
    >>> s = semi_synthetic((images, labels), frequent_classes=[0, 1], rare_classes=[2, 3],
    ...                    per_frequent=5, per_rare=2)
    >>> again = SemiSyntheticSource.from_manifest(s.manifest, (images, labels))
    >>> len(again), bool(np.array_equal(again.images(np.arange(14)), s.images(np.arange(14))))
    (14, True)
    """

    def __init__(self, images, labels, manifest, class_names=None):
        super().__init__(images, labels, class_names=class_names, num_classes=len(class_names or []) or None)
        self.manifest = manifest
        self.left = np.asarray(manifest["left"], dtype=np.int64)
        self.right = np.asarray(manifest["right"], dtype=np.int64)
        self.frequent_classes = list(manifest["frequent_classes"])
        self.rare_classes = list(manifest["rare_classes"])

    def __repr__(self):
        return (
            f"SemiSyntheticSource(kind={self.manifest['kind']!r}, n={len(self)}, num_classes={self.num_classes}, "
            f"seed={self.manifest['seed']})"
        )

    def save(self, path):
        """Write the manifest as JSON to `path` (images are rebuilt from the source on `load`)."""
        save_manifest(self.manifest, path)

    @classmethod
    def from_manifest(cls, manifest, source):
        """Rebuild the set from its manifest and the source it was made from (same labels, same order).

        Raises ValueError when the manifest is not a semi-synthetic manifest or the source's labels differ.
        """
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
            raise ValueError(f"`manifest` must be a dict with format={FORMAT!r}; got {got!r}")
        src = load_source(source)
        digest = labels_hash(src.labels)
        if digest != manifest["source_labels_sha256"] or len(src) != manifest["num_source_examples"]:
            raise ValueError(
                f"`source` does not match the manifest: it was built from {manifest['num_source_examples']} "
                f"examples with labels sha256 {manifest['source_labels_sha256'][:16]}..., got {len(src)} with "
                f"{digest[:16]}...; pass the source (and split) it was built from"
            )
        return _build(src, manifest)

    @classmethod
    def load(cls, path, source):
        """`from_manifest(load_manifest(path), source)`."""
        return cls.from_manifest(load_manifest(path), source)


def _build(src, manifest):
    left = np.asarray(manifest["left"], dtype=np.int64)
    right = np.asarray(manifest["right"], dtype=np.int64)
    blank = left < 0
    right_images = src.images(right)
    left_images = right_images.copy()
    if (~blank).any():
        left_images[~blank] = src.images(left[~blank])
    images = compose_halves(left_images, right_images, blank, manifest["blank_value"])
    names = _class_names(src, manifest)
    return SemiSyntheticSource(images, np.asarray(manifest["labels"], np.int64), manifest, class_names=names)


def _class_names(src, manifest):
    classes = (
        manifest["rare_classes"]
        if manifest["kind"] != "pretrain"
        else (manifest["frequent_classes"] + manifest["rare_classes"])
    )
    names = src.class_names or [str(c) for c in range(src.num_classes)]
    return [names[c] for c in classes]


def _manifest(src, kind, frequent, rare, seed, blank_value, left, right, labels, **fields):
    return {
        "format": FORMAT,
        "kind": kind,
        "frequent_classes": frequent,
        "rare_classes": rare,
        "seed": seed,
        "blank_value": blank_value,
        **fields,
        "num_source_examples": len(src),
        "source_labels_sha256": labels_hash(src.labels),
        "n": len(labels),
        "left": np.asarray(left, np.int64).tolist(),
        "right": np.asarray(right, np.int64).tolist(),
        "labels": np.asarray(labels, np.int64).tolist(),
    }


def _check_source(source):
    src = load_source(source) if not isinstance(source, Source) else source
    check_labels(src.labels, src.num_classes)
    return src


def semi_synthetic(
    source,
    frequent_classes=PAPER_FREQUENT_CLASSES,
    rare_classes=PAPER_RARE_CLASSES,
    per_frequent=5000,
    per_rare=10,
    seed=0,
    blank_value=0,
):
    """The semi-synthetic pre-training set (the paper's defaults: 5 x 5000 frequent, 5 x 10 rare).

    Frequent class `c`: `per_frequent` distinct images of class `c` give the left halves; the right halves
    come from images drawn uniformly from the whole source (any class; without replacement while the source
    is large enough). Rare class `c`: `per_rare` distinct images of class `c` give the right halves; the left
    halves are `blank_value`. Labels are positions in `frequent_classes + rare_classes` (so the paper's
    classes keep their CIFAR-10 ids), class names follow the source's.

    Args:
        source: a `Source` (or anything `load_source` accepts) with images of an even width.
        frequent_classes, rare_classes: disjoint lists of source class ids.
        per_frequent, per_rare: examples per frequent / rare class.
        seed: integer seed; the same labels, arguments and seed give the same set everywhere.
        blank_value: pixel value (0..255) of the rare examples' blank left halves.

    Returns:
        a `SemiSyntheticSource` with `kind="pretrain"`.

    Example:

    >>> import numpy as np
    >>> images = np.zeros((40, 4, 4, 3), "uint8"); labels = np.arange(40) % 4
    >>> s = semi_synthetic((images, labels), frequent_classes=[0, 1], rare_classes=[2, 3],
    ...                    per_frequent=6, per_rare=1)
    >>> np.bincount(s.labels).tolist(), s.class_names, int(s.left[-1])
    ([6, 6, 1, 1], ['0', '1', '2', '3'], -1)
    """
    src = _check_source(source)
    frequent = _check_classes("frequent_classes", frequent_classes, src.num_classes)
    rare = _check_classes("rare_classes", rare_classes, src.num_classes)
    both = sorted(set(frequent) & set(rare))
    if both:
        raise ValueError(
            f"`frequent_classes` and `rare_classes` must be disjoint; classes {both} are in both "
            f"(frequent_classes={frequent}, rare_classes={rare})"
        )
    per_frequent = _check_count("per_frequent", per_frequent)
    per_rare = _check_count("per_rare", per_rare)
    seed = _check_count("seed", seed, minimum=0)
    blank_value = _check_blank(blank_value)
    _image_shape(src)
    labels = src.labels
    left, right, out_labels = [], [], []
    for k, c in enumerate(frequent):
        pool = np.flatnonzero(labels == c)
        rng = np.random.default_rng([seed, _STREAM_LEFT, c])
        left.append(np.sort(_take(pool, per_frequent, rng, f"`per_frequent` for frequent class {c}")))
        out_labels.append(np.full(per_frequent, k))
    n_freq = per_frequent * len(frequent)
    rng = np.random.default_rng([seed, _STREAM_RIGHT])
    right.append(rng.choice(len(src), size=n_freq, replace=n_freq > len(src)))
    for k, c in enumerate(rare):
        pool = np.flatnonzero(labels == c)
        rng = np.random.default_rng([seed, _STREAM_RARE, c])
        right.append(np.sort(_take(pool, per_rare, rng, f"`per_rare` for rare class {c}")))
        left.append(np.full(per_rare, -1))
        out_labels.append(np.full(per_rare, len(frequent) + k))
    manifest = _manifest(
        src,
        "pretrain",
        frequent,
        rare,
        seed,
        blank_value,
        np.concatenate(left),
        np.concatenate(right),
        np.concatenate(out_labels),
        per_frequent=per_frequent,
        per_rare=per_rare,
    )
    return _build(src, manifest)


def _rare_only(src, kind, rare, frequent, seed, blank_value, per_class, exclude, stream, **fields):
    labels = src.labels
    right, out_labels = [], []
    for k, c in enumerate(rare):
        pool = np.setdiff1d(np.flatnonzero(labels == c), exclude)
        count = pool.size if per_class is None else per_class
        rng = np.random.default_rng([seed, stream, c])
        right.append(np.sort(_take(pool, count, rng, f"`{kind}_per_class` for rare class {c}")))
        out_labels.append(np.full(count, k))
    right = np.concatenate(right)
    manifest = _manifest(
        src,
        kind,
        frequent,
        rare,
        seed,
        blank_value,
        np.full(right.size, -1),
        right,
        np.concatenate(out_labels),
        per_class=per_class,
        **fields,
    )
    return _build(src, manifest)


def semi_synthetic_eval(pretrain, train_source, test_source=None, probe_per_class=None, test_per_class=None, seed=0):
    """The rare-class evaluation sets, built like the rare pre-training examples (blank left half).

    - probe (linear-probe training set): rare-class images of `train_source` held out from pre-training
      (every image whose right half made a rare pre-training example is excluded), `probe_per_class` per
      class (None: all of them; the paper used 25,000 for CIFAR-10's five rare classes);
    - test: rare-class images of `test_source` (the CIFAR-10 test set), `test_per_class` per class (None: all).

    Labels are positions in `rare_classes` (a `len(rare_classes)`-way task).

    Args:
        pretrain: the `SemiSyntheticSource` returned by `semi_synthetic` (or its manifest dict).
        train_source: the source `pretrain` was built from.
        test_source: held-out source (e.g. the test split); None returns no test set.
        probe_per_class, test_per_class: examples per rare class, or None for all available.
        seed: integer seed of the per-class draws.

    Returns:
        `(probe, test)`: `SemiSyntheticSource`s with `kind="probe"` / `"test"` (test is None without
        `test_source`).

    Example:

    >>> import numpy as np
    >>> images = np.zeros((40, 4, 4, 3), "uint8"); labels = np.arange(40) % 4
    >>> s = semi_synthetic((images, labels), [0, 1], [2, 3], per_frequent=6, per_rare=2)
    >>> probe, test = semi_synthetic_eval(s, (images, labels), (images[:8], labels[:8]))
    >>> len(probe), len(test), sorted(set(probe.labels.tolist()))
    (16, 4, [0, 1])
    """
    manifest = pretrain.manifest if isinstance(pretrain, SemiSyntheticSource) else pretrain
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("kind") != "pretrain":
        raise ValueError("`pretrain` must be the SemiSyntheticSource (or manifest) returned by `semi_synthetic`")
    src = _check_source(train_source)
    if labels_hash(src.labels) != manifest["source_labels_sha256"]:
        raise ValueError("`train_source` is not the source `pretrain` was built from (labels hash differs)")
    probe_per_class = _check_count("probe_per_class", probe_per_class, allow_none=True)
    test_per_class = _check_count("test_per_class", test_per_class, allow_none=True)
    seed = _check_count("seed", seed, minimum=0)
    frequent, rare, blank = manifest["frequent_classes"], manifest["rare_classes"], manifest["blank_value"]
    left = np.asarray(manifest["left"], np.int64)
    used = np.asarray(manifest["right"], np.int64)[left < 0]
    probe = _rare_only(src, "probe", rare, frequent, seed, blank, probe_per_class, used, _STREAM_PROBE)
    test = None
    if test_source is not None:
        tsrc = _check_source(test_source)
        if tsrc.num_classes <= max(rare):
            raise ValueError(f"`test_source` has {tsrc.num_classes} classes; the rare classes are {rare}")
        _image_shape(tsrc)
        test = _rare_only(
            tsrc, "test", rare, frequent, seed, blank, test_per_class, np.zeros(0, np.int64), _STREAM_TEST
        )
    return probe, test
