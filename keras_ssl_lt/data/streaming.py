"""Streaming batches for datasets larger than memory: images decoded and resized per batch, on the host.

`stream_dataset(source, subset, image_size=...)` yields the same dict batches as `ssl_dataset`
(`{"images": uint8 (B, H, W, C), "labels": int32 (B,), "index": int32 (B,)}`, `index` = the
example's position in the source) without ever holding more than a few batches of images:

- file sources (`FolderSource`, `SplitFileSource`: anything with `.paths`) are read, decoded and
  resized per example, in the epoch's order, by `tf.io` in a parallel tf.data `map` (`backend="tf"`)
  or by PIL in threads inside a `keras.utils.PyDataset` (`backend="numpy"`, no TensorFlow needed);
- a `TfdsSource` is read sequentially by tf.data, filtered to the subset by position, shuffled
  through a buffer and decoded (tf.data only).

The order of an epoch is a pure function of (positions, shuffle, seed, epoch), computed on indices
with numpy, never by decoding: `shuffle="global"` is a full permutation per epoch (the order of
`ssl_dataset`, so the in-memory and streaming paths give the same batches), `"shard"` permutes
contiguous shards of `shard_size` examples and the examples within each shard, `"buffer"` is a
shuffle buffer of `buffer_size` over the source order (what a sequential reader can do), `"none"`
keeps the source order. Both backends give the same batches; the images agree up to the decoders'
rounding when resized (tf.image vs PIL bilinear; identical when no resize is needed).

`SplitFileSource` reads a split file as published with ImageNet-LT (lines
`relative/path.JPEG label`, e.g. `ImageNet_LT_train.txt`): labels come from the file, so
`make_subset(source.labels, ...)` and the subset's batches plan touch no image.
"""

import concurrent.futures
import math
import os

import numpy as np

from keras_ssl_lt.data.imbalance import Subset, _manifest, check_labels, class_groups
from keras_ssl_lt.data.pipeline import (
    BACKENDS,
    BatchPlan,
    PlannedBatches,
    _check_prefetch,
    _epoch_orders,
    _finish_tf,
    _positions,
    _tf_available,
)
from keras_ssl_lt.data.sources import Source, TfdsSource, _names, load_source

__all__ = [
    "SHUFFLES",
    "DECODERS",
    "RESIZES",
    "SplitFileSource",
    "from_split_file",
    "read_split_file",
    "decode_image",
    "stream_order",
    "stream_dataset",
    "StreamBatches",
    "write_image_folder",
    "split_subset",
]

SHUFFLES = ("global", "shard", "buffer", "none")
DECODERS = ("auto", "tf", "pil")
RESIZES = ("stretch", "center_crop")
# Seed streams of the orders (the in-memory pipeline's epoch stream is 2: "global" shares it).
_STREAM_GLOBAL, _STREAM_SHARD, _STREAM_BUFFER = 2, 3, 4


# ----------------------------------------------------------------------------------- split files


def read_split_file(path):
    """Parse a split file of lines `relative/path label` (ImageNet-LT's format); returns (paths, labels).

    Blank lines are skipped; the label is the last whitespace-separated field (paths may contain
    spaces). A malformed line raises ValueError naming the file and the line number.

    Example:

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "split.txt")
    >>> _ = open(p, "w").write("train/n01/a.JPEG 0\\ntrain/n02/b.JPEG 1\\n")
    >>> read_split_file(p)
    (['train/n01/a.JPEG', 'train/n02/b.JPEG'], array([0, 1]))
    """
    paths, labels = [], []
    with open(os.fspath(path)) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(None, 1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(
                    f"`split_file` {os.fspath(path)!r} line {lineno}: expected 'relative/path label' "
                    f"with an integer label; got {line!r}"
                )
            paths.append(parts[0])
            labels.append(int(parts[1]))
    if not paths:
        raise ValueError(f"`split_file` {os.fspath(path)!r} holds no 'relative/path label' lines")
    return paths, np.asarray(labels, np.int64)


def _check_size(image_size):
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        size = tuple(image_size)
    except TypeError:
        size = ()
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in size):
        raise ValueError(f"`image_size` must be None, an int or (height, width) positive ints; got {image_size!r}")
    return int(size[0]), int(size[1])


def _check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}; got {value!r}")
    return value


def _resized_shape(h, w, size):
    """The (height, width) to resize to before a center crop of `size`: the image covers `size`."""
    H, W = size
    scale = max(H / h, W / w)
    return max(H, int(math.floor(h * scale + 0.5))), max(W, int(math.floor(w * scale + 0.5)))


def decode_image(path, image_size=None, channels=3, resize="stretch"):
    """Decode one image file with PIL to uint8 `(H, W, channels)`, resized bilinearly to `image_size`.

    `resize="stretch"` resizes to `image_size` directly; `"center_crop"` resizes the image so that it
    covers `image_size` (aspect ratio kept), then crops the centre. TensorFlow's decoder in
    `stream_dataset(decoder="tf")` uses the same geometry.

    Example:

    >>> import numpy as np, os, tempfile
    >>> from PIL import Image
    >>> p = os.path.join(tempfile.mkdtemp(), "a.png")
    >>> Image.fromarray(np.zeros((6, 9, 3), "uint8")).save(p)
    >>> decode_image(p, (4, 4), resize="center_crop").shape
    (4, 4, 3)
    """
    from PIL import Image

    size = _check_size(image_size)
    _check_choice(resize, "resize", RESIZES)
    with Image.open(path) as im:
        im = im.convert("RGB" if channels == 3 else "L")
        if size is not None:
            H, W = size
            if resize == "stretch":
                if im.size != (W, H):
                    im = im.resize((W, H), Image.BILINEAR)
            else:
                nh, nw = _resized_shape(im.size[1], im.size[0], size)
                if (nw, nh) != im.size:
                    im = im.resize((nw, nh), Image.BILINEAR)
                top, left = (nh - H) // 2, (nw - W) // 2
                im = im.crop((left, top, left + W, top + H))
        arr = np.asarray(im, dtype=np.uint8)
    return arr if arr.ndim == 3 else arr[..., None]


class SplitFileSource(Source):
    """An image list as published with ImageNet-LT: `split_file` lines `relative/path.JPEG label`.

    Paths are relative to `root`; labels come from the file (no image is opened until `images` is
    called), so `make_subset(source.labels, ...)` works on the labels alone. `num_classes` defaults
    to `max label + 1` (pass 1000 for an ImageNet split that lacks some classes). `image_size` and
    `resize` set how `images()` decodes (see `decode_image`); `stream_dataset` streams the files.

    Example:

    >>> import numpy as np, os, tempfile
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp(); os.makedirs(os.path.join(root, "train", "n01"))
    >>> Image.fromarray(np.zeros((5, 7, 3), "uint8")).save(os.path.join(root, "train", "n01", "a.png"))
    >>> _ = open(os.path.join(root, "split.txt"), "w").write("train/n01/a.png 3\\n")
    >>> src = SplitFileSource(root, os.path.join(root, "split.txt"), image_size=(4, 4))
    >>> len(src), src.num_classes, src.images([0]).shape
    (1, 4, (1, 4, 4, 3))
    """

    def __init__(
        self,
        root,
        split_file,
        image_size=None,
        color_mode="rgb",
        resize="stretch",
        num_classes=None,
        class_names=None,
    ):
        self.root = os.fspath(root)
        if not os.path.isdir(self.root):
            raise ValueError(f"`root` must be the directory the split file's paths are relative to; got {root!r}")
        self.split_file = os.fspath(split_file)
        if not os.path.isfile(self.split_file):
            raise ValueError(f"`split_file` must be a text file of 'relative/path label' lines; got {split_file!r}")
        _check_choice(color_mode, "color_mode", ("rgb", "grayscale"))
        self.image_size = _check_size(image_size)
        self.resize = _check_choice(resize, "resize", RESIZES)
        self.channels = 3 if color_mode == "rgb" else 1
        rel, labels = read_split_file(self.split_file)
        self.relative_paths = rel
        self.paths = [os.path.join(self.root, p) for p in rel]
        self._labels, self.num_classes = check_labels(labels, num_classes)
        self.class_names = _names(class_names, self.num_classes)

    def _images(self, sorted_indices):
        return _decode_into(
            lambda i: decode_image(self.paths[i], self.image_size, self.channels, self.resize),
            sorted_indices,
            self.image_size,
            self.channels,
            where=self.split_file,
        )


def _decode_into(decode, indices, image_size, channels, where):
    """Decode `indices` one by one into one preallocated uint8 array (peak memory: the array, not twice it)."""
    if len(indices) == 0:
        shape = (0,) + ((tuple(image_size) + (channels,)) if image_size else (0, 0, channels))
        return np.zeros(shape, np.uint8)
    first = decode(indices[0])
    out = np.empty((len(indices),) + first.shape, np.uint8)
    out[0] = first
    for k in range(1, len(indices)):
        img = decode(indices[k])
        if img.shape != first.shape:
            raise ValueError(
                f"images of {where!r} have different sizes ({first.shape} and {img.shape}); pass "
                "`image_size=(height, width)` to resize them"
            )
        out[k] = img
    return out


def from_split_file(root, split_file, image_size=None, **kwargs):
    """`SplitFileSource(root, split_file, image_size, ...)`: an ImageNet-LT-style image list.

    Example:

    >>> import os, tempfile
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "s.txt"); _ = open(p, "w").write("a.jpg 1\\n")
    >>> from_split_file(d, p).labels.tolist()
    [1]
    """
    return SplitFileSource(root, split_file, image_size=image_size, **kwargs)


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
    >>> p = write_image_folder(tempfile.mkdtemp(), num_classes=2, per_class=4)
    >>> pool = SplitFileSource(os.path.dirname(p), p)
    >>> lt = os.path.join(os.path.dirname(p), "lt.txt")
    >>> _ = open(lt, "w").write("".join(open(p).readlines()[:5]))  # 4 of class 0, 1 of class 1
    >>> s = split_subset(pool, lt)
    >>> s.indices.tolist(), s.counts.tolist(), s.manifest["kind"]
    ([0, 1, 2, 3, 4], [4, 1], 'split_file')
    """
    import hashlib

    if not hasattr(source, "paths"):
        raise ValueError(f"`source` must list files (a SplitFileSource or FolderSource); got {type(source).__name__}")
    rel, labels = read_split_file(split_file)
    where = {}
    for i, p in enumerate(source.paths):
        where.setdefault(_key(p), i)
    pool_labels = np.asarray(source.labels)
    idx = np.empty(len(rel), np.int64)
    for k, (p, y) in enumerate(zip(rel, labels)):
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
    idx = np.sort(idx)
    C = int(source.num_classes)
    counts = np.bincount(pool_labels[idx], minlength=C).astype(np.int64)
    order = np.lexsort((np.arange(C), -counts))
    groups = class_groups(counts, group_rule, many_threshold, few_threshold, class_order=order)
    with open(os.fspath(split_file), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    present = counts[counts > 0]
    manifest = _manifest(
        check_labels(pool_labels, C)[0],
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
        group_rule=(group_rule, many_threshold, few_threshold),
        indices=idx,
        num_classes=C,
    )
    manifest["split_file"] = {"name": os.path.basename(os.fspath(split_file)), "sha256": digest}
    return Subset(idx, counts, groups, manifest)


# ----------------------------------------------------------------------------------- orders


def _buffer_order(positions, buffer_size, rng):
    """The order a shuffle buffer of `buffer_size` gives over `positions` read in order (tf.data's rule:
    fill the buffer, then repeatedly emit a uniformly chosen slot and refill it with the next element)."""
    n = positions.size
    k = min(int(buffer_size), n)
    buf = list(positions[:k])
    out = np.empty(n, np.int64)
    nxt = k
    draws = rng.random(n)
    for t in range(n):
        j = int(draws[t] * len(buf))
        out[t] = buf[j]
        if nxt < n:
            buf[j] = positions[nxt]
            nxt += 1
        else:
            buf[j] = buf[-1]
            buf.pop()
    return out


def stream_order(positions, shuffle="global", seed=0, epoch=0, buffer_size=1024, shard_size=1024):
    """The source positions of one epoch, in the order a stream reads them (indices only, no image).

    - `"global"`: `positions[default_rng([seed, 2, epoch]).permutation(n)]`, the order of `ssl_dataset`;
    - `"shard"`: contiguous shards of `shard_size` positions, the shards in a random order and the
      positions within each shard permuted (a reader that opens one shard at a time);
    - `"buffer"`: a shuffle buffer of `buffer_size` over `positions` in order;
    - `"none"`: `positions` as given.

    Example:

    >>> o = stream_order(np.arange(6), "shard", seed=0, shard_size=3)
    >>> sorted(o[:3].tolist()) in ([0, 1, 2], [3, 4, 5]), sorted(o.tolist()) == list(range(6))
    (True, True)
    """
    _check_choice(shuffle, "shuffle", SHUFFLES)
    positions = np.asarray(positions, np.int64)
    n = positions.size
    if shuffle == "none":
        return positions.copy()
    if shuffle == "global":
        return positions[np.random.default_rng([seed, _STREAM_GLOBAL, int(epoch)]).permutation(n)]
    if shuffle == "buffer":
        return _buffer_order(positions, buffer_size, np.random.default_rng([seed, _STREAM_BUFFER, int(epoch)]))
    rng = np.random.default_rng([seed, _STREAM_SHARD, int(epoch)])
    shards = [positions[s : s + shard_size] for s in range(0, n, int(shard_size))]
    return np.concatenate([rng.permutation(shards[k]) for k in rng.permutation(len(shards))])


class _Plan(BatchPlan):
    """Which source positions form batch `k` of epoch `e` (the order from `stream_order`)."""

    def __init__(self, positions, batch_size, shuffle, drop_remainder, seed, buffer_size, shard_size):
        self.positions = positions
        self.n = int(positions.size)
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_remainder, self.seed = shuffle, bool(drop_remainder), int(seed)
        self.buffer_size, self.shard_size = int(buffer_size), int(shard_size)

    def order(self, epoch):
        return stream_order(self.positions, self.shuffle, self.seed, epoch, self.buffer_size, self.shard_size)

    def constant_order(self):
        return self.positions.astype(np.int64) if self.shuffle == "none" else None


# ----------------------------------------------------------------------------------- numpy path


class StreamBatches(PlannedBatches):
    """The numpy streaming path: a `keras.utils.PyDataset` that decodes each batch's files with PIL.

    Batch `i` of the current epoch is decoded when asked for, `decode_threads` images at a time; at
    most `(max_queue_size + workers)` batches are held by `fit`'s prefetching. `on_epoch_end()` moves
    to the next epoch's order. Build it with `stream_dataset(..., backend="numpy")`.

    Example:

    >>> import numpy as np, os, tempfile
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for i in range(4):
    ...     Image.fromarray(np.full((5, 5, 3), i, "uint8")).save(os.path.join(root, f"{i}.png"))
    >>> _ = open(os.path.join(root, "s.txt"), "w").write("".join(f"{i}.png {i % 2}\\n" for i in range(4)))
    >>> ds = stream_dataset(SplitFileSource(root, os.path.join(root, "s.txt")), image_size=3,
    ...                     batch_size=2, shuffle="none", backend="numpy")
    >>> b = ds[1]; b["images"].shape, b["index"].tolist(), b["labels"].tolist()
    ((2, 3, 3, 3), [2, 3], [0, 1])
    """

    def __init__(self, paths, labels, plan, image_size, channels, resize, decoder, decode_threads, workers=1):
        super().__init__(plan, workers=workers)
        self._paths, self._labels = paths, labels
        self.image_size, self.channels, self.resize, self.decoder = image_size, channels, resize, decoder
        self.decode_threads = int(decode_threads)
        self._pool = None

    def _decode(self, i):
        if self.decoder == "tf":
            return _tf_decode_eager(self._paths[i], self.image_size, self.channels, self.resize)
        return decode_image(self._paths[i], self.image_size, self.channels, self.resize)

    def _load(self, pos, i):
        if self.decode_threads > 1:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self.decode_threads)
            imgs = list(self._pool.map(self._decode, pos.tolist()))
        else:
            imgs = [self._decode(j) for j in pos.tolist()]
        shapes = {im.shape for im in imgs}
        if len(shapes) > 1:
            raise ValueError(f"batch {i} holds images of different sizes {sorted(shapes)[:4]}; pass `image_size`")
        return {
            "images": np.stack(imgs),
            "labels": self._labels[pos].astype(np.int32),
            "index": pos.astype(np.int32),
        }

    def __del__(self):
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=False)


def _tf_decode_eager(path, image_size, channels, resize):
    import tensorflow as tf

    return _tf_decode(tf.io.read_file(path), image_size, channels, resize, tf).numpy()


# ----------------------------------------------------------------------------------- tf.data path


def _tf_decode(data, image_size, channels, resize, tf):
    """Decode encoded image bytes to uint8 `(H, W, channels)` with tf ops, resized like `decode_image`."""
    img = tf.io.decode_image(data, channels=channels, expand_animations=False)
    img.set_shape([None, None, channels])
    if image_size is None:
        return img
    H, W = image_size
    shape = tf.shape(img)
    h, w = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
    if resize == "stretch":
        target = tf.constant([H, W], tf.int32)
    else:
        scale = tf.maximum(H / h, W / w)
        nh = tf.maximum(H, tf.cast(tf.floor(h * scale + 0.5), tf.int32))
        nw = tf.maximum(W, tf.cast(tf.floor(w * scale + 0.5), tf.int32))
        target = tf.stack([nh, nw])

    def do_resize():
        out = tf.image.resize(img, target, method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)

    img = tf.cond(tf.reduce_all(tf.equal(shape[:2], target)), lambda: img, do_resize)
    if resize == "center_crop":
        top, left = (target[0] - H) // 2, (target[1] - W) // 2
        img = img[top : top + H, left : left + W]
    img.set_shape([H, W, channels])
    return img


def _tf_files(paths, labels, plan, image_size, channels, resize, decoder, parallel, prefetch):
    import tensorflow as tf

    with tf.device("/CPU:0"):
        path_t = tf.constant(paths)
        label_t = tf.constant(labels.astype(np.int32))

    def load(pos):
        if decoder == "pil":

            def pil(p):
                return decode_image(p.decode(), image_size, channels, resize)

            img = tf.numpy_function(pil, [tf.gather(path_t, pos)], tf.uint8, stateful=False)
            img.set_shape([image_size[0], image_size[1], channels] if image_size else [None, None, channels])
        else:
            img = _tf_decode(tf.io.read_file(tf.gather(path_t, pos)), image_size, channels, resize, tf)
        return {"images": img, "labels": tf.gather(label_t, pos), "index": tf.cast(pos, tf.int32)}

    ds = _epoch_orders(plan, tf).flat_map(tf.data.Dataset.from_tensor_slices)
    ds = ds.map(load, num_parallel_calls=parallel, deterministic=True)
    ds = ds.batch(plan.batch_size, drop_remainder=plan.drop_remainder)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(plan)))
    return _finish_tf(ds, prefetch, tf, bounded=True)


def _tf_tfds(source, positions, plan, image_size, resize, parallel, prefetch):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    if plan.shuffle not in ("buffer", "none"):
        raise ValueError(
            f"`shuffle`={plan.shuffle!r} needs random access to the files; a TFDS split is read in order: "
            "use shuffle='buffer' (or 'none')"
        )
    mask = np.zeros(len(source), bool)
    mask[positions] = True
    feature = source._builder.info.features[source.image_key]
    channels = feature.shape[-1] if feature.shape[-1] else 3
    ikey, lkey = source.image_key, source.label_key
    with tf.device("/CPU:0"):
        mask_t = tf.constant(mask)
    ds = source._dataset({ikey: tfds.decode.SkipDecoding()}).enumerate()
    ds = ds.filter(lambda i, ex: tf.gather(mask_t, i))
    if plan.shuffle == "buffer":
        ds = ds.shuffle(plan.buffer_size, seed=plan.seed, reshuffle_each_iteration=True)

    def load(i, ex):
        img = _tf_decode(ex[ikey], image_size, channels, resize, tf)
        return {"images": img, "labels": tf.cast(ex[lkey], tf.int32), "index": tf.cast(i, tf.int32)}

    ds = ds.map(load, num_parallel_calls=parallel, deterministic=True)
    ds = ds.batch(plan.batch_size, drop_remainder=plan.drop_remainder)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(plan)))
    return _finish_tf(ds, prefetch, tf, bounded=True)


# ----------------------------------------------------------------------------------- entry point


def stream_dataset(
    source,
    subset=None,
    image_size=None,
    batch_size=256,
    shuffle="global",
    drop_remainder=True,
    seed=0,
    buffer_size=1024,
    shard_size=1024,
    resize=None,
    backend="auto",
    decoder="auto",
    parallel_decodes=None,
    prefetch="auto",
    workers=1,
):
    """Batches decoded from files (or a TFDS split) per batch, with memory bounded by a few batches.

    Args:
        source: a `SplitFileSource`, `FolderSource` (anything with `.paths`), a `TfdsSource`, or a
            spec `load_source` accepts that gives one of them.
        subset: a `Subset`, a 1-D array of source positions, or None (the whole source). Applied to
            positions only: nothing outside it is decoded.
        image_size: int or (height, width) of the batches (default: the source's `image_size`); None
            only when every image already has one size.
        batch_size: examples per batch.
        shuffle: "global", "shard", "buffer" or "none" (see `stream_order`); a TFDS split allows
            "buffer" and "none".
        drop_remainder: drop the last partial batch (True for pre-training, False to see every
            example once).
        seed: non-negative integer; the order of epoch `e` depends only on (positions, seed, e).
        buffer_size: the shuffle buffer, in examples, for shuffle="buffer" (decoded images for TFDS).
        shard_size: examples per shard for shuffle="shard".
        resize: "stretch" or "center_crop" (default: the source's, else "stretch").
        backend: "auto" (tf.data when TensorFlow imports), "tf" or "numpy" (`keras.utils.PyDataset`,
            PIL decoding, no TensorFlow; file sources only).
        decoder: "auto" (tf.io on the tf.data path, PIL on the numpy path), "tf" or "pil".
        parallel_decodes: images decoded at once (default: the CPU count).
        prefetch: batches prepared ahead on the tf.data path ("auto" = 2, 0 = none).
        workers: the numpy path's `PyDataset` threads preparing whole batches ahead (1 = none).

    Returns:
        a `tf.data.Dataset` or a `StreamBatches` (`keras.utils.PyDataset`) of dict batches
        `{"images", "labels", "index"}`; either goes straight into `model.fit`.

    Example:

    >>> import numpy as np, os, tempfile
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for i in range(6):
    ...     Image.fromarray(np.full((8, 6, 3), 40 * i, "uint8")).save(os.path.join(root, f"{i}.png"))
    >>> _ = open(os.path.join(root, "s.txt"), "w").write("".join(f"{i}.png {i % 3}\\n" for i in range(6)))
    >>> src = SplitFileSource(root, os.path.join(root, "s.txt"))
    >>> ds = stream_dataset(src, [1, 2, 4, 5], image_size=4, batch_size=2, backend="numpy")
    >>> len(ds), sorted(np.concatenate([b["index"] for b in ds]).tolist())
    (2, [1, 2, 4, 5])
    """
    src = source if isinstance(source, Source) else load_source(source)
    _check_choice(shuffle, "shuffle", SHUFFLES)
    _check_choice(backend, "backend", BACKENDS)
    _check_choice(decoder, "decoder", DECODERS)
    _check_prefetch(prefetch)
    for name, v in (("buffer_size", buffer_size), ("shard_size", shard_size), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"`{name}` must be a positive integer; got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer; got {seed!r}")
    if parallel_decodes is None:
        parallel_decodes = os.cpu_count() or 1
    if (
        isinstance(parallel_decodes, bool)
        or not isinstance(parallel_decodes, (int, np.integer))
        or parallel_decodes < 1
    ):
        raise ValueError(f"`parallel_decodes` must be None or a positive integer; got {parallel_decodes!r}")
    size = _check_size(image_size if image_size is not None else getattr(src, "image_size", None))
    resize = _check_choice(resize or getattr(src, "resize", "stretch"), "resize", RESIZES)
    is_tfds = isinstance(src, TfdsSource)
    if not is_tfds and not hasattr(src, "paths"):
        raise ValueError(
            f"`source` must stream from files or TFDS (a SplitFileSource, FolderSource or TfdsSource); got "
            f"{type(src).__name__}: in-memory sources go through `ssl_dataset` / `supervised_dataset`"
        )
    if backend == "auto":
        backend = "tf" if _tf_available() else "numpy"
    if is_tfds and backend != "tf":
        raise ValueError("`backend` must be 'tf' (or 'auto') for a TfdsSource: TFDS reads through tf.data")
    positions = _positions(src, subset)
    n = positions.size
    if n < 1:
        raise ValueError("the subset is empty: there is nothing to stream")
    if drop_remainder and n < batch_size:
        raise ValueError(
            f"`batch_size`={batch_size} is larger than the dataset ({n} examples) and `drop_remainder=True` "
            f"would yield no batch; lower `batch_size` to at most {n} or pass `drop_remainder=False`"
        )
    plan = _Plan(positions, batch_size, shuffle, drop_remainder, seed, buffer_size, shard_size)
    if is_tfds:
        return _tf_tfds(src, positions, plan, size, resize, int(parallel_decodes), prefetch)
    channels = int(getattr(src, "channels", 3))
    labels = np.asarray(src.labels)
    if backend == "tf":
        dec = "pil" if decoder == "pil" else "tf"
        return _tf_files(list(src.paths), labels, plan, size, channels, resize, dec, int(parallel_decodes), prefetch)
    dec = "tf" if decoder == "tf" else "pil"
    return StreamBatches(src.paths, labels, plan, size, channels, resize, dec, parallel_decodes, workers=workers)
