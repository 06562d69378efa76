"""The base of this package's random augmentation layers: a tracked seed generator, float32 maths."""

import keras
from keras import ops

from keras_ssl_lt._checks import check_seed

__all__ = ["AugmentLayer"]


class AugmentLayer(keras.layers.Layer):
    """Base of the per-example augmentation layers: owns `seed_generator`, computes in float32.

    The `keras.random.SeedGenerator` is an attribute, so its state is a non-trainable variable of any
    model holding the layer: a JAX train step (`stateless_call`) threads it, and every step draws new
    values. Inputs are not autocast (uint8 stays exact until `to_float01`); `output` casts the result
    to the layer's compute dtype (bfloat16 under `mixed_bfloat16`). The layer has no shape-dependent
    weights, so it is built at construction and can be used in `stateless_call` before any eager call.

    Subclasses implement `call(inputs, training=False)` and `get_config`.

    Example:

    >>> import numpy as np
    >>> class Noise(AugmentLayer):
    ...     def call(self, inputs, training=False):
    ...         x = keras.ops.convert_to_tensor(inputs, "float32")
    ...         if training:
    ...             x = x + keras.random.normal(keras.ops.shape(x), seed=self.seed_generator)
    ...         return self.output_cast(x)
    >>> tuple(Noise(seed=0)(np.zeros((2, 3), "float32"), training=True).shape)
    (2, 3)
    """

    def __init__(self, seed=None, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.built = True

    def output_cast(self, x):
        """Cast a float32 result to the layer's compute dtype."""
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config
