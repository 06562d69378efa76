"""rwSAM in one place: the sharpness-aware regularisers, the example weights and the callback that refreshes them.

- `sharpness`: `SAM` (and ASAM with `adaptive=True`) and `RWSAM`, passed to a pre-trainer's
  `compile(sharpness=...)`; each owns its step (`SAM.gradients`).
- `step`: that two-pass step (ascent, gradient at `w + eps`, restore), written once with `keras.ops`; the
  pre-trainer lends it the per-backend gradient mechanics of `keras_ssl_lt.training` (`StepHooks`).
- `weights`: per-example weights for rwSAM's ascent step (class rank, inverse frequency, inverse
  Gaussian kernel density of the representations); `kde`: the kernel density estimate behind the last.
- `callback`: `KDEReweighting`, which recomputes the kernel-density weights from the encoder during `fit`.

Example:

>>> import numpy as np
>>> from keras_ssl_lt import rwsam
>>> w = rwsam.class_rank_weights(np.repeat([0, 1, 2], [6, 3, 1]), base=1.2)
>>> reg = rwsam.RWSAM(rho=7.0, adaptive=True, weights=w)
>>> reg.name, w.shape
('rwasam', (10,))
"""

from keras_ssl_lt.rwsam import callback, kde, sharpness, step, weights
from keras_ssl_lt.rwsam.callback import KDEReweighting
from keras_ssl_lt.rwsam.sharpness import RWSAM, SAM, perturbation
from keras_ssl_lt.rwsam.weights import (
    class_rank_weights,
    inverse_frequency_weights,
    kde_bandwidth,
    kde_density,
    kde_weights,
    normalize_clip,
)

__all__ = [
    "RWSAM",
    "SAM",
    "KDEReweighting",
    "callback",
    "class_rank_weights",
    "inverse_frequency_weights",
    "kde",
    "kde_bandwidth",
    "kde_density",
    "kde_weights",
    "normalize_clip",
    "perturbation",
    "sharpness",
    "step",
    "weights",
]
