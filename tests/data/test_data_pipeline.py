"""ssl_dataset / supervised_dataset: dict batches of uint8 bytes, seeded per-epoch shuffles,
the same batches on the tf.data and numpy paths, and `model.fit` on the current backend."""

import keras
import numpy as np
import pytest

from keras_ssl_lt.data import (
    BatchPlan,
    from_arrays,
    make_subset,
    ssl_dataset,
    supervised_dataset,
)

PATHS = ["tf", "numpy"]


def _batches(ds, backend):
    """One pass over the dataset as a list of numpy dicts (tf.data or PyDataset)."""
    if backend == "tf":
        return [{k: v.numpy() for k, v in b.items()} for b in ds]
    return list(ds)


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (200, 6, 6, 3), dtype=np.uint8)
    y = np.repeat(np.arange(4), 50)
    return from_arrays(x, y), x, y


@pytest.mark.parametrize("backend", PATHS)
def test_batches_content_and_epochs(small, backend):
    src, x, y = small
    sub = make_subset(y, "exp", ratio=0.1, seed=1)  # 50 + 23 + 10 + 5 = 88
    ds = ssl_dataset(src, sub, batch_size=16, seed=3, backend=backend)
    e0, e1 = _batches(ds, backend), _batches(ds, backend)
    assert len(e0) == len(e1) == sub.n // 16 == 5
    for b in e0:
        assert b["images"].dtype == np.uint8 and b["images"].shape == (16, 6, 6, 3)
        assert b["labels"].dtype == np.int32 and b["index"].dtype == np.int32
        assert np.array_equal(b["images"], x[b["index"]])  # index = position in the source
        assert np.array_equal(b["labels"], y[b["index"]])
    seen0 = np.concatenate([b["index"] for b in e0])
    assert len(set(seen0.tolist())) == 80 and np.isin(seen0, sub.indices).all()
    seen1 = np.concatenate([b["index"] for b in e1])
    assert not np.array_equal(seen0, seen1)  # reshuffled every epoch
    again = _batches(ssl_dataset(src, sub, batch_size=16, seed=3, backend=backend), backend)
    assert all(np.array_equal(a["index"], b["index"]) for a, b in zip(e0, again, strict=True))  # seeded
    other = _batches(ssl_dataset(src, sub, batch_size=16, seed=4, backend=backend), backend)
    assert not np.array_equal(seen0, np.concatenate([b["index"] for b in other]))


def test_tf_and_numpy_paths_agree(small):
    src, _, y = small
    sub = make_subset(y, "pareto", ratio=0.2, seed=0)
    tf_ds = ssl_dataset(src, sub, batch_size=8, seed=5, backend="tf")
    np_ds = ssl_dataset(src, sub, batch_size=8, seed=5, backend="numpy")
    for _ in range(2):  # two epochs
        a, b = _batches(tf_ds, "tf"), _batches(np_ds, "numpy")
        assert len(a) == len(b) == len(np_ds)
        for u, v in zip(a, b, strict=True):
            for k in ("images", "labels", "index"):
                assert np.array_equal(u[k], v[k])


@pytest.mark.parametrize("backend", PATHS)
def test_supervised_modes(small, backend):
    src, _, y = small
    sub = make_subset(y, "step", ratio=0.2)  # 50 + 50 + 10 + 10 = 120
    ev = _batches(supervised_dataset(src, sub, batch_size=50, training=False, backend=backend), backend)
    assert [len(b["index"]) for b in ev] == [50, 50, 20]
    assert np.array_equal(np.concatenate([b["index"] for b in ev]), sub.indices)  # source order
    tr = _batches(supervised_dataset(src, sub, batch_size=50, backend=backend), backend)
    idx = np.concatenate([b["index"] for b in tr])
    assert sorted(idx.tolist()) == sub.indices.tolist() and not np.array_equal(idx, sub.indices)
    whole = _batches(supervised_dataset(src, batch_size=64, training=False, backend=backend), backend)
    assert np.array_equal(np.concatenate([b["index"] for b in whole]), np.arange(200))
    arr = _batches(supervised_dataset(src, sub.indices[:7], batch_size=4, training=False, backend=backend), backend)
    assert np.array_equal(np.concatenate([b["index"] for b in arr]), sub.indices[:7])


@pytest.mark.parametrize(
    "kwargs,word",
    [
        (dict(batch_size=500), "batch_size"),
        (dict(batch_size=0), "batch_size"),
        (dict(backend="torch"), "backend"),
        (dict(seed=-2), "seed"),
        (dict(prefetch=-1), "prefetch"),
    ],
)
def test_bad_arguments(small, kwargs, word):
    src, _, y = small
    with pytest.raises(ValueError, match=word):
        ssl_dataset(src, make_subset(y, "exp", ratio=0.1), **kwargs)


def test_subset_for_other_source(small):
    src, _, _ = small
    other = make_subset(np.repeat(np.arange(4), 60), "exp", ratio=0.1)
    with pytest.raises(ValueError, match="subset"):
        ssl_dataset(src, other, batch_size=4)


def test_batch_plan_reference():
    plan = BatchPlan(10, 3, shuffle=True, drop_remainder=True, seed=9)
    perm = np.random.default_rng([9, 2, 1]).permutation(10)
    assert [b.tolist() for b in plan.batches(1)] == [perm[0:3].tolist(), perm[3:6].tolist(), perm[6:9].tolist()]


class PixelRegressor(keras.Model):
    """Trivial model fitted on dict batches: regress the label from the pixels."""

    def __init__(self):
        super().__init__()
        self.flat = keras.layers.Flatten()
        self.dense = keras.layers.Dense(1)

    def call(self, batch):
        x = keras.ops.cast(batch["images"], "float32") / 255.0
        return self.dense(self.flat(x))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        target = keras.ops.cast(x["labels"], "float32")[:, None]
        return keras.ops.mean(keras.ops.square(y_pred - target))


@pytest.mark.parametrize("backend", PATHS)
def test_fit_on_current_backend(small, backend):
    src, _, y = small
    sub = make_subset(y, "exp", ratio=0.1)
    ds = ssl_dataset(src, sub, batch_size=16, backend=backend)
    model = PixelRegressor()
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    hist = model.fit(ds, epochs=2, verbose=0, shuffle=False)
    assert len(hist.history["loss"]) == 2 and np.all(np.isfinite(hist.history["loss"]))
    ev = supervised_dataset(src, sub, batch_size=32, training=False, backend=backend)
    pred = model.predict(ev, verbose=0)
    assert pred.shape == (sub.n, 1)


def test_cifar10_lt_batches(cifar10):
    x, y = cifar10["x_train"], cifar10["y_train"]
    src = from_arrays(x, y)
    sub = make_subset(y, "exp", ratio=0.01, sampling=0.125, seed=0)
    ds = ssl_dataset(src, sub, batch_size=256, seed=0, backend="numpy")
    assert len(ds) == sub.n // 256
    b = ds[0]
    assert np.array_equal(b["images"], x[b["index"]]) and np.array_equal(b["labels"], y[b["index"]])
    # batches are drawn uniformly from the long-tailed subset: class 0 dominates
    labels = np.concatenate([ds[i]["labels"] for i in range(len(ds))])
    assert np.argmax(np.bincount(labels, minlength=10)) == 0
