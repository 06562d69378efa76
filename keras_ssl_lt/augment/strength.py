"""`StrengthRandAugment`: RandAugment whose probability and magnitude follow a per-example strength in [0, 1]."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from keras_ssl_lt._checks import check_bool, check_number, check_positive_int
from keras_ssl_lt.augment import pil_ops
from keras_ssl_lt.augment.base import AugmentLayer
from keras_ssl_lt.augment.ops import require_rgb, to_float01

__all__ = ["RANDAUGMENT_OPS", "StrengthRandAugment"]

# BCL's RandAugment list (data/randaug.py `augment_list`, in its order) with each operation's value range:
# a magnitude m in [0, 30] gives the value `m / 30 * (high - low) + low`.
RANDAUGMENT_OPS = {
    "shear_x": (0.0, 0.6),
    "shear_y": (0.0, 0.6),
    "translate_x": (0.0, 0.66),  # fraction of the width
    "translate_y": (0.0, 0.66),  # fraction of the height
    "rotate": (0.0, 60.0),  # degrees
    "auto_contrast": (0.0, 1.0),
    "invert": (0.0, 1.0),
    "equalize": (0.0, 1.0),
    "solarize": (0.0, 110.0),  # threshold in grey levels
    "posterize": (4.0, 8.0),  # bits kept
    "contrast": (0.1, 1.9),
    "color": (0.1, 1.9),
    "brightness": (0.1, 1.9),
    "sharpness": (0.1, 1.9),
    "cutout": (0.0, 0.4),  # side as a fraction of the width
}
_GEOMETRIC = ("shear_x", "shear_y", "translate_x", "translate_y", "rotate")
_MAX_MAGNITUDE = 30.0


def _check_ops(names):
    known = tuple(RANDAUGMENT_OPS)
    if isinstance(names, str) or not isinstance(names, (tuple, list)) or not names:
        raise ValueError(f"`ops` must be a non-empty list of names from {known}; got {names!r}")
    bad = [n for n in names if n not in RANDAUGMENT_OPS]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"`ops` must be distinct names from {known}; got {list(names)!r}")
    return tuple(names)


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class StrengthRandAugment(AugmentLayer):
    """RandAugment with a per-example strength `s` in [0, 1]: BCL's memorisation-boosted augmentation.

    `layer(images, strength, training=True)`: for each example, `num_ops` times, an operation is drawn
    uniformly from `ops` (with replacement) and applied with probability `s`, at magnitude
    `m = min_magnitude + (max_magnitude - min_magnitude) * s` (times a uniform `u` in [0, 1) drawn once per
    example and call when `magnitude_jitter`), on RandAugment's 0..30 scale: each operation's value is
    `m / 30 * (high - low) + low` of its range in `RANDAUGMENT_OPS`; shears, translations and rotations
    take a random sign. So `s = 0` returns the images unchanged, and a larger `s` applies more and stronger
    operations. This is `RandAugment_prob(k, m, p=s)` of BCL's released code (MediaBrain-SJTU/BCL,
    `data/randaug.py` and `data/memoboosted_cifar100.py`): BCL-I uses `num_ops=1, min_magnitude=10`,
    BCL-D `num_ops=2, min_magnitude=5, magnitude_jitter=True`, both `max_magnitude=30`. The operations
    are PIL's, computed per example with `keras.ops` (`keras_ssl_lt.augment.pil_ops`).

    Images are RGB in [0, 1] (integer inputs are divided by 255); `strength` is `(B,)`. In inference mode
    (`training=False`) or with `strength=None` the layer returns its input (as float). Random draws per
    call: `u` `(B,)` (only with `magnitude_jitter`), then per round operation `(B,)`, coin `(B,)`, sign `(B,)`,
    cutout centre `(B, 2)` (x, y).

    Args:
        num_ops: operations drawn per image (RandAugment's `n`, BCL's `rand_k`).
        min_magnitude, max_magnitude: the magnitude at strength 0 and 1, in [0, 30].
        magnitude_jitter: scale `s` by a uniform draw in the magnitude (BCL-D's rule).
        ops: names of the operations to draw from (default: all 15 of BCL's list).
        seed: seed of the layer's generator.

    Example:

    >>> import numpy as np
    >>> layer = StrengthRandAugment(ops=["invert", "solarize"], seed=0)  # two of the 15 operations: a quick example
    >>> x = np.random.rand(2, 8, 8, 3).astype("float32")
    >>> y = layer(x, np.array([0.0, 1.0], "float32"), training=True)
    >>> bool(np.array_equal(np.asarray(y)[0], x[0]))
    True
    """

    def __init__(
        self,
        num_ops: int = 1,
        min_magnitude: float = 10.0,
        max_magnitude: float = 30.0,
        magnitude_jitter: bool = False,
        ops: tuple[str, ...] | list[str] | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        self.num_ops = check_positive_int(num_ops, "num_ops")
        self.min_magnitude = check_number(min_magnitude, "min_magnitude", 0.0, _MAX_MAGNITUDE)
        self.max_magnitude = check_number(max_magnitude, "max_magnitude", 0.0, _MAX_MAGNITUDE)
        if self.max_magnitude < self.min_magnitude:
            raise ValueError(
                f"`max_magnitude` must be >= `min_magnitude` ({self.min_magnitude}); got {self.max_magnitude}"
            )
        self.magnitude_jitter = check_bool(magnitude_jitter, "magnitude_jitter")
        self.ops = _check_ops(tuple(RANDAUGMENT_OPS) if ops is None else ops)

    def magnitude(self, strength, jitter=None):
        """The RandAugment magnitude (0..30) of each example for `strength` `(B,)` (and BCL-D's uniform `jitter`).

        >>> np.asarray(StrengthRandAugment().magnitude(np.array([0.0, 0.5, 1.0]))).tolist()
        [10.0, 20.0, 30.0]
        """
        s = ops.cast(ops.convert_to_tensor(strength), "float32")
        if jitter is not None:
            s = s * ops.cast(jitter, "float32")
        return self.min_magnitude + (self.max_magnitude - self.min_magnitude) * s

    def apply_op(self, x, name, magnitude, sign, centre):
        """Operation `name` on float images `x` at per-example `magnitude` (0..30), `sign` (+-1) and cutout `centre`."""
        if name in _GEOMETRIC:
            return pil_ops.affine_nearest(x, self._matrix(name, magnitude, sign, x))
        low, high = RANDAUGMENT_OPS[name]
        v = magnitude / _MAX_MAGNITUDE * (high - low) + low
        if name == "auto_contrast":
            return pil_ops.auto_contrast(x)
        if name == "invert":
            return pil_ops.invert(x)
        if name == "equalize":
            return pil_ops.equalize(x)
        if name == "solarize":
            return pil_ops.solarize(x, v)
        if name == "posterize":
            return pil_ops.posterize(x, ops.maximum(ops.floor(v), 1.0))
        if name == "cutout":
            return pil_ops.cutout(x, v * x.shape[2], centre)
        enhance = {
            "contrast": pil_ops.enhance_contrast,
            "color": pil_ops.enhance_color,
            "brightness": pil_ops.enhance_brightness,
            "sharpness": pil_ops.enhance_sharpness,
        }[name]
        return enhance(x, v)

    def _round(self, x, strength, magnitude):
        sg = self.seed_generator
        batch = ops.shape(x)[0]
        n = len(self.ops)
        which = ops.minimum(ops.floor(keras.random.uniform((batch,), seed=sg) * n), n - 1)
        apply = keras.random.uniform((batch,), seed=sg) < strength
        sign = ops.where(keras.random.uniform((batch,), seed=sg) > 0.5, -1.0, 1.0)
        size = np.array([x.shape[2], x.shape[1]], "float32")
        centre = keras.random.uniform((batch, 2), seed=sg) * size
        # Geometric operations share one resampling: each example's matrix, identity for the others.
        geometric = [i for i, name in enumerate(self.ops) if name in _GEOMETRIC]
        y = x
        if geometric:
            identity = ops.convert_to_tensor(np.array([[1, 0, 0, 0, 1, 0]], "float32"))
            matrix = ops.tile(identity, [batch, 1])
            for i in geometric:
                m = self._matrix(self.ops[i], magnitude, sign, x)
                matrix = ops.where((which == i)[:, None], m, matrix)
            y = pil_ops.affine_nearest(x, matrix)
        for i, name in enumerate(self.ops):
            if name not in _GEOMETRIC:
                y = ops.where((which == i)[:, None, None, None], self.apply_op(x, name, magnitude, sign, centre), y)
        return ops.where(apply[:, None, None, None], y, x)

    def _matrix(self, name, magnitude, sign, x):
        low, high = RANDAUGMENT_OPS[name]
        v = (magnitude / _MAX_MAGNITUDE * (high - low) + low) * sign
        h, w = x.shape[1], x.shape[2]
        zero = ops.zeros_like(v)
        if name == "rotate":
            return pil_ops.rotate_matrix(v, h, w)
        if name == "translate_x":
            return pil_ops.translate_matrix(v * w, zero)
        if name == "translate_y":
            return pil_ops.translate_matrix(zero, v * h)
        return pil_ops.shear_matrix(v, "x" if name == "shear_x" else "y")

    def call(self, inputs, strength=None, training=False):
        x = require_rgb(to_float01(inputs))
        if not training or strength is None:
            return self.output_cast(x)
        batch = ops.shape(x)[0]
        s = ops.cast(ops.convert_to_tensor(strength), "float32")
        if len(s.shape) != 1 or (s.shape[0] is not None and x.shape[0] is not None and s.shape[0] != x.shape[0]):
            raise ValueError(f"`strength` must have shape (batch,) = ({x.shape[0]},); got {tuple(s.shape)}")
        jitter = keras.random.uniform((batch,), seed=self.seed_generator) if self.magnitude_jitter else None
        magnitude = self.magnitude(s, jitter)
        for _ in range(self.num_ops):
            x = self._round(x, s, magnitude)
        return self.output_cast(x)

    def options(self) -> dict:
        """The RandAugment arguments (`num_ops`, `min_magnitude`, `max_magnitude`, `magnitude_jitter`, `ops`).

        The layer's config without the seed and the Keras layer fields; `BoostedViewAugmenter` saves these too.

        >>> StrengthRandAugment(ops=["invert"]).options()["ops"]
        ['invert']
        """
        return dict(
            num_ops=self.num_ops,
            min_magnitude=self.min_magnitude,
            max_magnitude=self.max_magnitude,
            magnitude_jitter=self.magnitude_jitter,
            ops=list(self.ops),
        )

    def get_config(self):
        config = super().get_config()
        config.update(self.options())
        return config
