"""Feature extraction from a (pre-)trained model, shared by the evaluation and re-weighting code."""

from __future__ import annotations

import weakref

import keras
import numpy as np
from numpy.typing import ArrayLike

__all__ = ["extract_features", "feature_model"]

# model -> (encoder, augmenter, feature model). Weak keys: an entry goes away with its model. The
# entry is reused only while `model.encoder` and `model.augmenter` are the very objects it was built
# from, so replacing either gives a fresh feature model (and fresh features).
_CACHE = weakref.WeakKeyDictionary()


def _parts(model):
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        encoder = model
    return encoder, getattr(model, "augmenter", None)


def feature_model(model):
    """Return a Keras model that maps raw images to encoder features in inference mode.

    `model` is a pre-trainer (anything with an `encoder` attribute, optionally an `augmenter`
    whose inference mode is the deterministic preprocessing: resize/centre-crop and normalise) or
    a plain encoder. The result shares weights with `model`:

    * without an augmenter, it is the encoder itself when that is a `keras.Model` (Keras keeps its
      compiled predict function), otherwise a `keras.Sequential` wrapping it;
    * with an augmenter, a `keras.Sequential([augmenter, encoder])`, remembered for `model` so that
      repeated calls (one per epoch in a callback) compile once. It is rebuilt whenever
      `model.encoder` or `model.augmenter` is replaced by another object.

    Example:

    >>> import keras
    >>> enc = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(4)])
    >>> tuple(feature_model(enc)(keras.ops.ones((2, 8, 8, 3))).shape)
    (2, 4)
    """
    encoder, augmenter = _parts(model)
    if augmenter is None:
        if isinstance(encoder, keras.Model):
            return encoder
        return keras.Sequential([encoder], name="feature_model")
    try:
        cached = _CACHE.get(model)
    except TypeError:  # an object that cannot be weakly referenced: no cache
        cached = None
    if cached is not None and cached[0] is encoder and cached[1] is augmenter:
        return cached[2]
    fm = keras.Sequential([augmenter, encoder], name="feature_model")
    try:
        _CACHE[model] = (encoder, augmenter, fm)
    except TypeError:
        pass
    return fm


def extract_features(model: keras.Model, images: ArrayLike, batch_size: int = 512, verbose: int = 0) -> np.ndarray:
    """Encoder features of `images` as a float32 numpy array of shape `(N, D)`.

    Args:
        model: a pre-trainer with an `encoder` (and optional `augmenter`) or a plain encoder model.
        images: an array `(N, H, W, C)`, uint8 (raw pixels, preprocessed by the model's augmenter in
            inference mode) or float (fed to the encoder as is when the model has no augmenter).
        batch_size: images per forward pass.
        verbose: passed to `predict`.

    BatchNorm runs in inference mode and no weight or statistic of `model` changes. The features
    are returned as computed (the evaluation functions reject NaN or inf rows themselves).

    Example:

    >>> import numpy as np, keras
    >>> enc = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(4)])
    >>> extract_features(enc, np.zeros((3, 8, 8, 3), "float32")).shape
    (3, 4)
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"`images` must be a batch of shape (N, H, W, C); got shape {images.shape}")
    if len(images) == 0:
        raise ValueError("`images` is empty: at least one image is needed to extract features")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer; got {batch_size!r}")
    fm = feature_model(model)
    feats = fm.predict(images, batch_size=int(batch_size), verbose=verbose)
    feats = np.asarray(feats, dtype="float32")
    if feats.ndim != 2:
        raise ValueError(
            "the encoder must output flat features of shape (batch, dim); got shape "
            f"{feats.shape}. Add a global pooling or Flatten layer at the end of the encoder."
        )
    return feats
