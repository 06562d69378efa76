"""MLP heads (projectors and predictors) and momentum-copy helpers shared by the methods."""

import keras
from keras import layers, ops

from keras_ssl_lt._checks import check_choice, check_positive_int
from keras_ssl_lt.backbones import torch_default_conv  # nn.Linear's kernel default is nn.Conv2d's

__all__ = ["HEAD_INITS", "dense_initializers", "frozen_copy", "mlp_head", "momentum_update"]

HEAD_INITS = ("keras", "torch")


def check_head_init(init):
    return check_choice(init, "head_init", HEAD_INITS)


def dense_initializers(fan_in, init="keras"):
    """`(kernel_initializer, bias_initializer)` of a Dense layer with `fan_in` inputs under convention `init`.

    - `"keras"`: Keras' defaults, Glorot-uniform kernel and zero bias;
    - `"torch"`: `torch.nn.Linear`'s defaults, kernel and bias uniform in `+-1/sqrt(fan_in)` (the kernel is
      `kaiming_uniform_(a=sqrt(5))`, i.e. `VarianceScaling(1/3, "fan_in", "uniform")`).

    Example:

    >>> k, b = dense_initializers(4, "torch")
    >>> type(k).__name__, b.get_config()["maxval"]
    ('VarianceScaling', 0.5)
    """
    check_head_init(init)
    if init == "keras":
        return keras.initializers.GlorotUniform(), keras.initializers.Zeros()
    bound = 1.0 / float(fan_in) ** 0.5
    return torch_default_conv(), keras.initializers.RandomUniform(-bound, bound)


def mlp_head(
    input_dim,
    hidden_dims,
    output_dim,
    batch_norm=True,
    last_batch_norm=False,
    last_affine=True,
    name=None,
    init="keras",
):
    """A built functional MLP head: `[Dense -> BN -> ReLU] * len(hidden_dims) -> Dense [-> BN]`.

    Dense layers followed by BatchNorm have no bias. `last_batch_norm=True, last_affine=False` gives
    SimSiam's projector output layer (BN without scale and shift). BatchNorm uses momentum 0.9 and
    epsilon 1e-5 (PyTorch's defaults). `init` is the Dense layers' initialisation, `"keras"` (Glorot
    uniform, zero bias) or `"torch"` (`torch.nn.Linear`'s), see `dense_initializers`.

    Example:

    >>> head = mlp_head(512, [2048], 2048, last_batch_norm=True, last_affine=False)
    >>> head.output_shape
    (None, 2048)
    """
    input_dim = check_positive_int(input_dim, "input_dim")
    output_dim = check_positive_int(output_dim, "output_dim")
    hidden_dims = [check_positive_int(h, "hidden_dims") for h in hidden_dims]
    check_head_init(init)
    inputs = keras.Input((int(input_dim),))
    x = inputs
    fan_in = int(input_dim)
    for i, width in enumerate(hidden_dims):
        kernel, bias = dense_initializers(fan_in, init)
        x = layers.Dense(
            int(width), use_bias=not batch_norm, kernel_initializer=kernel, bias_initializer=bias, name=f"dense_{i}"
        )(x)
        fan_in = int(width)
        if batch_norm:
            x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"bn_{i}")(x)
        x = layers.ReLU(name=f"relu_{i}")(x)
    kernel, bias = dense_initializers(fan_in, init)
    x = layers.Dense(
        int(output_dim),
        use_bias=not last_batch_norm,
        kernel_initializer=kernel,
        bias_initializer=bias,
        name="dense_out",
    )(x)
    if last_batch_norm:
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, center=last_affine, scale=last_affine, name="bn_out")(
            x
        )
    return keras.Model(inputs, x, name=name)


def frozen_copy(model, name=None):
    """A non-trainable clone of a functional/Sequential `model` holding the same weight values."""
    try:
        copy = keras.models.clone_model(model)
    except Exception as e:  # subclassed models cannot be cloned from their graph
        raise ValueError(
            "momentum/target networks are made by cloning the encoder, which needs a functional or "
            f"Sequential model; got {type(model).__name__} ({e})"
        ) from e
    if name is not None:
        copy.name = name
    for target, source in zip(copy.weights, model.weights, strict=True):
        target.assign(ops.copy(source.value))  # a new buffer: JAX must not donate one array twice
    copy.trainable = False
    return copy


def momentum_update(target, online, momentum):
    """`t <- m * t + (1 - m) * o` for each trainable weight `o` of `online` and its twin in `target`.

    Moving BatchNorm statistics of `target` are not averaged: the target network's own forward passes
    update them, as in the reference MoCo and BYOL implementations.
    """
    for t, o in zip(target.weights, online.weights, strict=True):
        if o.trainable:
            t.assign(momentum * t.value + (1.0 - momentum) * ops.cast(o.value, t.dtype))
