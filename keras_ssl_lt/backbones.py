"""ResNet encoders that map float images `(B, H, W, 3)` to flat features `(B, D)`.

All are functional `keras.Model`s (channels_last) built from Keras core layers, so they save and
load through `.keras` files with no custom objects. Conventions follow torchvision/PyTorch so that
numbers are comparable with the paper's code:

* convolutions have no bias (every one is followed by BatchNormalization);
* BatchNormalization uses `momentum=0.9, epsilon=1e-5` (PyTorch's momentum 0.1 and eps 1e-5);
* convolution kernels use He-normal initialisation in torchvision's form: an untruncated normal
  with variance `2 / fan_out` (`VarianceScaling(2.0, "fan_out", "untruncated_normal")`);
* padding is explicit (`ZeroPadding2D` + `"valid"`), matching PyTorch's symmetric padding for the
  stride-2 layers (Keras `"same"` would pad asymmetrically);
* ResNet-50 puts the stride of a bottleneck in its 3x3 convolution (torchvision's "v1.5").

Arguments shared by the builders:

* `input_shape`: `(height, width, channels)`; height and width may be None (not for `count_flops`).
* `width`: channel multiplier (> 0); channels are rounded to the nearest int (at least 1).
* `name`: the model's name.
* `kernel_initializer`: None for He-normal with fan_out (torchvision's ResNet), `"torch"` for a plain
  `torch.nn.Conv2d`'s default (`kaiming_uniform_(a=sqrt(5))`: uniform in `+-1/sqrt(fan_in)`, six times
  less variance than He-normal fan_out when channels in and out are equal), or any Keras initializer.

`count_flops(model)` counts the multiply-accumulates of the convolution and dense layers.
"""

from __future__ import annotations

import keras
from keras import layers

from keras_ssl_lt._checks import check_number

__all__ = ["count_flops", "he_normal_fan_out", "resnet18_cifar", "resnet50", "small_resnet", "torch_default_conv"]


BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def he_normal_fan_out() -> keras.initializers.Initializer:
    """torchvision's convolution initialiser: untruncated normal with variance `2 / fan_out`."""
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="untruncated_normal")


def torch_default_conv() -> keras.initializers.Initializer:
    """`torch.nn.Conv2d`'s (and `torch.nn.Linear`'s) default kernel initialiser: uniform in `+-1/sqrt(fan_in)`.

    It is `kaiming_uniform_(a=sqrt(5))`, i.e. `VarianceScaling(1/3, "fan_in", "uniform")`; a PyTorch ResNet
    that does not re-initialise its convolutions (as torchvision's does) starts from it.

    Example:

    >>> torch_default_conv().get_config()["scale"] == 1 / 3
    True
    """
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


def _get_initializer(kernel_initializer):
    if kernel_initializer is None:
        return he_normal_fan_out
    if isinstance(kernel_initializer, str) and kernel_initializer == "torch":
        return torch_default_conv
    try:
        init = keras.initializers.get(kernel_initializer)
    except (ValueError, TypeError) as e:
        raise ValueError(
            "`kernel_initializer` must be None (He-normal, fan_out), 'torch' (torch.nn.Conv2d's default) or a "
            "Keras initializer "
            f"(name, config dict or instance); got {kernel_initializer!r}"
        ) from e
    config = keras.initializers.serialize(init)
    return lambda: keras.initializers.deserialize(config)


def _check_width(width):
    check_number(width, "width", low=0.0, low_open=True)  # a channel multiplier


def _check_input_shape(input_shape):
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or input_shape[-1] is None
        or any(d is not None and (not isinstance(d, int) or d <= 0) for d in input_shape)
    ):
        raise ValueError(
            "`input_shape` must be (height, width, channels) with positive ints "
            f"(height/width may be None); got {input_shape!r}"
        )
    return tuple(input_shape)


def _channels(c, width):
    return max(1, round(c * width))


def _conv(x, filters, kernel, stride, name, init):
    pad = (kernel - 1) // 2
    if pad == 0:
        padding = "valid"
    elif stride > 1:
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"  # stride 1 with an odd kernel: "same" is symmetric
    return layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding=padding,
        use_bias=False,
        kernel_initializer=init(),
        name=name,
    )(x)


def _bn(x, name):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)(x)


def _basic_block(x, filters, stride, name, init):
    shortcut = x
    y = _conv(x, filters, 3, stride, f"{name}_conv1", init)
    y = _bn(y, f"{name}_bn1")
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(y, filters, 3, 1, f"{name}_conv2", init)
    y = _bn(y, f"{name}_bn2")
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv(x, filters, 1, stride, f"{name}_down_conv", init)
        shortcut = _bn(shortcut, f"{name}_down_bn")
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def _bottleneck_block(x, filters, stride, name, init, expansion=4):
    shortcut = x
    out = filters * expansion
    y = _conv(x, filters, 1, 1, f"{name}_conv1", init)
    y = _bn(y, f"{name}_bn1")
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(y, filters, 3, stride, f"{name}_conv2", init)
    y = _bn(y, f"{name}_bn2")
    y = layers.ReLU(name=f"{name}_relu2")(y)
    y = _conv(y, out, 1, 1, f"{name}_conv3", init)
    y = _bn(y, f"{name}_bn3")
    if stride != 1 or x.shape[-1] != out:
        shortcut = _conv(x, out, 1, stride, f"{name}_down_conv", init)
        shortcut = _bn(shortcut, f"{name}_down_bn")
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def _resnet(input_shape, stem, block, stage_widths, stage_blocks, stage_strides, name, init):
    inputs = keras.Input(shape=input_shape, name=f"{name}_images")
    x = inputs
    if stem["kind"] == "cifar":
        x = _conv(x, stem["filters"], 3, 1, "stem_conv", init)
        x = _bn(x, "stem_bn")
        x = layers.ReLU(name="stem_relu")(x)
    else:  # ImageNet stem: 7x7/2 conv, BN, ReLU, 3x3/2 max-pool (padding 1, like PyTorch)
        x = _conv(x, stem["filters"], 7, 2, "stem_conv", init)
        x = _bn(x, "stem_bn")
        x = layers.ReLU(name="stem_relu")(x)
        # Zero padding equals PyTorch's -inf padding here because the input is after a ReLU (>= 0).
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    for s, (w, n, stride) in enumerate(zip(stage_widths, stage_blocks, stage_strides, strict=True), start=1):
        for b in range(n):
            x = block(x, w, stride if b == 0 else 1, f"stage{s}_block{b + 1}", init)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, x, name=name)


def resnet18_cifar(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    width: float = 1,
    name: str = "resnet18_cifar",
    kernel_initializer: str | keras.initializers.Initializer | None = None,
) -> keras.Model:
    """CIFAR ResNet-18: 3x3 stride-1 stem, no max-pool, 4 stages of 2 basic blocks, 512-d features.

    Widths are 64/128/256/512 times `width`. With `width=1` it has 11,168,832 trainable parameters
    (torchvision's ResNet-18 with this stem, without the fc layer) and 555,417,600
    multiply-accumulates per 32x32 image (`count_flops`).

    Example:

    >>> import numpy as np
    >>> enc = resnet18_cifar(width=0.125)
    >>> tuple(enc(np.zeros((2, 32, 32, 3), "float32")).shape)
    (2, 64)
    """
    _check_width(width)
    input_shape = _check_input_shape(input_shape)
    widths = [_channels(c, width) for c in (64, 128, 256, 512)]
    return _resnet(
        input_shape,
        {"kind": "cifar", "filters": widths[0]},
        _basic_block,
        widths,
        (2, 2, 2, 2),
        (1, 2, 2, 2),
        name,
        _get_initializer(kernel_initializer),
    )


def resnet50(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    width: float = 1,
    name: str = "resnet50",
    kernel_initializer: str | keras.initializers.Initializer | None = None,
) -> keras.Model:
    """ImageNet ResNet-50 (torchvision v1.5): 7x7/2 stem + max-pool, bottleneck blocks 3/4/6/3, 2048-d.

    Bottleneck widths are 64/128/256/512 (x4 expansion) times `width`. With `width=1` it has
    23,508,032 trainable parameters (torchvision's 25,557,032 minus the 2,049,000 of the fc layer)
    and 4,087,136,256 multiply-accumulates per 224x224 image (`count_flops`).

    Example:

    >>> enc = resnet50(input_shape=(64, 64, 3), width=0.125)
    >>> enc.output.shape
    (None, 256)
    """
    _check_width(width)
    input_shape = _check_input_shape(input_shape)
    widths = [_channels(c, width) for c in (64, 128, 256, 512)]
    return _resnet(
        input_shape,
        {"kind": "imagenet", "filters": widths[0]},
        _bottleneck_block,
        widths,
        (3, 4, 6, 3),
        (1, 2, 2, 2),
        name,
        _get_initializer(kernel_initializer),
    )


def small_resnet(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    width: float = 1,
    blocks: tuple[int, int, int, int] = (1, 1, 1, 1),
    name: str = "small_resnet",
    kernel_initializer: str | keras.initializers.Initializer | None = None,
) -> keras.Model:
    """A narrow CIFAR-style ResNet for CPU-scale runs: widths 16/32/64/128, 128-d features.

    Same design as `resnet18_cifar` (3x3 stride-1 stem, basic blocks, strides 1/2/2/2) with
    `width` times 16/32/64/128 channels and `blocks` basic blocks per stage (default one).
    With the defaults it has 307,536 trainable parameters (308,976 including the BatchNorm moving
    statistics) and 16,171,008 multiply-accumulates (32.3 MFLOPs) per 32x32 image, as returned by
    `count_flops` (tested).

    Example:

    >>> import numpy as np
    >>> enc = small_resnet()
    >>> tuple(enc(np.zeros((2, 32, 32, 3), "float32")).shape)
    (2, 128)
    """
    _check_width(width)
    input_shape = _check_input_shape(input_shape)
    if (
        not isinstance(blocks, (tuple, list))
        or len(blocks) != 4
        or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in blocks)
    ):
        raise ValueError(f"`blocks` must be 4 positive ints (blocks per stage); got {blocks!r}")
    widths = [_channels(c, width) for c in (16, 32, 64, 128)]
    return _resnet(
        input_shape,
        {"kind": "cifar", "filters": widths[0]},
        _basic_block,
        widths,
        tuple(blocks),
        (1, 2, 2, 2),
        name,
        _get_initializer(kernel_initializer),
    )


def count_flops(model: keras.Model, multiply_accumulates: bool = False) -> int:
    """Count the floating-point operations of one image through the conv and dense layers of `model`.

    Each `Conv2D` contributes `H_out * W_out * C_out * k_h * k_w * C_in / groups` multiply-accumulates
    (MACs) and each `Dense` `units * inputs`; nested models are walked. Returns `2 * MACs` (FLOPs),
    or the MACs with `multiply_accumulates=True` (the number usually quoted as "FLOPs" for ResNets:
    4.1 G for ResNet-50 at 224, 0.56 G for CIFAR ResNet-18). BatchNorm, activations, pooling and
    additions are not counted. The model's spatial input shape must be known.

    Example:

    >>> count_flops(small_resnet(kernel_initializer="zeros"), multiply_accumulates=True)
    16171008
    """
    macs = 0
    for layer in _walk(model):
        if isinstance(layer, layers.Conv2D):
            out_shape = layer.output.shape
            if any(d is None for d in out_shape[1:]):
                raise ValueError(
                    f"`model` needs a fully known spatial input shape to count FLOPs; layer "
                    f"{layer.name!r} has output shape {out_shape}"
                )
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            macs += out_shape[1] * out_shape[2] * out_shape[3] * kh * kw * c_in // layer.groups
        elif isinstance(layer, layers.Dense):
            macs += layer.units * layer.input.shape[-1]
    return int(macs if multiply_accumulates else 2 * macs)


def _walk(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer)
        else:
            yield layer
