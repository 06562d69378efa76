"""Decoding image files on the host: PIL (`decode_image`) or tf ops (`tf_decode`), with one resize geometry.

`resize="stretch"` resizes bilinearly to `image_size`; `"center_crop"` resizes so that the image covers
`image_size` (aspect ratio kept), then crops the centre. `decode_into` decodes many images into one
preallocated array. TensorFlow is imported only by the tf helpers.
"""

import math

import numpy as np

from keras_ssl_lt._checks import check_choice

__all__ = ["RESIZES", "check_image_size", "decode_image", "decode_into", "tf_decode", "tf_decode_file"]

RESIZES = ("stretch", "center_crop")


def check_image_size(image_size):
    """None, or an int / `(height, width)` of positive ints, as a `(height, width)` tuple.

    Example:

    >>> check_image_size(8), check_image_size((4, 6)), check_image_size(None)
    ((8, 8), (4, 6), None)
    """
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


def _resized_shape(h, w, size):
    """The (height, width) to resize to before a center crop of `size`: the image covers `size`."""
    H, W = size
    scale = max(H / h, W / w)
    return max(H, math.floor(h * scale + 0.5)), max(W, math.floor(w * scale + 0.5))


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

    size = check_image_size(image_size)
    check_choice(resize, "resize", RESIZES)
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


def decode_into(decode, indices, image_size, channels, where):
    """Decode `indices` one by one (`decode(i)`) into one preallocated uint8 array (peak memory: the array).

    Images of different sizes raise ValueError naming `where` (unless `image_size` resized them).

    Example:

    >>> decode_into(lambda i: np.full((2, 2, 3), i, "uint8"), [3, 5], None, 3, "demo")[:, 0, 0, 0].tolist()
    [3, 5]
    """
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


def tf_decode(data, image_size, channels, resize, tf):
    """Decode encoded image bytes to uint8 `(H, W, channels)` with tf ops, resized like `decode_image`.

    Example:

    >>> import tensorflow as tf
    >>> png = tf.io.encode_png(tf.zeros((6, 9, 3), tf.uint8))
    >>> tuple(tf_decode(png, (4, 4), 3, "center_crop", tf).shape)
    (4, 4, 3)
    """
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


def tf_decode_file(path, image_size, channels, resize):
    """`tf_decode` of one file, eagerly, as a numpy array (the numpy streaming path with `decoder="tf"`).

    Example:

    >>> import os, tempfile
    >>> from PIL import Image
    >>> p = os.path.join(tempfile.mkdtemp(), "a.png")
    >>> Image.fromarray(np.zeros((6, 9, 3), "uint8")).save(p)
    >>> tf_decode_file(p, (4, 4), 3, "stretch").shape
    (4, 4, 3)
    """
    import tensorflow as tf

    return tf_decode(tf.io.read_file(path), image_size, channels, resize, tf).numpy()
