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

The batch plan and the tf.data options are shared with the in-memory path (`keras_ssl_lt.data.batching`);
decoding is `keras_ssl_lt.data.decode`; the file sources (`SplitFileSource`, `FolderSource`) are in
`keras_ssl_lt.data.sources` and split files as subsets in `keras_ssl_lt.data.splits`.
"""

import concurrent.futures
import os

import numpy as np

from keras_ssl_lt._checks import check_choice
from keras_ssl_lt.data.batching import (
    BACKENDS,
    STREAM_EPOCH,
    BatchPlan,
    PlannedBatches,
    check_prefetch,
    epoch_orders,
    finish_tf,
    subset_positions,
    tf_available,
)
from keras_ssl_lt.data.decode import RESIZES, check_image_size, decode_image, tf_decode, tf_decode_file
from keras_ssl_lt.data.sources import Source, TfdsSource, load_source

__all__ = ["DECODERS", "SHUFFLES", "StreamBatches", "stream_dataset", "stream_order"]

SHUFFLES = ("global", "shard", "buffer", "none")
DECODERS = ("auto", "tf", "pil")
# Seed streams of the orders ("global" shares the in-memory pipeline's epoch stream).
_STREAM_SHARD, _STREAM_BUFFER = 3, 4


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
    check_choice(shuffle, "shuffle", SHUFFLES)
    positions = np.asarray(positions, np.int64)
    n = positions.size
    if shuffle == "none":
        return positions.copy()
    if shuffle == "global":
        return positions[np.random.default_rng([seed, STREAM_EPOCH, int(epoch)]).permutation(n)]
    if shuffle == "buffer":
        return _buffer_order(positions, buffer_size, np.random.default_rng([seed, _STREAM_BUFFER, int(epoch)]))
    rng = np.random.default_rng([seed, _STREAM_SHARD, int(epoch)])
    shards = [positions[s : s + shard_size] for s in range(0, n, int(shard_size))]
    return np.concatenate([rng.permutation(shards[k]) for k in rng.permutation(len(shards))])


class _Plan(BatchPlan):
    """Which source positions form batch `k` of epoch `e` (the order from `stream_order`)."""

    def __init__(self, positions, batch_size, shuffle, drop_remainder, seed, buffer_size, shard_size):
        super().__init__(positions.size, batch_size, shuffle != "none", drop_remainder, seed)
        self.positions, self.shuffle = positions, shuffle
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
    >>> from keras_ssl_lt.data import SplitFileSource
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
            return tf_decode_file(self._paths[i], self.image_size, self.channels, self.resize)
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


# ----------------------------------------------------------------------------------- tf.data path


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
            img = tf_decode(tf.io.read_file(tf.gather(path_t, pos)), image_size, channels, resize, tf)
        return {"images": img, "labels": tf.gather(label_t, pos), "index": tf.cast(pos, tf.int32)}

    ds = epoch_orders(plan, tf).flat_map(tf.data.Dataset.from_tensor_slices)
    ds = ds.map(load, num_parallel_calls=parallel, deterministic=True)
    ds = ds.batch(plan.batch_size, drop_remainder=plan.drop_remainder)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(plan)))
    return finish_tf(ds, prefetch, tf, bounded=True)


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
    feature = source.builder.info.features[source.image_key]
    channels = feature.shape[-1] if feature.shape[-1] else 3
    ikey, lkey = source.image_key, source.label_key
    with tf.device("/CPU:0"):
        mask_t = tf.constant(mask)
    ds = source.read({ikey: tfds.decode.SkipDecoding()}).enumerate()
    ds = ds.filter(lambda i, ex: tf.gather(mask_t, i))
    if plan.shuffle == "buffer":
        ds = ds.shuffle(plan.buffer_size, seed=plan.seed, reshuffle_each_iteration=True)

    def load(i, ex):
        img = tf_decode(ex[ikey], image_size, channels, resize, tf)
        return {"images": img, "labels": tf.cast(ex[lkey], tf.int32), "index": tf.cast(i, tf.int32)}

    ds = ds.map(load, num_parallel_calls=parallel, deterministic=True)
    ds = ds.batch(plan.batch_size, drop_remainder=plan.drop_remainder)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(plan)))
    return finish_tf(ds, prefetch, tf, bounded=True)


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
    >>> from keras_ssl_lt.data import SplitFileSource
    >>> src = SplitFileSource(root, os.path.join(root, "s.txt"))
    >>> ds = stream_dataset(src, [1, 2, 4, 5], image_size=4, batch_size=2, backend="numpy")
    >>> len(ds), sorted(np.concatenate([b["index"] for b in ds]).tolist())
    (2, [1, 2, 4, 5])
    """
    src = source if isinstance(source, Source) else load_source(source)
    check_choice(shuffle, "shuffle", SHUFFLES)
    check_choice(backend, "backend", BACKENDS)
    check_choice(decoder, "decoder", DECODERS)
    check_prefetch(prefetch)
    for name, v in (("buffer_size", buffer_size), ("shard_size", shard_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"`{name}` must be a positive integer; got {v!r}")
    if parallel_decodes is None:
        parallel_decodes = os.cpu_count() or 1
    if (
        isinstance(parallel_decodes, bool)
        or not isinstance(parallel_decodes, (int, np.integer))
        or parallel_decodes < 1
    ):
        raise ValueError(f"`parallel_decodes` must be None or a positive integer; got {parallel_decodes!r}")
    size = check_image_size(image_size if image_size is not None else getattr(src, "image_size", None))
    resize = check_choice(resize or getattr(src, "resize", "stretch"), "resize", RESIZES)
    is_tfds = isinstance(src, TfdsSource)
    if not is_tfds and not hasattr(src, "paths"):
        raise ValueError(
            f"`source` must stream from files or TFDS (a SplitFileSource, FolderSource or TfdsSource); got "
            f"{type(src).__name__}: in-memory sources go through `ssl_dataset` / `supervised_dataset`"
        )
    if backend == "auto":
        backend = "tf" if tf_available() else "numpy"
    if is_tfds and backend != "tf":
        raise ValueError("`backend` must be 'tf' (or 'auto') for a TfdsSource: TFDS reads through tf.data")
    positions = subset_positions(src, subset)
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
