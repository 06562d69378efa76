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

import math

import numpy as np

from keras_ssl_lt.data.imbalance import Subset
from keras_ssl_lt.data.sources import Source, load_source

__all__ = ["ssl_dataset", "supervised_dataset", "BatchPlan", "PlannedBatches", "ArrayBatches", "BACKENDS"]

BACKENDS = ("auto", "tf", "numpy")
_STREAM_EPOCH = 2


def _auto_backend():
    """In memory: tf.data on the TensorFlow Keras backend, the numpy PyDataset otherwise (measured faster)."""
    import keras

    return "tf" if keras.backend.backend() == "tensorflow" and _tf_available() else "numpy"


def _tf_available():
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


class BatchPlan:
    """Which positions of the gathered arrays form each batch of each epoch (numpy, seeded).

    Example:

    >>> plan = BatchPlan(10, batch_size=4, shuffle=False, drop_remainder=False, seed=0)
    >>> len(plan), [b.tolist() for b in plan.batches(0)]
    (3, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
    """

    def __init__(self, n, batch_size, shuffle, drop_remainder, seed):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer; got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer; got {seed!r}")
        if n < 1:
            raise ValueError("the subset is empty: there is nothing to batch")
        if drop_remainder and n < batch_size:
            raise ValueError(
                f"`batch_size`={batch_size} is larger than the dataset ({n} examples) and "
                "`drop_remainder=True` would yield no batch; lower `batch_size` to at most "
                f"{n} or pass `drop_remainder=False`"
            )
        self.n, self.batch_size = int(n), int(batch_size)
        self.shuffle, self.drop_remainder, self.seed = bool(shuffle), bool(drop_remainder), int(seed)

    def __len__(self):
        if self.drop_remainder:
            return self.n // self.batch_size
        return math.ceil(self.n / self.batch_size)

    def order(self, epoch):
        """Positions in the order of epoch `epoch`."""
        if not self.shuffle:
            return np.arange(self.n, dtype=np.int64)
        return np.random.default_rng([self.seed, _STREAM_EPOCH, int(epoch)]).permutation(self.n)

    def constant_order(self):
        """The order of every epoch when it does not change from epoch to epoch (no shuffle), else None."""
        return None if self.shuffle else np.arange(self.n, dtype=np.int64)

    def batches(self, epoch):
        order = self.order(epoch)
        B = self.batch_size
        return [order[k * B : (k + 1) * B] for k in range(len(self))]


def _positions(src, subset):
    """The source positions a `subset` (Subset, 1-D integer array or None) selects, as int64."""
    if subset is None:
        idx = np.arange(len(src), dtype=np.int64)
    elif isinstance(subset, Subset):
        if subset.manifest.get("num_examples") not in (None, len(src)):
            raise ValueError(
                f"`subset` was built for {subset.manifest['num_examples']} examples but `source` "
                f"has {len(src)}; build the subset from this source's labels"
            )
        idx = subset.indices
    else:
        idx = np.asarray(subset)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(
                "`subset` must be a Subset, a 1-D integer array of source positions or None; "
                f"got shape {idx.shape}, dtype {idx.dtype}"
            )
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(src)):
            raise ValueError(f"`subset` positions must be in 0..{len(src) - 1}; got {idx.min()}..{idx.max()}")
    if idx.size and idx.max() >= 2**31:
        raise ValueError("`index` is int32: sources with more than 2**31 examples are not supported")
    return np.asarray(idx, dtype=np.int64)


def _gather(source, subset):
    src = load_source(source) if not isinstance(source, Source) else source
    idx = _positions(src, subset)
    images = src.images(idx)
    labels = src.labels[idx].astype(np.int32)
    return images, labels, idx.astype(np.int32)


def _check_prefetch(prefetch):
    if not (
        prefetch == "auto"
        or (isinstance(prefetch, (int, np.integer)) and not isinstance(prefetch, bool) and prefetch >= 0)
    ):
        raise ValueError(f"`prefetch` must be 'auto' or a non-negative integer; got {prefetch!r}")


def _batch_dict(images, labels, index, pos):
    return {"images": images[pos], "labels": labels[pos], "index": index[pos]}


def _make_pyd_base():
    import keras

    return keras.utils.PyDataset


class PlannedBatches(_make_pyd_base()):
    """A `keras.utils.PyDataset` whose batch `i` of epoch `e` holds the positions `plan.batches(e)[i]`.

    The shared epoch bookkeeping of the numpy paths (in memory and streaming): `len(ds)` is the number
    of steps per epoch, `ds[i]` loads batch `i` of the current epoch through `_load(positions, i)`,
    `on_epoch_end()` moves to the next epoch's order, and iterating with `for` yields one epoch and then
    advances. Subclasses implement `_load`.

    Example:

    >>> class Positions(PlannedBatches):
    ...     def _load(self, positions, i):
    ...         return positions
    >>> ds = Positions(BatchPlan(5, 2, shuffle=False, drop_remainder=False, seed=0))
    >>> [b.tolist() for b in ds], ds.epoch
    ([[0, 1], [2, 3], [4]], 1)
    """

    def __init__(self, plan, workers=1, **kwargs):
        super().__init__(workers=workers, **kwargs)
        self.plan = plan
        self.epoch = 0
        self._batches = plan.batches(0)

    def __len__(self):
        return len(self.plan)

    def _load(self, positions, i):
        raise NotImplementedError

    def __getitem__(self, i):
        if not 0 <= i < len(self._batches):
            raise IndexError(f"batch {i} out of range 0..{len(self._batches) - 1}")
        return self._load(self._batches[i], i)

    def on_epoch_end(self):
        self.epoch += 1
        self._batches = self.plan.batches(self.epoch)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
        self.on_epoch_end()


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


def _epoch_orders(plan, tf):
    """A dataset of one element per iterator: that epoch's order, from one Python call per epoch.

    The epoch counter advances each time an iterator is created (each epoch of `fit`, each `for`
    loop), as the numpy path's `on_epoch_end` does. The order is computed by `BatchPlan.order`
    (numpy), so both paths yield the same batches; no Python runs per batch.
    """
    state = {"epoch": 0}

    def next_order():
        epoch = state["epoch"]
        state["epoch"] += 1
        return plan.order(epoch).astype(np.int64)

    constant = plan.constant_order()
    if constant is not None:  # the same order every epoch: no Python at all
        return tf.data.Dataset.from_tensors(tf.constant(constant, tf.int64))
    ds = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64))
    return ds.map(lambda _: tf.ensure_shape(tf.numpy_function(next_order, [], tf.int64, stateful=True), (plan.n,)))


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
    ds = _epoch_orders(plan, tf).flat_map(rows)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(plan)))

    def gather(pos):
        return {"images": tf.gather(x, pos), "labels": tf.gather(y, pos), "index": tf.gather(i, pos)}

    ds = ds.map(gather, num_parallel_calls=_PARALLEL_GATHERS, deterministic=True)
    return _finish_tf(ds, prefetch, tf)


# A gather is cheap: a fixed, small parallelism with autotuning off costs less per batch than AUTOTUNE
# (measured in docs/data.md, "Performance").
_PARALLEL_GATHERS = 2
_AUTO_PREFETCH = 2


def _finish_tf(ds, prefetch, tf, bounded=False):
    """Prefetch (`"auto"`: 2 batches) and turn tf.data's autotuner off (fixed parallelism instead).

    `bounded=True` (streaming, where a batch can be tens of MB) also turns off tf.data's map-and-batch
    fusion: the fused op builds whole batches ahead on its own schedule (measured: 2 to 8 batches
    decoded ahead of the consumer, varying from run to run), where the plain map + batch holds exactly
    the prefetch buffer plus the batch being built.
    """
    if prefetch:
        ds = ds.prefetch(_AUTO_PREFETCH if prefetch == "auto" else int(prefetch))
    options = tf.data.Options()
    options.autotune.enabled = False
    if bounded:
        options.experimental_optimization.map_and_batch_fusion = False
    return ds.with_options(options)


def _dataset(source, subset, batch_size, shuffle, drop_remainder, seed, backend, prefetch, workers):
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}; got {backend!r}")
    _check_prefetch(prefetch)
    if backend == "auto":
        backend = _auto_backend()
    images, labels, index = _gather(source, subset)
    plan = BatchPlan(len(labels), batch_size, shuffle, drop_remainder, seed)
    if backend == "tf":
        return _tf_dataset(images, labels, index, plan, prefetch)
    return ArrayBatches(images, labels, index, plan, workers=workers)


def ssl_dataset(
    source,
    subset=None,
    batch_size=512,
    shuffle=True,
    drop_remainder=True,
    seed=0,
    backend="auto",
    prefetch="auto",
    workers=1,
):
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
    source,
    subset=None,
    batch_size=256,
    training=True,
    shuffle=None,
    drop_remainder=None,
    seed=0,
    backend="auto",
    prefetch="auto",
    workers=1,
):
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
