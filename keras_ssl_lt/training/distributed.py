"""Data-parallel training on the engines the Keras backends bring (see docs/scaling.md).

The pre-trainers need no code of their own to scale out: build and `fit` them under

- JAX: `keras.distribution.DataParallel` (`keras.distribution.set_distribution(...)` or `with dp.scope():`).
  Keras jits the step as one global program over the sharded batch, so every reduction in it (the mean
  loss, its gradient, the SAM perturbation's norm, BatchNorm's batch moments, SimCLR's negatives, MoCo's
  keys) already covers the global batch;
- TensorFlow: a `tf.distribute` strategy (`with tf.distribute.MirroredStrategy().scope():`). Each replica
  runs the step on its slice of the batch; `keras_ssl_lt.training.tensorflow` scales the loss by the
  number of replicas, all-reduces the first-pass gradient before the SAM / ASAM / rwSAM perturbation
  (so its norm is global), and gathers across replicas what must be global (MoCo's enqueued keys,
  SimCLR's negatives with `global_negatives=True`). BatchNorm statistics are per replica unless the
  layers are synchronised (`synchronize_batchnorm`);
- PyTorch: Keras 3 offers no data-parallel `fit` on its torch backend (`keras.distribution` is
  implemented for JAX only); `fit` runs on one device.

This module holds the two public helpers; the per-backend mechanics are in the backend modules.
"""

import keras

from keras_ssl_lt._batchnorm import batchnorm_layers

__all__ = ["num_replicas", "synchronize_batchnorm"]


def num_replicas(model=None):
    """The number of data-parallel replicas a step of `model` (or of a model built now) runs on.

    JAX: the size of the batch axis of the active `keras.distribution` (1 without one); TensorFlow: the
    `num_replicas_in_sync` of the model's `tf.distribute` strategy (the current one when `model` is
    None); PyTorch: 1.

    Example:

    >>> num_replicas()
    1
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
        return int(strategy.num_replicas_in_sync)
    if backend == "jax":
        distribution = keras.distribution.distribution()
        if distribution is None:
            return 1
        mesh = distribution.device_mesh
        name = getattr(distribution, "batch_dim_name", None)
        if name is None or name not in mesh.axis_names:
            return 1
        return int(mesh.shape[list(mesh.axis_names).index(name)])
    return 1


def synchronize_batchnorm(model, synchronized=True):
    """Makes every `BatchNormalization` in `model` compute its batch moments over all replicas (or not).

    With `synchronized=True` each BatchNorm layer reachable through `keras.Model.layers` (the encoder, the
    heads, MoCo's key and BYOL's target networks) normalises with the mean and variance of the global
    batch, as PyTorch's `SyncBatchNorm` does, and the moving statistics stay identical on all replicas.

    - TensorFlow: sets the layers' `synchronized` attribute (Keras all-reduces the moments under a
      `tf.distribute` strategy; without one it changes nothing). The attribute is saved in the layers'
      configs, and Keras refuses `synchronized=True` when loading on another backend: call
      `synchronize_batchnorm(model, False)` before saving a model meant for JAX or PyTorch.
    - JAX: nothing to change. Under `keras.distribution.DataParallel` the step is one global program, so
      BatchNorm already sees the global batch (synchronised) whether or not this is called.
    - PyTorch: nothing to change (one device; Keras has no data-parallel torch `fit`).

    Returns the BatchNorm layers found. A BatchNormalization hidden inside a plain `keras.layers.Layer`
    (not reachable through `keras.Model.layers`) raises a ValueError rather than staying per replica.

    Example:

    >>> import keras
    >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()])
    >>> len(synchronize_batchnorm(m))
    1
    """
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(f"`model` must be a keras Model or Layer; got {type(model).__name__}")
    if not isinstance(synchronized, bool):
        raise ValueError(f"`synchronized` must be True or False; got {synchronized!r}")
    layers = batchnorm_layers(model)
    if keras.backend.backend() == "tensorflow":
        for layer in layers:
            layer.synchronized = synchronized
    return layers
