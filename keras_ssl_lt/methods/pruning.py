"""Magnitude pruning masks and a pruned, weight-sharing twin of a model (SDCLR's self-competitor).

- `magnitude_masks`: 0/1 masks keeping the largest-magnitude entries of a list of kernels, over all of
  them at once (`scope="global"`, the rule of SDCLR's released code, `prune/mask.py`: one threshold for
  every prunable kernel) or per kernel (`scope="layer"`);
- `prunable_kernels`: the Conv/Dense kernels of a model, found through public Keras APIs;
- `PrunedTwin`: the variables of a model's pruned twin (one mask per pruned kernel and, with `dual_bn`,
  its own BatchNormalization parameters and statistics) and its forward pass, which runs the model
  through the public `Layer.stateless_call` with the kernels replaced by `kernel * mask` (so gradients of
  the twin's loss reach the shared kernels, zero where masked) and its BatchNorm variables replaced by the
  twin's own; the statistics the call returns are assigned to the twin's variables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_ssl_lt._batchnorm import batchnorm_layers
from keras_ssl_lt._checks import check_bool, check_choice, check_number

__all__ = ["PRUNE_SCOPES", "PrunedTwin", "check_prune_layers", "magnitude_masks", "prunable_kernels"]

PRUNE_SCOPES = ("global", "layer")

_KERNEL_LAYERS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Dense,
    keras.layers.EinsumDense,
)


def check_prune_ratio(value: Any, name: str = "prune_ratio") -> float:
    """`value` must be a fraction in [0, 1): the share of weights the pruned twin drops."""
    return check_number(value, name, low=0.0, high=1.0, high_open=True)


def magnitude_masks(kernels: Sequence[Any], ratio: float, scope: str = "global") -> list[np.ndarray]:
    """0/1 float32 masks that drop the fraction `ratio` of smallest-magnitude entries of `kernels`.

    The rule of SDCLR's released code (`prune/mask.py`, `Mask.magnitudePruning`): of the `n` candidate
    weights, `k = ceil(ratio * n)` are to go; the threshold is the `min(k, n - 1)`-th smallest magnitude
    (0-based) and every weight whose magnitude is at least the threshold is kept. Without ties exactly
    `n - k` weights stay; ties at the threshold are all kept. `scope="global"` (the released code) takes
    one threshold over all kernels together; `scope="layer"` applies the rule to each kernel on its own.

    Example:

    >>> [m.tolist() for m in magnitude_masks([np.array([0.1, -3.0, 0.2, 2.0])], 0.5)]
    [[0.0, 1.0, 0.0, 1.0]]
    >>> [m.tolist() for m in magnitude_masks([np.array([1.0, 2.0]), np.array([5.0, 6.0])], 0.5, "layer")]
    [[0.0, 1.0], [0.0, 1.0]]
    """
    ratio = check_prune_ratio(ratio, "ratio")
    check_choice(scope, "scope", PRUNE_SCOPES)
    arrays = [np.abs(np.asarray(ops.convert_to_numpy(k), dtype="float64")) for k in kernels]
    if not arrays:
        return []
    if any(a.size == 0 for a in arrays):
        raise ValueError("`kernels` must be non-empty arrays; got one with no entries")

    def threshold(values):
        n = values.size
        k = int(np.ceil(ratio * n))
        return np.sort(values, axis=None)[min(k, n - 1)]

    if scope == "global":
        t = threshold(np.concatenate([a.reshape(-1) for a in arrays]))
        return [(a >= t).astype("float32") for a in arrays]
    return [(a >= threshold(a)).astype("float32") for a in arrays]


def _walk(model):
    """Every layer reachable from `model` through `keras.Model.layers`, in a fixed order."""
    out, seen, stack = [], set(), [model]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        out.append(current)
        if isinstance(current, keras.Model):
            stack.extend(reversed(current.layers))
    return out


def check_prune_layers(value: Any, name: str = "prune_layers") -> tuple[str, ...] | None:
    """`None` (every Conv/Dense kernel) or a non-empty list of layer names."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise ValueError(
            f"`{name}` must be None (every Conv/Dense kernel of the encoder) or a non-empty list of layer names; "
            f"got {value!r}"
        )
    if any(not isinstance(v, str) for v in value) or len(set(value)) != len(value):
        raise ValueError(f"`{name}` must list distinct layer names (strings); got {value!r}")
    return tuple(value)


def prunable_kernels(model: keras.Model, layers: Sequence[str] | None = None) -> list[keras.Variable]:
    """The kernels a pruned twin of `model` masks: of every Conv/DepthwiseConv/Dense/EinsumDense layer, or
    of the layers named in `layers`. Biases and normalisation parameters are never pruned (as in SDCLR's
    released code, whose `prune_conv2d` masks the convolution weight only).

    Layers are reached through `keras.Model.layers`. A kernel inside a plain `keras.layers.Layer` that is not
    one of these types cannot be reached with public APIs: that raises a ValueError rather than leaving it
    unpruned silently.

    Example:

    >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="a"), keras.layers.Dense(2, name="b")])
    >>> [tuple(v.shape) for v in prunable_kernels(m)], [tuple(v.shape) for v in prunable_kernels(m, ["b"])]
    ([(3, 4), (4, 2)], [(4, 2)])
    """
    layers = check_prune_layers(layers, "layers")
    found = []
    by_name = {}
    for layer in _walk(model):
        if isinstance(layer, _KERNEL_LAYERS):
            by_name[layer.name] = layer
            found.append(layer)
        elif not isinstance(layer, keras.Model) and any(v.name == "kernel" for v in layer.weights):
            raise ValueError(
                f"the layer {layer.name!r} ({type(layer).__name__}) holds a kernel that cannot be reached through "
                "public Keras APIs (`keras.Model.layers`); build it as a keras.Model, or name the layers to prune "
                "in `prune_layers`"
            )
    if layers is not None:
        unknown = [n for n in layers if n not in by_name]
        if unknown:
            raise ValueError(
                f"`prune_layers` names {unknown}, which are not Conv/Dense layers of {model.name!r}; its prunable "
                f"layers are {sorted(by_name)}"
            )
        found = [layer for layer in found if layer.name in layers]
    if not found:
        raise ValueError(f"{model.name!r} has no Conv/Dense kernel to prune")
    return [layer.kernel for layer in found]


def _bn_parts(bn):
    """`(name, variable)` of a BatchNormalization layer's affine parameters and moving statistics."""
    parts = [("gamma", bn.gamma if bn.scale else None), ("beta", bn.beta if bn.center else None)]
    parts += [("moving_mean", bn.moving_mean), ("moving_variance", bn.moving_variance)]
    return [(n, v) for n, v in parts if v is not None]


class PrunedTwin(keras.layers.Layer):
    """The pruned self-competitor of a model: masks for its kernels and, with `dual_bn`, its own BatchNorm.

    The twin holds no copy of the model's weights: `twin.forward(model, x)` runs `model` through the public
    `Layer.stateless_call` with each pruned kernel `w` replaced by `w * mask` (the gradient reaches `w`,
    multiplied by the mask) and, with `dual_bn=True`, each BatchNormalization layer's `gamma`, `beta`,
    `moving_mean` and `moving_variance` replaced by the twin's own (SDCLR's dual BN: separate affine
    parameters and statistics, `models/resnet_prune_multibn.py`'s `batch_norm_multiple`). In training mode
    the statistics the call computes are assigned to the twin's variables (with `dual_bn=False`, to the
    model's own, shared ones). The model's weights and statistics are never changed by the twin.

    The twin is rebuilt from its model (it has no config of its own): the model walked the same way must
    give the same kernels and BatchNorm layers, in the same order.

    Args:
        model: a built `keras.Model` (the encoder, or a projector with `prune_layers=()` for dual BN only).
        prune_ratio: the fraction of weights masked, in [0, 1).
        prune_layers: `None` (every Conv/Dense kernel, see `prunable_kernels`), a list of layer names, or
            `()` for no pruning at all (a twin that only has its own BatchNorm).
        scope: `"global"` (one magnitude threshold over all pruned kernels) or `"layer"`.
        dual_bn: give the twin its own BatchNorm parameters and statistics (initialised from the model's).

    Example:

    >>> import numpy as np
    >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, use_bias=False, kernel_initializer="ones")])
    >>> twin = PrunedTwin(m, prune_ratio=0.5, dual_bn=False)
    >>> _ = m.layers[0].kernel.assign([[1.0, -4.0], [3.0, 2.0]])
    >>> twin.refresh(m)
    >>> [float(x) for x in twin.forward(m, np.ones((1, 2), "float32"))[0]]  # masked kernel [[0, -4], [3, 0]]
    [3.0, -4.0]
    """

    def __init__(
        self,
        model: keras.Model,
        prune_ratio: float = 0.9,
        prune_layers: Sequence[str] | None = None,
        scope: str = "global",
        dual_bn: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(model, keras.Model) or not model.built:
            raise ValueError(f"`model` must be a built keras Model; got {type(model).__name__}")
        self.prune_ratio = check_prune_ratio(prune_ratio)
        self.scope = check_choice(scope, "prune_scope", PRUNE_SCOPES)
        self.dual_bn = check_bool(dual_bn, "dual_bn")
        no_pruning = isinstance(prune_layers, (list, tuple)) and len(prune_layers) == 0
        self.prune_layers = () if no_pruning else check_prune_layers(prune_layers)
        kernels = self._kernels(model)
        self.masks = [
            self.add_weight(shape=tuple(k.shape), initializer="ones", trainable=False, name=f"mask_{i}", autocast=False)
            for i, k in enumerate(kernels)
        ]
        self.bn_variables = []
        if self.dual_bn:
            for bn in batchnorm_layers(model):
                for part, v in _bn_parts(bn):
                    own = self.add_weight(
                        shape=tuple(v.shape),
                        initializer="zeros",
                        trainable=v.trainable,
                        name=f"{bn.name}_{part}",
                        autocast=False,
                        aggregation=v.aggregation,  # as the model's own variable
                    )
                    own.assign(ops.copy(v.value))
                    self.bn_variables.append(own)
        self.built = True
        self.refresh(model)

    def _kernels(self, model):
        return [] if self.prune_layers == () else prunable_kernels(model, self.prune_layers)

    def _replacements(self, model):
        """`{id(model variable): value}` for the pruned kernels and, with dual BN, the BatchNorm variables."""
        kernels = self._kernels(model)
        if len(kernels) != len(self.masks):
            raise ValueError(f"the twin {self.name!r} was built for a model with {len(self.masks)} pruned kernels")
        out = {}
        for k, m in zip(kernels, self.masks, strict=True):
            out[id(k)] = k.value * ops.cast(m.value, k.value.dtype)
        if self.dual_bn:
            parts = [v for bn in batchnorm_layers(model) for _, v in _bn_parts(bn)]
            if len(parts) != len(self.bn_variables):
                raise ValueError(f"the twin {self.name!r} was built for a model with other BatchNorm layers")
            for v, own in zip(parts, self.bn_variables, strict=True):
                out[id(v)] = own.value
        return out

    @property
    def statistics(self) -> list[keras.Variable]:
        """The twin's own BatchNorm moving statistics (empty without `dual_bn`)."""
        return [v for v in self.bn_variables if not v.trainable]

    def refresh(self, model: keras.Model) -> None:
        """Recomputes the masks from the magnitudes of `model`'s current kernels (`magnitude_masks`)."""
        kernels = self._kernels(model)
        if not kernels:
            return
        masks = magnitude_masks([k.value for k in kernels], self.prune_ratio, self.scope)
        for variable, mask in zip(self.masks, masks, strict=True):
            variable.assign(mask)

    def forward(self, model: keras.Model, inputs: Any, training: bool = False) -> Any:
        """`model(inputs)` with the masked kernels and the twin's BatchNorm; statistics go to the twin."""
        replace = self._replacements(model)
        trainable = [replace.get(id(v), v.value) for v in model.trainable_variables]
        given = [replace.get(id(v), v.value) for v in model.non_trainable_variables]
        outputs, updated = model.stateless_call(trainable, given, inputs, training=training)
        own = {}
        if self.dual_bn:
            parts = [v for bn in batchnorm_layers(model) for _, v in _bn_parts(bn)]
            own = {id(v): t for v, t in zip(parts, self.bn_variables, strict=True)}
        for v, before, after in zip(model.non_trainable_variables, given, updated, strict=True):
            if after is not None and after is not before:
                own.get(id(v), v).assign(after)
        return outputs
