"""stream_dataset: split files as published with ImageNet-LT, image folders and TFDS, decoded per batch.

Checks labels and source indices, host-side decode + resize, the orders (global / shard / buffer / none)
on both paths, bounded buffering on a dataset larger than the buffer, subsets applied without decoding,
and `model.fit` on the current backend.
"""

import os
import time

import keras
import numpy as np
import pytest

from keras_ssl_lt.data import (
    FolderSource,
    SplitFileSource,
    decode_image,
    from_arrays,
    load_source,
    make_subset,
    read_split_file,
    ssl_dataset,
    stream_dataset,
    stream_order,
    streaming,
    write_image_folder,
)

PATHS = ["tf", "numpy"]


def _batches(ds):
    out = []
    for b in ds:
        out.append({k: np.asarray(v) for k, v in b.items()})
    return out


@pytest.fixture(scope="module")
def lt_folder(tmp_path_factory):
    """ImageNet-LT layout: 4 classes (12, 8, 6, 4 images), JPEG and PNG, sizes 10..18 px, plus the split file."""
    root = tmp_path_factory.mktemp("imagenet_lt")
    split = write_image_folder(root, counts=[12, 8, 6, 4], size_range=(10, 18), seed=0)
    return str(root), split


@pytest.fixture(scope="module")
def src(lt_folder):
    root, split = lt_folder
    return SplitFileSource(root, split, image_size=(8, 8))


def test_split_file_labels_and_paths(lt_folder, src):
    root, split = lt_folder
    rel, labels = read_split_file(split)
    assert len(src) == 30 and src.num_classes == 4
    assert src.labels.tolist() == [0] * 12 + [1] * 8 + [2] * 6 + [3] * 4
    assert rel[0].startswith("train/n00000000/") and all(os.path.exists(p) for p in src.paths)
    assert {p.rsplit(".", 1)[1] for p in rel} == {"JPEG", "png"}
    assert np.array_equal(load_source(split, image_size=(8, 8)).labels, labels)  # a .txt spec
    bad = os.path.join(root, "bad.txt")
    with open(bad, "w") as f:
        f.write("train/a.JPEG 0\ntrain/b.JPEG x\n")
    with pytest.raises(ValueError, match="line 2"):
        SplitFileSource(root, bad)


@pytest.mark.parametrize("backend", PATHS)
def test_labels_indices_and_decoding(src, backend):
    sub = make_subset(src.labels, "pareto", ratio=0.34, max_per_class=12, seed=0)  # 12 + ... + 4
    ds = stream_dataset(src, sub, batch_size=4, drop_remainder=False, seed=1, backend=backend)
    batches = _batches(ds)
    assert len(batches) == len(ds) if backend == "numpy" else True
    idx = np.concatenate([b["index"] for b in batches])
    assert sorted(idx.tolist()) == sub.indices.tolist()  # every subset example once
    for b in batches:
        assert b["images"].dtype == np.uint8 and b["images"].shape[1:] == (8, 8, 3)
        assert b["labels"].dtype == np.int32 and b["index"].dtype == np.int32
        assert np.array_equal(b["labels"], src.labels[b["index"]])
        ref = np.stack([decode_image(src.paths[i], (8, 8)) for i in b["index"]])
        diff = np.abs(b["images"].astype(int) - ref.astype(int))
        if backend == "numpy":
            assert diff.max() == 0  # the numpy path decodes with PIL, as `decode_image`
        else:  # tf.image bilinear (antialiased) vs PIL bilinear: a few levels of rounding
            assert diff.mean() < 4.0, diff.mean()


def test_no_resize_is_exact_on_both_paths(tmp_path):
    """PNG at one size, no resize: tf.io and PIL decode the same bytes."""
    split = write_image_folder(tmp_path, num_classes=2, per_class=3, size_range=(7, 7), formats=("png",))
    src = SplitFileSource(str(tmp_path), split)
    a = _batches(stream_dataset(src, batch_size=3, shuffle="none", backend="tf"))
    b = _batches(stream_dataset(src, batch_size=3, shuffle="none", backend="numpy"))
    for u, v in zip(a, b, strict=True):
        assert np.array_equal(u["images"], v["images"]) and u["images"].shape == (3, 7, 7, 3)


def test_center_crop_geometry(tmp_path):
    from PIL import Image

    img = np.zeros((6, 12, 3), np.uint8)
    img[:, 3:9] = 255  # a white centre band: a center crop of (6, 6) keeps only white
    p = str(tmp_path / "a.png")
    Image.fromarray(img).save(p)
    assert decode_image(p, (6, 6), resize="center_crop").min() == 255
    assert decode_image(p, (6, 6), resize="stretch").min() == 0
    with open(tmp_path / "s.txt", "w") as f:
        f.write("a.png 0\na.png 1\n")
    src = SplitFileSource(str(tmp_path), str(tmp_path / "s.txt"), image_size=(3, 3), resize="center_crop")
    b = _batches(stream_dataset(src, batch_size=2, shuffle="none", backend="tf"))[0]
    ref = decode_image(p, (3, 3), resize="center_crop")  # the same geometry on both decoders
    assert b["images"].shape == (2, 3, 3, 3) and np.abs(b["images"][0].astype(int) - ref).mean() < 4
    assert not np.array_equal(ref, decode_image(p, (3, 3), resize="stretch"))


def test_split_subset_is_the_published_split_within_a_pool(lt_folder, src):
    """ImageNet-LT's train list as a Subset of a larger pool, then its balanced counterpart: no image decoded."""
    from keras_ssl_lt.data import balanced_counterpart, split_subset

    root, split = lt_folder
    lines = open(split).read().splitlines()
    lt = os.path.join(root, "lt_split.txt")
    keep = [0, 1, 2, 3, 4, 5, 12, 13, 14, 20, 26]  # 6 / 3 / 1 / 1 of classes 0..3
    with open(lt, "w") as f:
        f.write("\n".join(lines[k] for k in keep[::-1]) + "\n")  # any line order
    sub = split_subset(src, lt)
    assert sub.indices.tolist() == keep and sub.counts.tolist() == [6, 3, 1, 1]
    assert sub.manifest["kind"] == "split_file" and len(sub.manifest["split_file"]["sha256"]) == 64
    folder = FolderSource(os.path.join(root, "train"))  # the same pool as an image folder
    names = lambda source, idx: sorted(os.path.basename(source.paths[i]) for i in idx)  # noqa: E731
    assert names(folder, split_subset(folder, lt).indices) == names(src, keep)  # folder order differs
    bal = balanced_counterpart(src.labels, sub)
    assert bal.n == sub.n and bal.counts.max() - bal.counts.min() <= 1
    with open(lt, "a") as f:
        f.write(lines[6].rsplit(" ", 1)[0] + " 3\n")  # a wrong label
    with pytest.raises(ValueError, match="label"):
        split_subset(src, lt)


def test_global_order_is_the_in_memory_order(src):
    sub = make_subset(src.labels, "exp", ratio=0.5, max_per_class=8, seed=0)
    mem = ssl_dataset(src, sub, batch_size=4, seed=3, backend="numpy")
    stream = stream_dataset(src, sub, batch_size=4, seed=3, backend="numpy")
    for _ in range(2):  # two epochs
        a, b = _batches(mem), _batches(stream)
        assert [x["index"].tolist() for x in a] == [x["index"].tolist() for x in b]
        assert all(np.array_equal(x["images"], y["images"]) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("shuffle", ["global", "shard", "buffer", "none"])
def test_tf_and_numpy_paths_agree(src, shuffle):
    kw = dict(batch_size=4, shuffle=shuffle, seed=5, buffer_size=6, shard_size=5)
    tf_ds, np_ds = stream_dataset(src, backend="tf", **kw), stream_dataset(src, backend="numpy", **kw)
    epochs = []
    for _ in range(2):
        a, b = _batches(tf_ds), _batches(np_ds)
        assert len(a) == len(b) == 30 // 4
        assert [x["index"].tolist() for x in a] == [x["index"].tolist() for x in b]
        assert all(np.array_equal(x["labels"], y["labels"]) for x, y in zip(a, b, strict=True))
        epochs.append(np.concatenate([x["index"] for x in a]))
    assert np.array_equal(epochs[0], epochs[1]) == (shuffle == "none")  # reshuffled every epoch


def test_orders():
    pos = np.arange(100, 160)
    g = stream_order(pos, "global", seed=2, epoch=1)
    assert np.array_equal(g, pos[np.random.default_rng([2, 2, 1]).permutation(60)])
    s = stream_order(pos, "shard", seed=2, shard_size=7)
    shards = [pos[k : k + 7].tolist() for k in range(0, 60, 7)]
    assert sorted(s.tolist()) == pos.tolist() and not np.array_equal(s, pos)
    t, firsts = 0, []
    while t < 60:  # the output is whole shards, one after another, each internally permuted
        shard = next(sh for sh in shards if sh[0] <= s[t] <= sh[-1])
        assert sorted(s[t : t + len(shard)].tolist()) == shard
        firsts.append(shard[0])
        t += len(shard)
    assert sorted(firsts) == [sh[0] for sh in shards] and firsts != sorted(firsts)
    b = stream_order(pos, "buffer", seed=2, buffer_size=5)
    assert sorted(b.tolist()) == pos.tolist()
    rank = {p: i for i, p in enumerate(pos.tolist())}
    assert all(rank[p] <= t + 4 for t, p in enumerate(b.tolist()))  # never more than the buffer ahead
    assert np.array_equal(stream_order(pos, "none"), pos)


def test_subset_applies_without_decoding(src, monkeypatch):
    calls = []
    real = streaming.decode_image

    def counting(path, *a, **k):
        calls.append(path)
        return real(path, *a, **k)

    monkeypatch.setattr(streaming, "decode_image", counting)
    sub = make_subset(src.labels, "exp", ratio=0.25, max_per_class=8, seed=0)
    ds = stream_dataset(src, sub, batch_size=2, drop_remainder=False, backend="numpy")
    assert calls == []  # labels from the split file, the subset and the plan: no image opened
    idx = np.concatenate([b["index"] for b in _batches(ds)])
    assert sorted(calls) == sorted(src.paths[i] for i in idx) and len(calls) == sub.n


def test_bounded_buffering_on_the_tf_path(src, monkeypatch):
    """With PIL decoding (countable), at most prefetch + in-flight batches are decoded ahead of the consumer.

    Checked after the first batch and again after several: tf.data's map-and-batch fusion (off on the
    streaming path) ran 2 to 8 batches ahead, a different number from run to run; with it on, this
    test failed 3 times in 8.
    """
    calls = []
    real = streaming.decode_image
    monkeypatch.setattr(streaming, "decode_image", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    B, prefetch, parallel = 2, 1, 2
    ds = stream_dataset(src, batch_size=B, decoder="pil", prefetch=prefetch, parallel_decodes=parallel, backend="tf")
    # the prefetched batches, the batch being built and the map's parallel slots
    bound = (prefetch + 1) * B + parallel
    assert bound < len(src) / 3
    assert ds.options().experimental_optimization.map_and_batch_fusion is False
    it = iter(ds)
    consumed = 0
    for steps in (1, 3, 2):
        for _ in range(steps):
            consumed += len(next(it)["index"])
        time.sleep(0.3)  # let the pipeline fill its buffers
        assert len(calls) - consumed <= bound, (consumed, len(calls), bound)
    rest = sum(1 for _ in it)
    assert rest == len(src) // B - 6 and len(calls) == len(src)


def test_folder_source_streams(lt_folder):
    root, _ = lt_folder
    folder = FolderSource(os.path.join(root, "train"))
    ds = stream_dataset(folder, image_size=(6, 5), batch_size=5, backend="numpy")
    b = _batches(ds)[0]
    assert b["images"].shape == (5, 6, 5, 3) and np.array_equal(b["labels"], folder.labels[b["index"]])


@pytest.mark.parametrize(
    "kwargs,word",
    [
        (dict(shuffle="random"), "shuffle"),
        (dict(decoder="cv2"), "decoder"),
        (dict(resize="pad"), "resize"),
        (dict(backend="torch"), "backend"),
        (dict(batch_size=40), "batch_size"),
        (dict(buffer_size=0), "buffer_size"),
        (dict(image_size=(8,)), "image_size"),
        (dict(prefetch=-1), "prefetch"),
    ],
)
def test_bad_arguments(src, kwargs, word):
    with pytest.raises(ValueError, match=word):
        stream_dataset(src, **kwargs)


def test_in_memory_source_is_refused():
    with pytest.raises(ValueError, match="source"):
        stream_dataset(from_arrays(np.zeros((4, 2, 2, 3), "uint8"), [0, 1, 0, 1]), batch_size=2)


def test_tfds_split_streams_by_buffer(tmp_path):
    """A TFDS split (mocked examples: tfds regenerates them on every read, so labels are not compared)."""
    tfds = pytest.importorskip("tensorflow_datasets")
    from keras_ssl_lt.data import TfdsSource

    with tfds.testing.mock_data(num_examples=24, policy=tfds.testing.MockPolicy.USE_CODE):
        src = TfdsSource("mnist", "train", data_dir=str(tmp_path))
        sub = np.arange(0, 24, 2)
        ds = stream_dataset(src, sub, image_size=8, batch_size=4, shuffle="buffer", buffer_size=5)
        batches = _batches(ds)
        assert len(batches) == 3 and all(b["images"].shape == (4, 8, 8, 1) for b in batches)
        assert sorted(np.concatenate([b["index"] for b in batches]).tolist()) == sub.tolist()
        with pytest.raises(ValueError, match="shuffle"):
            stream_dataset(src, sub, image_size=8, batch_size=4, shuffle="global")


class PixelMean(keras.Model):
    def __init__(self):
        super().__init__()
        self.flat = keras.layers.Flatten()
        self.dense = keras.layers.Dense(1)

    def call(self, batch):
        return self.dense(self.flat(keras.ops.cast(batch["images"], "float32") / 255.0))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return keras.ops.mean(keras.ops.square(y_pred - keras.ops.cast(x["labels"], "float32")[:, None]))


@pytest.mark.parametrize("backend", PATHS)
def test_fit_on_current_backend(src, backend):
    ds = stream_dataset(src, batch_size=8, backend=backend)
    model = PixelMean()
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    hist = model.fit(ds, epochs=2, verbose=0, shuffle=False)
    assert len(hist.history["loss"]) == 2 and np.all(np.isfinite(hist.history["loss"]))
