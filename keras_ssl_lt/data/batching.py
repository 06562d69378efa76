"""Batch planning shared by the in-memory (`pipeline`) and streaming (`streaming`) paths.

Which source positions a subset selects (`subset_positions`), which of them form each batch of
each epoch (`BatchPlan`, numpy, seeded), the `keras.utils.PyDataset` that walks such a plan
(`PlannedBatches`), and the tf.data pieces both paths use: one epoch's order per iterator
(`epoch_orders`) and the prefetch / autotune options (`finish_tf`). Nothing here decodes an image.
TensorFlow is imported only inside the tf.data helpers.
"""

import math

import numpy as np

from keras_ssl_lt.data.imbalance import Subset

__all__ = [
    "AUTO_PREFETCH",
    "BACKENDS",
    "STREAM_EPOCH",
    "BatchPlan",
    "PlannedBatches",
    "check_prefetch",
    "epoch_orders",
    "finish_tf",
    "subset_positions",
    "tf_available",
]

BACKENDS = ("auto", "tf", "numpy")
# The seed stream of the epoch orders: `default_rng([seed, STREAM_EPOCH, epoch])` (shared with the
# streaming path's "global" shuffle, so both give the same batches).
STREAM_EPOCH = 2
AUTO_PREFETCH = 2


def tf_available():
    """True when TensorFlow imports (the tf.data paths need it).

    Example:

    >>> isinstance(tf_available(), bool)
    True
    """
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def check_prefetch(prefetch):
    """`prefetch` must be "auto" or a non-negative integer (batches prepared ahead); returns it.

    Example:

    >>> check_prefetch("auto"), check_prefetch(0)
    ('auto', 0)
    """
    if not (
        prefetch == "auto"
        or (isinstance(prefetch, (int, np.integer)) and not isinstance(prefetch, bool) and prefetch >= 0)
    ):
        raise ValueError(f"`prefetch` must be 'auto' or a non-negative integer; got {prefetch!r}")
    return prefetch


def subset_positions(source, subset):
    """The positions in `source` that a `subset` (a Subset, a 1-D integer array or None) selects, as int64.

    Example:

    >>> from keras_ssl_lt.data import from_arrays
    >>> src = from_arrays(np.zeros((4, 2, 2, 3), "uint8"), [0, 1, 0, 1])
    >>> subset_positions(src, None).tolist(), subset_positions(src, [3, 1]).tolist()
    ([0, 1, 2, 3], [3, 1])
    """
    if subset is None:
        idx = np.arange(len(source), dtype=np.int64)
    elif isinstance(subset, Subset):
        if subset.manifest.get("num_examples") not in (None, len(source)):
            raise ValueError(
                f"`subset` was built for {subset.manifest['num_examples']} examples but `source` "
                f"has {len(source)}; build the subset from this source's labels"
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
        if idx.size and (idx.min() < 0 or idx.max() >= len(source)):
            raise ValueError(f"`subset` positions must be in 0..{len(source) - 1}; got {idx.min()}..{idx.max()}")
    if idx.size and idx.max() >= 2**31:
        raise ValueError("`index` is int32: sources with more than 2**31 examples are not supported")
    return np.asarray(idx, dtype=np.int64)


class BatchPlan:
    """Which positions of the gathered arrays form each batch of each epoch (numpy, seeded).

    Epoch `e` uses the order `default_rng([seed, 2, e]).permutation(n)` (no shuffle: `0..n-1`);
    subclasses override `order` (the streaming orders) and `constant_order`.

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
        return np.random.default_rng([self.seed, STREAM_EPOCH, int(epoch)]).permutation(self.n)

    def constant_order(self):
        """The order of every epoch when it does not change from epoch to epoch (no shuffle), else None."""
        return None if self.shuffle else np.arange(self.n, dtype=np.int64)

    def batches(self, epoch):
        """The positions of each batch of epoch `epoch` (a list of int64 arrays)."""
        order = self.order(epoch)
        B = self.batch_size
        return [order[k * B : (k + 1) * B] for k in range(len(self))]


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


def epoch_orders(plan, tf):
    """A dataset of one element per iterator: that epoch's order, from one Python call per epoch.

    The epoch counter advances each time an iterator is created (each epoch of `fit`, each `for`
    loop), as the numpy path's `on_epoch_end` does. The order is computed by `plan.order` (numpy),
    so both paths yield the same batches; no Python runs per batch.

    Example:

    >>> import tensorflow as tf
    >>> ds = epoch_orders(BatchPlan(3, 1, shuffle=False, drop_remainder=True, seed=0), tf)
    >>> [o.tolist() for o in ds.as_numpy_iterator()]
    [[0, 1, 2]]
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


def finish_tf(ds, prefetch, tf, bounded=False):
    """Prefetch (`"auto"`: 2 batches) and turn tf.data's autotuner off (fixed parallelism instead).

    `bounded=True` (streaming, where a batch can be tens of MB) also turns off tf.data's map-and-batch
    fusion: the fused op builds whole batches ahead on its own schedule (measured: 2 to 8 batches
    decoded ahead of the consumer, varying from run to run), where the plain map + batch holds exactly
    the prefetch buffer plus the batch being built.

    Example:

    >>> import tensorflow as tf
    >>> finish_tf(tf.data.Dataset.range(3), "auto", tf).options().autotune.enabled
    False
    """
    if prefetch:
        ds = ds.prefetch(AUTO_PREFETCH if prefetch == "auto" else int(prefetch))
    options = tf.data.Options()
    options.autotune.enabled = False
    if bounded:
        options.experimental_optimization.map_and_batch_fusion = False
    return ds.with_options(options)
