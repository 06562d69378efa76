"""Per-example colour jitter with torchvision's formulas, factor ranges and per-image random order."""

import keras
import numpy as np
from keras import ops

from keras_ssl_lt._checks import check_bool, check_non_negative, check_number, check_probability
from keras_ssl_lt.augment.base import AugmentLayer
from keras_ssl_lt.augment.ops import adjust_hue, grayscale, require_rgb, to_float01

__all__ = ["RandomColorJitter"]


def _blend_stage(y, which, active, factors):
    """One brightness/contrast/saturation step per example: op `which` (0, 1, 2) where `active`.

    The three are blends `clip(f * y + (1 - f) * target)` with target 0, the mean gray level, or
    the gray image; an inactive example gets f = 1, which leaves [0, 1] values unchanged.
    """
    f = ops.take_along_axis(factors, which[:, None], axis=1)[:, 0]
    f = ops.where(active, f, 1.0)[:, None, None, None]
    gray = grayscale(y)
    mean = ops.mean(gray, axis=(1, 2, 3), keepdims=True)
    w = which[:, None, None, None]
    target = ops.where(w == 0, 0.0, ops.where(w == 1, mean, gray))
    return ops.clip(f * y + (1.0 - f) * target, 0.0, 1.0)


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class RandomColorJitter(AugmentLayer):
    """Per-example colour jitter (torchvision's `ColorJitter`), applied to each example with probability `p`.

    Factors, drawn per example: brightness, contrast and saturation uniform in `[max(0, 1 - s), 1 + s]`,
    hue shift uniform in `[-hue, hue]` (hue <= 0.5). Brightness scales the image, contrast blends it with
    its mean gray level, saturation with its gray image, hue rotates it in HSV; results are clipped to
    [0, 1] after each step. With `random_order` the four steps run in a random order drawn per example
    (torchvision draws it per image), otherwise brightness, contrast, saturation, hue.
    Inputs are RGB in [0, 1] (integer inputs are divided by 255).

    Why not `keras.layers.RandomColorJitter`: it has no application probability, applies its steps in a
    fixed order, and its brightness adds an offset instead of scaling, so it is not the SimSiam / SimCLR /
    MoCo augmentation the paper used. The random stream is the one its tests replay: four `(B,)` factor
    vectors (brightness, contrast, saturation, hue), one `(B,)` uniform for the probability, one `(B, 4)`
    uniform whose argsort is the order.

    Example:

    >>> import numpy as np
    >>> layer = RandomColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8, seed=0)
    >>> tuple(layer(np.random.rand(2, 32, 32, 3).astype("float32"), training=True).shape)
    (2, 32, 32, 3)
    """

    def __init__(
        self, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, p=0.8, random_order=True, seed=None, **kwargs
    ):
        super().__init__(seed=seed, **kwargs)
        self.brightness = check_non_negative(brightness, "brightness")
        self.contrast = check_non_negative(contrast, "contrast")
        self.saturation = check_non_negative(saturation, "saturation")
        self.hue = check_number(hue, "hue", 0.0, 0.5)
        self.p = check_probability(p, "p")
        self.random_order = check_bool(random_order, "random_order")

    @property
    def is_identity(self):
        """True when the layer never changes an image (p = 0 or all strengths 0)."""
        return self.p == 0 or not any((self.brightness, self.contrast, self.saturation, self.hue))

    def _jitter(self, x):
        sg = self.seed_generator
        batch = ops.shape(x)[0]
        b, c, s, h = self.brightness, self.contrast, self.saturation, self.hue
        ranges = ((max(0.0, 1.0 - b), 1.0 + b), (max(0.0, 1.0 - c), 1.0 + c), (max(0.0, 1.0 - s), 1.0 + s), (-h, h))
        # A factor is drawn for every op (as torchvision does), so the random stream does not depend
        # on which strengths are zero; ops with strength 0 are then skipped.
        factors = [keras.random.uniform((batch,), lo, hi, seed=sg) for lo, hi in ranges]
        apply = keras.random.uniform((batch,), seed=sg) < self.p
        order_keys = keras.random.uniform((batch, 4), seed=sg)
        enabled = [i for i, (lo, hi) in enumerate(ranges) if hi > lo]  # 0..2 blends, 3 hue
        blend_factors = ops.stack(factors[:3], axis=1)  # (B, 3)
        ones = ops.ones((batch,), dtype="bool")
        y = x
        if not self.random_order:
            for i in enabled:
                if i == 3:
                    y = adjust_hue(y, factors[3])
                else:
                    y = _blend_stage(y, ops.full((batch,), i, dtype="int32"), ones, blend_factors)
            return ops.where(apply[:, None, None, None], y, x)
        # A random permutation of the enabled ops per example, as op ids.
        n = len(enabled)
        ids = ops.convert_to_tensor(np.array(enabled, "int32"))
        perm = ops.take(ids, ops.argsort(order_keys[:, :n], axis=1))  # (B, n)
        if 3 not in enabled:
            for t in range(n):
                y = _blend_stage(y, perm[:, t], ones, blend_factors)
            return ops.where(apply[:, None, None, None], y, x)
        # Hue is the costly op: run the blends that come before it, hue once, then the blends after
        # it (each example has its own split point), instead of every op at every position.
        pos = ops.sum(ops.where(perm == 3, ops.arange(n, dtype="int32")[None, :], 0), axis=1)  # (B,)
        for j in range(n - 1):  # j-th op before the hue
            which = ops.minimum(perm[:, j], 2)
            y = _blend_stage(y, which, j < pos, blend_factors)
        y = adjust_hue(y, factors[3])
        for j in range(n - 1):  # j-th op after the hue
            idx = ops.minimum(pos + 1 + j, n - 1)
            which = ops.minimum(ops.take_along_axis(perm, idx[:, None], axis=1)[:, 0], 2)
            y = _blend_stage(y, which, pos + 1 + j < n, blend_factors)
        return ops.where(apply[:, None, None, None], y, x)

    def call(self, inputs, training=False):
        x = require_rgb(to_float01(inputs))
        if training and not self.is_identity:
            x = self._jitter(x)
        return self.output_cast(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            brightness=self.brightness,
            contrast=self.contrast,
            saturation=self.saturation,
            hue=self.hue,
            p=self.p,
            random_order=self.random_order,
        )
        return config
