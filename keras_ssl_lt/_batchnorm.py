"""Finding the `BatchNormalization` layers of a model with public Keras APIs (one walker for the package)."""

import keras

_MOVING_STATISTICS = ("moving_mean", "moving_variance")


def batchnorm_layers(layer):
    """Every `BatchNormalization` layer inside `layer`, reached through `keras.Model.layers`.

    Nested layers are reached through `keras.Model.layers` (subclassed, functional and Sequential models).
    A plain `keras.layers.Layer` exposes no public list of its sub-layers, so a BatchNormalization hidden
    inside one cannot be found: that raises a ValueError instead of being skipped silently (SAM would
    update its statistics twice per step, `synchronize_batchnorm` would leave it per replica).

    Example:

    >>> import keras
    >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()])
    >>> [type(layer).__name__ for layer in batchnorm_layers(m)]
    ['BatchNormalization']
    """
    out, seen, stack = [], set(), [layer]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, keras.layers.BatchNormalization):
            out.append(current)
        elif isinstance(current, keras.Model):
            stack.extend(reversed(current.layers))
        elif any(v.name in _MOVING_STATISTICS for v in current.non_trainable_variables):
            raise ValueError(
                f"the layer {current.name!r} ({type(current).__name__}) holds BatchNormalization statistics that "
                "cannot be reached through public Keras APIs (`keras.Model.layers`); build it as a keras.Model "
                "(functional or subclassed), or, for SAM, compile with `SAM(..., bn_update='both')`"
            )
    return out
