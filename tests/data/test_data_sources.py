"""Sources: arrays, .npz, image folders and TFDS (mocked); labels never decode images."""

import numpy as np
import pytest

from keras_ssl_lt.data import (
    from_arrays,
    from_folder,
    from_npz,
    load_source,
    make_subset,
)


def test_arrays_source():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 5, 6, 3), dtype=np.uint8)
    y = np.arange(12) % 3
    src = from_arrays(x, y, class_names=["a", "b", "c"])
    assert len(src) == 12 and src.num_classes == 3 and src.class_names == ["a", "b", "c"]
    assert src.labels.dtype == np.int64 and src.labels.tolist() == y.tolist()
    got = src.images([7, 2, 7])
    assert got.dtype == np.uint8 and np.array_equal(got, x[[7, 2, 7]])
    gray = from_arrays(x[..., 0], y)
    assert gray.images([0]).shape == (1, 5, 6, 1)
    assert load_source((x, y)).num_classes == 3


@pytest.mark.parametrize(
    "images,labels,kw,word",
    [
        (np.zeros((3, 4, 4, 3), np.uint8), np.array([0, 1]), {}, "same length"),
        (np.zeros((3, 4, 4, 3), np.float32), np.array([0, 1, 2]), {}, "uint8"),
        (np.zeros((3, 4), np.uint8), np.array([0, 1, 2]), {}, "images"),
        (np.zeros((3, 4, 4, 3), np.uint8), np.array([0, 1, 2.5]), {}, "labels"),
        (np.zeros((3, 4, 4, 3), np.uint8), np.array([0, 1, 2]), dict(class_names=["a"]), "class_names"),
    ],
)
def test_arrays_bad_input(images, labels, kw, word):
    with pytest.raises(ValueError, match=word):
        from_arrays(images, labels, **kw)


def test_bad_indices():
    src = from_arrays(np.zeros((3, 2, 2, 3), np.uint8), [0, 1, 1])
    with pytest.raises(ValueError, match="indices"):
        src.images([3])
    with pytest.raises(ValueError, match="indices"):
        src.images([[0]])


def test_npz_source(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (8, 4, 4, 3), dtype=np.uint8)
    p = tmp_path / "d.npz"
    np.savez(
        p,
        x_train=x,
        y_train=(np.arange(8) % 2)[:, None],
        images=x[:3],
        lab=np.array([2, 0, 1]),
        class_names=np.array(["cat", "dog"]),
    )
    src = from_npz(p)
    assert src._array is None  # labels read, images not yet loaded
    assert src.labels.tolist() == [0, 1] * 4 and src.class_names == ["cat", "dog"]
    assert np.array_equal(src.images([5, 1]), x[[5, 1]])
    other = from_npz(p, image_key="images", label_key="lab", class_names_key=None)
    assert other.num_classes == 3 and np.array_equal(other.images([2]), x[[2]])
    assert load_source(str(p)).num_classes == 2
    with pytest.raises(ValueError, match="image_key"):
        from_npz(p, split="test")
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=np.arange(7) % 2)
    with pytest.raises(ValueError, match="same length"):
        from_npz(tmp_path / "bad.npz").images([0])


def test_npz_real_cifar10_subset(cifar10, tmp_path):
    """CIFAR-10-LT from a real .npz: only labels are needed to build the subset."""
    from conftest import CIFAR10_PATH  # the fixture has checked that it exists

    src = from_npz(CIFAR10_PATH)
    assert len(src) == 50000 and src.num_classes == 10 and src.class_names[0] == "airplane"
    sub = make_subset(src.labels, "exp", ratio=0.01, seed=0)
    assert src._array is None
    imgs = src.images(sub.indices[-5:])
    assert np.array_equal(imgs, cifar10["x_train"][sub.indices[-5:]])
    assert np.array_equal(src.labels[sub.indices], cifar10["y_train"][sub.indices])


def _write_folder(root, sizes):
    import keras

    rng = np.random.default_rng(2)
    written = {}
    for name, n in (("zebra", 2), ("ant", 3), ("moth", 1)):
        (root / name).mkdir(parents=True)
        for k in range(n):
            img = rng.integers(0, 256, sizes + (3,), dtype=np.uint8)
            path = root / name / f"img_{k}.png"
            keras.utils.save_img(str(path), img, scale=False)
            written[str(path)] = img
    (root / "notes.txt").write_text("not a class")
    (root / "ant" / "readme.md").write_text("not an image")
    return written


def test_folder_source(tmp_path, monkeypatch):
    written = _write_folder(tmp_path, (6, 5))
    import keras_ssl_lt.data.sources as sources

    calls = []
    real = sources._decode_file
    monkeypatch.setattr(sources, "_decode_file", lambda *a: calls.append(a[0]) or real(*a))
    src = from_folder(tmp_path)
    assert src.class_names == ["ant", "moth", "zebra"]
    assert src.labels.tolist() == [0, 0, 0, 1, 2, 2]
    sub = make_subset(src.labels, "step", ratio=0.5, max_per_class=2, class_order=[0, 2, 1])
    assert sub.counts.tolist() == [2, 1, 2]
    assert calls == []  # labels come from folder names: no image was decoded
    got = src.images([5, 0])
    assert len(calls) == 2
    assert np.array_equal(got[0], written[src.paths[5]]) and np.array_equal(got[1], written[src.paths[0]])
    assert got.dtype == np.uint8 and got.shape == (2, 6, 5, 3)
    small = from_folder(tmp_path, image_size=(3, 4))
    assert small.images([1, 2]).shape == (2, 3, 4, 3)
    assert from_folder(tmp_path, color_mode="grayscale").images([0]).shape == (1, 6, 5, 1)
    assert load_source(tmp_path).num_classes == 3


def test_folder_bad_input(tmp_path):
    with pytest.raises(ValueError, match="path"):
        from_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="path"):
        from_folder(tmp_path)  # no images at all
    import keras

    for name, size in (("a", (4, 4)), ("b", (5, 4))):
        (tmp_path / name).mkdir()
        keras.utils.save_img(str(tmp_path / name / "x.png"), np.zeros(size + (3,), np.uint8))
    src = from_folder(tmp_path)
    with pytest.raises(ValueError, match="image_size"):
        src.images([0, 1])
    with pytest.raises(ValueError, match="image_size"):
        from_folder(tmp_path, image_size=(4,))
    with pytest.raises(ValueError, match="color_mode"):
        from_folder(tmp_path, color_mode="rgba")


def test_tfds_labels_without_decoding_images(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from keras_ssl_lt.data import from_tfds

    decoded = []
    real = tfds.features.Image.decode_example

    def counting(self, *args, **kwargs):
        decoded.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(tfds.features.Image, "decode_example", counting)
    with tfds.testing.mock_data(num_examples=30):
        src = from_tfds("cifar10", "train", data_dir="/nonexistent/tfds")
        assert src.num_classes == 10 and len(src.class_names) == 10
        y = src.labels
        assert decoded == []  # the image decoder was never even traced
        assert y.shape == (30,) and y.dtype == np.int64 and y.min() >= 0 and y.max() < 10
        # the position of an example is stable: images come back in the requested order
        imgs = src.images([4, 1, 4])
        assert imgs.shape == (3, 32, 32, 3) and imgs.dtype == np.uint8
        assert np.array_equal(imgs[0], imgs[2])
        assert np.array_equal(src.images([1])[0], imgs[1])
        assert decoded  # images are decoded only on request
        # (the mock draws different random examples per decoding mode, so labels and images
        # cannot be cross-checked here; real TFRecords keep one order: shuffle_files=False)
        with pytest.raises(ValueError, match="label_key"):
            from_tfds("cifar10", "train", label_key="class")
