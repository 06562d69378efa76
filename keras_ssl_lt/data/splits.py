"""Published splits of a pool of image files: ImageNet-LT-style split files as subsets, and a synthetic pool.

`split_subset(source, split_file)` turns a split file (lines `relative/path.JPEG label`, e.g. ImageNet-LT's
`ImageNet_LT_train.txt`) into a `Subset` of a pool source that lists files (the full ImageNet train set as a
`SplitFileSource` or `FolderSource`), reading labels only. `write_image_folder` writes a small synthetic
pool in ImageNet-LT's layout with its split file, for tests, smoke runs and benchmarks.
"""

import hashlib
import os

import numpy as np

from keras_ssl_lt.data.imbalance import subset_of_split
from keras_ssl_lt.data.sources import read_split_file

__all__ = ["split_subset", "write_image_folder"]


def write_image_folder(
    root,
    num_classes=4,
    per_class=8,
    size_range=(12, 20),
    formats=("JPEG", "png"),
    split_name="train",
    split_file="ImageNet_LT_train.txt",
    counts=None,
    seed=0,
):
    """Write a small synthetic image folder in ImageNet-LT's layout, plus its split file; returns the split path.

    Images go to `root/<split_name>/<wnid>/<wnid>_<k>.<ext>` (wnids `n00000000`, `n00000001`, ...), with
    random heights and widths in `size_range`, the formats cycling through `formats`; each class has its
    own mean colour and stripe orientation plus noise, so classes are learnable. The split file
    `root/<split_file>` lists `split_name/<wnid>/<file> <label>` lines, the layout of ImageNet-LT's
    `ImageNet_LT_train.txt`. `counts` (one per class) overrides `per_class`. For tests, smoke runs and
    benchmarks.

    Example:

    >>> import tempfile
    >>> from keras_ssl_lt.data import SplitFileSource
    >>> p = write_image_folder(tempfile.mkdtemp(), num_classes=2, per_class=3)
    >>> src = SplitFileSource(os.path.dirname(p), p, image_size=8)
    >>> src.labels.tolist(), src.images([0, 5]).shape
    ([0, 0, 0, 1, 1, 1], (2, 8, 8, 3))
    """
    from PIL import Image

    root = os.fspath(root)
    counts = [int(per_class)] * int(num_classes) if counts is None else [int(c) for c in counts]
    rng = np.random.default_rng([seed, 17])
    colours = rng.uniform(40, 215, size=(len(counts), 3))
    lines = []
    for c, count in enumerate(counts):
        wnid = f"n{c:08d}"
        os.makedirs(os.path.join(root, split_name, wnid), exist_ok=True)
        angle = np.pi * c / max(1, len(counts))
        for k in range(count):
            h, w = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, size=2))
            yy, xx = np.mgrid[0:h, 0:w].astype("float32")
            stripes = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * 1.3 + rng.uniform(0, 6.3))
            img = colours[c] + 40 * stripes[..., None] + rng.normal(0, 12, (h, w, 3))
            ext = formats[(c + k) % len(formats)]
            name = f"{wnid}_{k}.{ext}"
            Image.fromarray(np.clip(img, 0, 255).astype("uint8")).save(
                os.path.join(root, split_name, wnid, name), format="JPEG" if ext.lower() in ("jpg", "jpeg") else None
            )
            lines.append(f"{split_name}/{wnid}/{name} {c}\n")
    path = os.path.join(root, split_file)
    with open(path, "w") as f:
        f.writelines(lines)
    return path


def _key(path):
    """The last two components of a path (`wnid/file.JPEG`): how split lines are matched to a pool."""
    parts = os.path.normpath(os.fspath(path)).replace("\\", "/").split("/")
    return "/".join(parts[-2:])


def split_subset(source, split_file, group_rule="counts", many_threshold=100, few_threshold=20):
    """The subset of a pool `source` listed by a split file, e.g. ImageNet-LT's `ImageNet_LT_train.txt` within
    the full ImageNet train set: the published long-tailed split as a `Subset` (labels only, no image decoded).

    `source` is a `SplitFileSource` or `FolderSource` over the pool; split lines are matched to it by their
    last two path components (`n01440764/n01440764_10026.JPEG`), and each line's label must equal the pool's
    label there. Groups follow ImageNet-LT's convention by default (many > 100 images, few < 20). The
    manifest (kind "split_file") records the split file's sha256, so `balanced_counterpart(source.labels,
    subset)` gives the balanced set of the same n from the same pool.

    Example:

    >>> import tempfile
    >>> from keras_ssl_lt.data import SplitFileSource
    >>> p = write_image_folder(tempfile.mkdtemp(), num_classes=2, per_class=4)
    >>> pool = SplitFileSource(os.path.dirname(p), p)
    >>> lt = os.path.join(os.path.dirname(p), "lt.txt")
    >>> _ = open(lt, "w").write("".join(open(p).readlines()[:5]))  # 4 of class 0, 1 of class 1
    >>> s = split_subset(pool, lt)
    >>> s.indices.tolist(), s.counts.tolist(), s.manifest["kind"]
    ([0, 1, 2, 3, 4], [4, 1], 'split_file')
    """
    if not hasattr(source, "paths"):
        raise ValueError(f"`source` must list files (a SplitFileSource or FolderSource); got {type(source).__name__}")
    rel, labels = read_split_file(split_file)
    where = {}
    for i, p in enumerate(source.paths):
        where.setdefault(_key(p), i)
    pool_labels = np.asarray(source.labels)
    idx = np.empty(len(rel), np.int64)
    for k, (p, y) in enumerate(zip(rel, labels, strict=True)):
        i = where.get(_key(p))
        if i is None:
            raise ValueError(f"`split_file` line {k + 1}: {p!r} is not in the pool `source` ({len(source)} images)")
        if pool_labels[i] != y:
            raise ValueError(
                f"`split_file` line {k + 1}: {p!r} has label {int(y)} but the pool labels it {int(pool_labels[i])}"
            )
        idx[k] = i
    if np.unique(idx).size != idx.size:
        raise ValueError("`split_file` lists an image twice")
    with open(os.fspath(split_file), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    split = {"name": os.path.basename(os.fspath(split_file)), "sha256": digest}
    return subset_of_split(pool_labels, idx, split, int(source.num_classes), group_rule, many_threshold, few_threshold)
