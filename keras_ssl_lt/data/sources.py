"""Labelled image sources: in-memory arrays, a `.npz`, an image folder, a split file, a TFDS dataset.

A `Source` exposes its labels without decoding any image (`.labels`, `.num_classes`,
`.class_names`, `len()`), and decodes images only when asked: `.images(indices)` returns a uint8
array `(N, H, W, C)` in the order of `indices`. TensorFlow is imported only by the TFDS source
(and by the folder source when PIL is missing); this module itself imports without it.
"""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import ArrayLike

from keras_ssl_lt._checks import check_choice
from keras_ssl_lt.data.decode import RESIZES, check_image_size, decode_image, decode_into
from keras_ssl_lt.data.imbalance import check_labels

__all__ = [
    "IMAGE_EXTENSIONS",
    "ArraySource",
    "FolderSource",
    "NpzSource",
    "Source",
    "SplitFileSource",
    "TfdsSource",
    "from_arrays",
    "from_folder",
    "from_npz",
    "from_split_file",
    "from_tfds",
    "load_source",
    "read_split_file",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


class Source:
    """Base class: labels known up front, images decoded on demand.

    Subclasses set `self._labels` (or override `labels`), `num_classes` and `class_names`, and
    implement `_images(sorted_unique_indices)`.
    """

    num_classes = None
    class_names = None

    @property
    def labels(self):
        """1-D int64 array of class ids, one per example."""
        return self._labels

    def __len__(self):
        return int(self.labels.size)

    def _check_indices(self, indices):
        idx = np.asarray(indices)
        if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
            raise ValueError(
                f"`indices` must be a 1-D integer array of positions in 0..{len(self) - 1}; "
                f"got shape {idx.shape}, dtype {idx.dtype}"
            )
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(f"`indices` must be in 0..{len(self) - 1}; got values in {idx.min()}..{idx.max()}")
        return idx

    def images(self, indices):
        """Decode the images at `indices` (any order, repeats allowed) as uint8 `(N, H, W, C)`."""
        idx = self._check_indices(indices)
        uniq, inverse = np.unique(idx, return_inverse=True)
        out = self._images(uniq)
        return out[inverse] if uniq.size != idx.size or not np.array_equal(uniq, idx) else out

    def _images(self, sorted_indices):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(n={len(self)}, num_classes={self.num_classes})"


def _names(class_names, num_classes):
    if class_names is None:
        return [str(c) for c in range(num_classes)]
    names = [str(n) for n in np.asarray(class_names).tolist()]
    if len(names) != num_classes:
        raise ValueError(f"`class_names` must have one name per class ({num_classes}); got {len(names)}")
    return names


def _check_images(images, name="images"):
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.dtype != np.uint8:
        raise ValueError(
            f"`{name}` must be a uint8 array of shape (N, H, W, C) or (N, H, W); "
            f"got shape {arr.shape}, dtype {arr.dtype}"
        )
    return arr


class ArraySource(Source):
    """Images and labels already in memory.

    Example:

    >>> import numpy as np
    >>> src = ArraySource(np.zeros((4, 8, 8, 3), "uint8"), [0, 1, 1, 0])
    >>> len(src), src.num_classes, src.images([3, 0]).shape
    (4, 2, (2, 8, 8, 3))
    """

    def __init__(self, images, labels, class_names=None, num_classes=None):
        self._array = _check_images(images)
        self._labels, self.num_classes = check_labels(labels, num_classes)
        if len(self._array) != self._labels.size:
            raise ValueError(
                f"`images` and `labels` must have the same length; got {len(self._array)} images "
                f"and {self._labels.size} labels"
            )
        self.class_names = _names(class_names, self.num_classes)

    def images(self, indices):
        return self._array[self._check_indices(indices)]

    def _images(self, sorted_indices):
        return self._array[sorted_indices]


class NpzSource(Source):
    """A `.npz` file with image and label arrays per split (keys `x_<split>` / `y_<split>`).

    Only the label array is read on construction; the image array is read on the first call to
    `images` and kept in memory. Labels of shape `(N, 1)` (the Keras CIFAR layout) are flattened.

    Example:

    >>> import numpy as np, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "d.npz")
    >>> np.savez(p, x_train=np.zeros((3, 4, 4, 3), "uint8"), y_train=np.array([0, 1, 2]))
    >>> NpzSource(p).labels.tolist()
    [0, 1, 2]
    """

    def __init__(
        self,
        path,
        split="train",
        image_key=None,
        label_key=None,
        class_names_key="class_names",
        num_classes=None,
        class_names=None,
    ):
        self.path = os.fspath(path)
        self.image_key = image_key or f"x_{split}"
        self.label_key = label_key or f"y_{split}"
        with np.load(self.path, allow_pickle=False) as f:
            keys = list(f.keys())
            for arg, key in (("image_key", self.image_key), ("label_key", self.label_key)):
                if key not in keys:
                    raise ValueError(f"`{arg}` {key!r} is not in {self.path}; the keys are {keys} (split={split!r})")
            labels = f[self.label_key]
            if class_names is None and class_names_key and class_names_key in keys:
                class_names = f[class_names_key]
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        self._labels, self.num_classes = check_labels(labels, num_classes)
        self.class_names = _names(class_names, self.num_classes)
        self._array = None

    def _load(self):
        if self._array is None:
            with np.load(self.path, allow_pickle=False) as f:
                arr = _check_images(f[self.image_key], name=self.image_key)
            if len(arr) != self._labels.size:
                raise ValueError(
                    f"`{self.image_key}` and `{self.label_key}` must have the same length; got "
                    f"{len(arr)} images and {self._labels.size} labels"
                )
            self._array = arr
        return self._array

    def images(self, indices):
        idx = self._check_indices(indices)
        return self._load()[idx]

    def _images(self, sorted_indices):
        return self._load()[sorted_indices]


def _decode_file(path, image_size, channels):
    """Decode one image file to uint8 (H, W, channels), resized (bilinear) when image_size is set."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - exercised only where PIL is missing
        Image = None
    if Image is not None:
        with Image.open(path) as im:
            im = im.convert("RGB" if channels == 3 else "L")
            if image_size is not None and im.size != (image_size[1], image_size[0]):
                im = im.resize((image_size[1], image_size[0]), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
        return arr if arr.ndim == 3 else arr[..., None]
    import tensorflow as tf  # pragma: no cover

    with open(path, "rb") as f:  # pragma: no cover
        img = tf.io.decode_image(f.read(), channels=channels, expand_animations=False)
    if image_size is not None:  # pragma: no cover
        img = tf.cast(tf.round(tf.image.resize(img, image_size)), tf.uint8)
    return img.numpy()  # pragma: no cover


class FolderSource(Source):
    """An image folder with one sub-folder per class (`root/<class_name>/<file>.png`).

    Classes are the sub-folders in sorted order; files are sorted within each class. Labels come
    from folder names only: no image is opened until `images` is called. Images are decoded with
    PIL (TensorFlow when PIL is missing) to RGB (`color_mode="rgb"`) or one channel
    (`"grayscale"`); `image_size=(H, W)` resizes bilinearly, otherwise all images must have the
    same size.

    Example:

    >>> import numpy as np, os, tempfile, keras
    >>> root = tempfile.mkdtemp()
    >>> for c in ("cat", "dog"):
    ...     os.makedirs(os.path.join(root, c))
    ...     img = np.zeros((4, 4, 3), "uint8")
    ...     keras.utils.save_img(os.path.join(root, c, "a.png"), img, scale=False)
    >>> src = FolderSource(root)
    >>> src.class_names, src.labels.tolist(), src.images([1]).shape
    (['cat', 'dog'], [0, 1], (1, 4, 4, 3))
    """

    def __init__(self, path, image_size=None, color_mode="rgb", extensions=IMAGE_EXTENSIONS):
        self.path = os.fspath(path)
        if not os.path.isdir(self.path):
            raise ValueError(f"`path` must be a directory with one sub-folder per class; got {path!r}")
        check_choice(color_mode, "color_mode", ("rgb", "grayscale"))
        image_size = check_image_size(image_size)
        self.image_size = image_size
        self.channels = 3 if color_mode == "rgb" else 1
        exts = tuple(e.lower() for e in extensions)
        names = sorted(
            d for d in os.listdir(self.path) if os.path.isdir(os.path.join(self.path, d)) and not d.startswith(".")
        )
        paths, labels = [], []
        for c, name in enumerate(names):
            files = sorted(
                f
                for f in os.listdir(os.path.join(self.path, name))
                if f.lower().endswith(exts) and not f.startswith(".")
            )
            paths += [os.path.join(self.path, name, f) for f in files]
            labels += [c] * len(files)
        if not paths:
            raise ValueError(f"`path` {path!r} holds no images with extensions {exts} in class sub-folders")
        self.paths = paths
        self.class_names = names
        self._labels, self.num_classes = check_labels(np.asarray(labels, np.int64), len(names))

    def _images(self, sorted_indices):
        return decode_into(
            lambda i: _decode_file(self.paths[i], self.image_size, self.channels),
            sorted_indices,
            self.image_size,
            self.channels,
            where=self.path,
        )


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
        check_choice(color_mode, "color_mode", ("rgb", "grayscale"))
        self.image_size = check_image_size(image_size)
        self.resize = check_choice(resize, "resize", RESIZES)
        self.channels = 3 if color_mode == "rgb" else 1
        rel, labels = read_split_file(self.split_file)
        self.relative_paths = rel
        self.paths = [os.path.join(self.root, p) for p in rel]
        self._labels, self.num_classes = check_labels(labels, num_classes)
        self.class_names = _names(class_names, self.num_classes)

    def _images(self, sorted_indices):
        return decode_into(
            lambda i: decode_image(self.paths[i], self.image_size, self.channels, self.resize),
            sorted_indices,
            self.image_size,
            self.channels,
            where=self.split_file,
        )


class TfdsSource(Source):
    """A TensorFlow Datasets split, read in file order (`shuffle_files=False`).

    Labels are read with `tfds.decode.PartialDecoding({label_key: True})`: only the label feature
    is parsed, images are neither decoded nor parsed. `images(indices)` streams the split once,
    keeps the requested positions (image bytes skipped with `SkipDecoding` until selected) and
    decodes only those. The dataset must already be prepared in `data_dir` unless
    `download=True`. `builder` is the TFDS builder; `read(decoders)` gives the split in file order.

    Example (needs the dataset prepared locally, so not run here):

    >>> src = TfdsSource("cifar10", "train", data_dir="~/tensorflow_datasets")  # doctest: +SKIP
    >>> src.num_classes, src.class_names[:2]  # doctest: +SKIP
    (10, ['airplane', 'automobile'])
    """

    def __init__(
        self,
        name,
        split="train",
        data_dir=None,
        image_key="image",
        label_key="label",
        download=False,
    ):
        import tensorflow_datasets as tfds

        self.name, self.split, self.data_dir = name, split, data_dir
        self.image_key, self.label_key = image_key, label_key
        self.builder = tfds.builder(name, data_dir=data_dir)
        if download:
            self.builder.download_and_prepare()
        features = self.builder.info.features
        for arg, key in (("image_key", image_key), ("label_key", label_key)):
            if key not in features:
                raise ValueError(f"`{arg}` {key!r} is not a feature of {name}; features: {list(features.keys())}")
        label_feature = features[label_key]
        self.num_classes = int(label_feature.num_classes)
        self.class_names = list(label_feature.names)
        self._labels = None

    def read(self, decoders):
        """The split as a `tf.data.Dataset` in file order, with the TFDS `decoders` given."""
        import tensorflow_datasets as tfds

        return self.builder.as_dataset(
            split=self.split,
            decoders=decoders,
            shuffle_files=False,
            read_config=tfds.ReadConfig(interleave_cycle_length=1),
        )

    @property
    def labels(self):
        if self._labels is None:
            import tensorflow_datasets as tfds

            ds = self.read(tfds.decode.PartialDecoding({self.label_key: True}))
            key = self.label_key
            ds = ds.map(lambda ex: ex[key]).batch(65536)
            parts = [np.asarray(b) for b in ds.as_numpy_iterator()]
            labels = np.concatenate(parts) if parts else np.zeros((0,), np.int64)
            self._labels, _ = check_labels(labels, self.num_classes)
        return self._labels

    def _images(self, sorted_indices):
        import tensorflow as tf
        import tensorflow_datasets as tfds

        if sorted_indices.size == 0:
            shape = self.builder.info.features[self.image_key].shape
            return np.zeros((0,) + tuple(s or 0 for s in shape), np.uint8)
        mask = np.zeros(len(self), bool)
        mask[sorted_indices] = True
        mask_t = tf.constant(mask)
        feature = self.builder.info.features[self.image_key]
        key = self.image_key
        ds = self.read({key: tfds.decode.SkipDecoding()}).enumerate()
        ds = ds.filter(lambda i, ex: tf.gather(mask_t, i))
        ds = ds.take(int(sorted_indices.size))
        ds = ds.map(lambda i, ex: feature.decode_example(ex[key]))
        out = np.stack(list(ds.as_numpy_iterator())).astype(np.uint8, copy=False)
        return out


def from_arrays(
    images: ArrayLike, labels: ArrayLike, class_names: list[str] | None = None, num_classes: int | None = None
) -> ArraySource:
    """`ArraySource(images, labels, class_names, num_classes)`.

    Example:

    >>> import numpy as np
    >>> from_arrays(np.zeros((2, 4, 4, 3), "uint8"), [0, 1]).num_classes
    2
    """
    return ArraySource(images, labels, class_names=class_names, num_classes=num_classes)


def from_npz(path, split="train", image_key=None, label_key=None, **kwargs):
    """`NpzSource(path, split, image_key, label_key, ...)`: keys default to `x_<split>`, `y_<split>`.

    Example:

    >>> import numpy as np, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "d.npz")
    >>> np.savez(p, x_test=np.zeros((2, 4, 4, 3), "uint8"), y_test=np.array([1, 0]))
    >>> len(from_npz(p, split="test"))
    2
    """
    return NpzSource(path, split=split, image_key=image_key, label_key=label_key, **kwargs)


def from_folder(path, image_size=None, **kwargs):
    """`FolderSource(path, image_size, ...)`: class sub-folders, labels from folder names.

    Example:

    >>> import tempfile
    >>> from_folder(tempfile.mkdtemp())  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: `path` ... holds no images
    """
    return FolderSource(path, image_size=image_size, **kwargs)


def from_split_file(root, split_file, image_size=None, **kwargs):
    """`SplitFileSource(root, split_file, image_size, ...)`: an ImageNet-LT-style image list.

    Example:

    >>> import os, tempfile
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "s.txt"); _ = open(p, "w").write("a.jpg 1\\n")
    >>> from_split_file(d, p).labels.tolist()
    [1]
    """
    return SplitFileSource(root, split_file, image_size=image_size, **kwargs)


def from_tfds(name, split="train", data_dir=None, **kwargs):
    """`TfdsSource(name, split, data_dir, ...)`: a prepared TFDS dataset, labels read alone.

    Example (needs the dataset prepared locally):

    >>> from_tfds("cifar10", "test", data_dir="/data/tfds").num_classes  # doctest: +SKIP
    10
    """
    return TfdsSource(name, split=split, data_dir=data_dir, **kwargs)


def load_source(spec, split="train", **kwargs):
    """Make a Source from a spec: a Source (returned as is), an `(images, labels)` pair, a path
    to a `.npz` file, a directory of class sub-folders, an ImageNet-LT-style split file (`.txt`,
    paths relative to `root=`, default the file's folder), or a TFDS name (optionally `"tfds:name"`).

    Example:

    >>> import numpy as np
    >>> load_source((np.zeros((2, 4, 4, 3), "uint8"), np.array([0, 1]))).num_classes
    2
    """
    if isinstance(spec, Source):
        return spec
    if isinstance(spec, tuple) and len(spec) == 2:
        return from_arrays(spec[0], spec[1], **kwargs)
    if isinstance(spec, (str, os.PathLike)):
        s = os.fspath(spec)
        if s.startswith("tfds:"):
            return from_tfds(s[5:], split=split, **kwargs)
        if s.lower().endswith(".npz"):
            return from_npz(s, split=split, **kwargs)
        if s.lower().endswith(".txt") and os.path.isfile(s):
            kwargs.setdefault("root", os.path.dirname(os.path.abspath(s)))
            return from_split_file(kwargs.pop("root"), s, **kwargs)
        if os.path.isdir(s):
            return from_folder(s, **kwargs)
        if os.sep not in s and not os.path.exists(s):
            return from_tfds(s, split=split, **kwargs)
    raise ValueError(
        "`spec` must be a Source, an (images, labels) pair, a .npz path, an image folder, a .txt split file "
        f"or a TFDS name; got {spec!r}"
    )
