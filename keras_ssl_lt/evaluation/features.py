"""Feature extraction from a (pre-)trained model, shared by the evaluation and re-weighting code."""

import numpy as np
import keras

__all__ = ["extract_features", "feature_model"]


def feature_model(model):
    """Return a `keras.Sequential` that maps raw images to encoder features in inference mode.

    `model` is a pre-trainer (anything with an `encoder` attribute, optionally an `augmenter`
    whose inference mode is the deterministic preprocessing: resize/centre-crop and normalise) or
    a plain encoder. The result shares weights with `model` and is cached on it, so repeated calls
    (one per epoch in a callback) compile once.

    Example:

    >>> import keras
    >>> enc = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(4)])
    >>> feature_model(enc)(keras.ops.ones((2, 8, 8, 3))).shape
    (2, 4)
    """
    cached = getattr(model, "_ksl_feature_model", None)
    if cached is not None:
        return cached
    encoder = getattr(model, "encoder", None) or model
    augmenter = getattr(model, "augmenter", None)
    layers = ([augmenter] if augmenter is not None else []) + [encoder]
    fm = keras.Sequential(layers, name="feature_model")
    try:
        object.__setattr__(model, "_ksl_feature_model", fm)
    except Exception:  # pragma: no cover - objects that refuse attributes just skip the cache
        pass
    return fm


def extract_features(model, images, batch_size=512, verbose=0):
    """Encoder features of `images` as a float32 numpy array of shape `(N, D)`.

    Args:
        model: a pre-trainer with an `encoder` (and optional `augmenter`) or a plain encoder model.
        images: an array `(N, H, W, C)`, uint8 (raw pixels, preprocessed by the model's augmenter in
            inference mode) or float (fed to the encoder as is when the model has no augmenter).
        batch_size: images per forward pass.

    BatchNorm runs in inference mode and no weight or statistic of `model` changes.

    Example:

    >>> import numpy as np, keras
    >>> enc = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(4)])
    >>> extract_features(enc, np.zeros((3, 8, 8, 3), "float32")).shape
    (3, 4)
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            f"`images` must be a batch of shape (N, H, W, C); got shape {images.shape}"
        )
    if len(images) == 0:
        raise ValueError("`images` is empty: at least one image is needed to extract features")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer; got {batch_size!r}")
    fm = feature_model(model)
    feats = fm.predict(images, batch_size=batch_size, verbose=verbose)
    feats = np.asarray(feats, dtype="float32")
    if feats.ndim != 2:
        raise ValueError(
            "the encoder must output flat features of shape (batch, dim); got shape "
            f"{feats.shape}. Add a global pooling or Flatten layer at the end of the encoder."
        )
    return feats
