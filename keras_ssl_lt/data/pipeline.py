"""Batches of raw uint8 images, labels and source positions, for `model.fit` on any backend.

The pipeline moves bytes only: it gathers the subset's images once (`source.images`), then per
epoch shuffles, gathers and batches them. No augmentation happens here; it runs on the device
inside the model. Two interchangeable paths yield the same batches in the same order:

- `backend="tf"`: a `tf.data.Dataset` (each epoch's order as one tensor, batched, gathered in a
  parallel `map`, then `prefetch`);
- `backend="numpy"`: a `keras.utils.PyDataset` (no TensorFlow needed);
- `backend="auto"` (default): the faster path for `fit` on the current Keras backend: tf.data on the
  TensorFlow backend (read in `fit`'s graph), numpy on JAX and PyTorch (no TF-to-numpy conversion per
  batch) or when TensorFlow is missing. See docs/data.md ("Performance") for the measurements.

Both work with `model.fit(ds, epochs=...)` on the TensorFlow, JAX and PyTorch Keras backends.
Each batch is a dict `{"images": uint8 (B, H, W, C), "labels": int32 (B,), "index": int32 (B,)}`
where `index` is the example's position in the source (for per-example weights).

Epoch `e` of the stream uses the order `default_rng([seed, 2, e]).permutation(n)` (no shuffle:
`0..n-1`). The numpy path advances `e` in `on_epoch_end` (called by `fit`, or at the end of a
`for batch in ds` loop); the tf.data path advances it every time an iterator is created (each
epoch of `fit`, each `for` loop). The tf.data path runs no Python per batch: each epoch's order is
one tensor (one Python call per epoch computes it), batched and gathered in a parallel `map`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_ssl_lt.data.batching import (
    BACKENDS,
    BatchPlan,
    PlannedBatches,
    check_prefetch,
    epoch_orders,
    finish_tf,
    subset_positions,
    tf_available,
)
from keras_ssl_lt.data.sources import Source, load_source

__all__ = ["ArrayBatches", "ssl_dataset", "supervised_dataset"]


def _auto_backend():
    """In memory: tf.data on the TensorFlow Keras backend, the numpy PyDataset otherwise (measured faster)."""

    return "tf" if keras.backend.backend() == "tensorflow" and tf_available() else "numpy"


def _gather(source, subset):
    src = load_source(source) if not isinstance(source, Source) else source
    idx = subset_positions(src, subset)
    images = src.images(idx)
    labels = src.labels[idx].astype(np.int32)
    return images, labels, idx.astype(np.int32)


def _batch_dict(images, labels, index, pos):
    return {"images": images[pos], "labels": labels[pos], "index": index[pos]}


class ArrayBatches(PlannedBatches):
    """The numpy path: a `keras.utils.PyDataset` of dict batches (no TensorFlow needed).

    `len(ds)` is the number of steps per epoch; `ds[i]` is batch `i` of the current epoch;
    `on_epoch_end()` moves to the next epoch's order. Iterating with `for` yields one epoch and
    then advances.

    Example:

    >>> import numpy as np
    >>> ds = ArrayBatches(np.zeros((5, 2, 2, 3), "uint8"), np.arange(5), np.arange(5),
    ...                   BatchPlan(5, 2, shuffle=True, drop_remainder=True, seed=0))
    >>> len(ds), ds[0]["images"].shape
    (2, (2, 2, 2, 3))
    """

    def __init__(self, images, labels, index, plan, workers=1, **kwargs):
        super().__init__(plan, workers=workers, **kwargs)
        self._images, self._labels, self._index = images, labels, index

    def _load(self, positions, i):
        return _batch_dict(self._images, self._labels, self._index, positions)


def _tf_dataset(images, labels, index, plan, prefetch):
    import tensorflow as tf

    with tf.device("/CPU:0"):
        x = tf.constant(images)
        y = tf.constant(labels)
        i = tf.constant(index)
    B = plan.batch_size
    full, tail = plan.n // B, (0 if plan.drop_remainder else plan.n % B)

    def rows(order):  # one element per batch (not per example): the order reshaped to (steps, B)
        ds = tf.data.Dataset.from_tensor_slices(tf.reshape(order[: full * B], (full, B)))
        if tail:
            ds = ds.concatenate(tf.data.Dataset.from_tensors(order[full * B :]))
        return ds

    # Per epoch: the order as one tensor, cut into batches of positions, gathered in a parallel map.
    ds = epoch_orders(plan, tf).flat_map(rows)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(plan)))

    def gather(pos):
        return {"images": tf.gather(x, pos), "labels": tf.gather(y, pos), "index": tf.gather(i, pos)}

    ds = ds.map(gather, num_parallel_calls=_PARALLEL_GATHERS, deterministic=True)
    return finish_tf(ds, prefetch, tf)


# A gather is cheap: a fixed, small parallelism with autotuning off costs less per batch than AUTOTUNE
# (measured in docs/data.md, "Performance").
_PARALLEL_GATHERS = 2


def _dataset(source, subset, batch_size, shuffle, drop_remainder, seed, backend, prefetch, workers):
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}; got {backend!r}")
    check_prefetch(prefetch)
    if backend == "auto":
        backend = _auto_backend()
    images, labels, index = _gather(source, subset)
    plan = BatchPlan(len(labels), batch_size, shuffle, drop_remainder, seed)
    if backend == "tf":
        return _tf_dataset(images, labels, index, plan, prefetch)
    return ArrayBatches(images, labels, index, plan, workers=workers)


def ssl_dataset(
    source: Any,
    subset: Any = None,
    batch_size: int = 512,
    shuffle: bool = True,
    drop_remainder: bool = True,
    seed: int = 0,
    backend: str = "auto",
    prefetch: int | str = "auto",
    workers: int = 1,
) -> Any:
    """Batches for self-supervised pre-training: shuffled every epoch, full batches only.

    Args:
        source: a `Source` (or anything `load_source` accepts).
        subset: a `Subset`, a 1-D array of source positions, or None for the whole source.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch (seeded by `seed` and the epoch number).
        drop_remainder: drop the last partial batch (contrastive losses want full batches).
        seed: non-negative integer.
        backend: "auto" (tf.data on the TensorFlow Keras backend, numpy on JAX / PyTorch), "tf"
            (tf.data) or "numpy" (`keras.utils.PyDataset`). Both give the same batches.
        prefetch: tf.data prefetch depth in batches ("auto" = 2, 0 = none).
        workers: threads for the numpy path's `PyDataset` (1 = none).

    Returns:
        a `tf.data.Dataset` or an `ArrayBatches` (`keras.utils.PyDataset`); either goes straight
        into `model.fit(ds, epochs=...)`.

    Example:

    >>> import numpy as np
    >>> from keras_ssl_lt.data import from_arrays
    >>> src = from_arrays(np.zeros((10, 4, 4, 3), "uint8"), np.arange(10) % 2)
    >>> ds = ssl_dataset(src, batch_size=4, backend="numpy")
    >>> len(ds), sorted(ds[0])
    (2, ['images', 'index', 'labels'])
    """
    return _dataset(source, subset, batch_size, shuffle, drop_remainder, seed, backend, prefetch, workers)


def supervised_dataset(
    source: Any,
    subset: Any = None,
    batch_size: int = 256,
    training: bool = True,
    shuffle: bool | None = None,
    drop_remainder: bool | None = None,
    seed: int = 0,
    backend: str = "auto",
    prefetch: int | str = "auto",
    workers: int = 1,
) -> Any:
    """Batches for supervised training (`training=True`) or evaluation (`training=False`).

    The same batches as `ssl_dataset`; only the defaults differ: with `training=True` it
    reshuffles every epoch and keeps the last partial batch; with `training=False` it keeps the
    source order and every example exactly once. `shuffle` / `drop_remainder` override them.

    Example:

    >>> import numpy as np
    >>> from keras_ssl_lt.data import from_arrays
    >>> src = from_arrays(np.zeros((5, 4, 4, 3), "uint8"), np.arange(5) % 2)
    >>> ds = supervised_dataset(src, batch_size=2, training=False, backend="numpy")
    >>> [b["index"].tolist() for b in ds]
    [[0, 1], [2, 3], [4]]
    """
    shuffle = training if shuffle is None else shuffle
    drop_remainder = False if drop_remainder is None else drop_remainder
    return _dataset(source, subset, batch_size, shuffle, drop_remainder, seed, backend, prefetch, workers)
