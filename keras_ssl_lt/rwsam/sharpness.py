"""Sharpness-aware regularisers: SAM, ASAM and re-weighted SAM (rwSAM).

A regulariser is passed to a pre-trainer's `compile(..., sharpness=...)`. Each training step then makes two
passes (Foret et al., 2021; Kwon et al., 2021; Liu et al., 2022):

1. the gradient `g` of the *ascent* loss at the current weights `w` (for rwSAM, the per-example loss
   weighted by the example-weight table; otherwise the plain mean loss);
2. a perturbation `eps = rho * g / ||g||` (SAM) or `eps = rho * w**2 * g / ||w * g||` (ASAM, `adaptive=True`);
3. the gradient of the plain, unweighted loss at `w + eps`;
4. `w` is restored and the optimizer applies the second gradient.

This module holds the configuration objects and the backend-neutral perturbation maths (`keras.ops` only);
the regulariser owns its step (`SAM.gradients`, the two passes in `keras_ssl_lt.rwsam.step`), the
per-backend gradient mechanics live in `keras_ssl_lt.training`, the example weights in
`keras_ssl_lt.rwsam.weights`.
"""

import keras
from keras import ops

from keras_ssl_lt._checks import check_bool, check_choice, check_number
from keras_ssl_lt.rwsam.step import two_pass_gradients
from keras_ssl_lt.rwsam.weights import validate_weights

__all__ = ["MAX_RHO", "RWSAM", "SAM", "get", "perturbation"]

_BN_UPDATES = ("first", "both")

# The largest radius accepted. The ascent step moves the weights by `rho` in norm (SAM) or by `rho` times their
# own scale (ASAM); published radii are 0.01-0.2 (SAM) and 0.5-10 (ASAM, rwSAM). Far beyond that the perturbed
# forward pass overflows float32 (a radius of 1e30 gives NaN weights after one step on every backend), and even
# where it does not, the "neighbourhood" is the whole weight space. Radii up to 1e6 are accepted; a too-large
# radius below it is caught during `fit` by the non-finite loss check (`Pretrainer.fit`).
MAX_RHO = 1e6


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class SAM:
    """Sharpness-aware minimisation (SAM), or its adaptive variant ASAM with `adaptive=True`.

    Args:
        rho: radius of the ascent step, in `[0, MAX_RHO]` (1e6). `rho=0` is exactly a plain optimizer step.
            Typical values: 0.05 for SAM; the rwSAM authors used ASAM with `rho=7.0` on CIFAR.
        adaptive: `True` gives ASAM (scale-invariant: `eps = rho * w**2 * g / ||w * g||`).
        bn_update: `"first"` (default) keeps the BatchNorm moving statistics of the first pass only,
            so they are updated once per step as in plain training; `"both"` keeps the updates of both
            passes, which is what the rwSAM authors' code did (BatchNorm in train mode on both passes).
        epsilon: added to the gradient norm; a zero gradient gives a zero perturbation, never NaN.

    Example:

    >>> import keras, keras_ssl_lt as ksl
    >>> model = ksl.SimSiam(ksl.backbones.small_resnet(), augmenter=ksl.augment.simsiam_cifar())
    >>> model.compile(optimizer=keras.optimizers.SGD(0.06, momentum=0.9), sharpness=SAM(rho=0.05))
    """

    weighted = False

    def __init__(self, rho=0.05, adaptive=False, bn_update="first", epsilon=1e-12):
        self.rho = check_number(rho, "rho", low=0.0, high=MAX_RHO)
        self.adaptive = check_bool(adaptive, "adaptive")
        self.bn_update = check_choice(bn_update, "bn_update", _BN_UPDATES)
        self.epsilon = check_number(epsilon, "epsilon", low=0.0, low_open=True)

    @property
    def name(self):
        return "asam" if self.adaptive else "sam"

    def perturbation(self, gradients, weights):
        """The ascent step `eps` for each variable; see `perturbation()`."""
        return perturbation(gradients, weights, self.rho, self.adaptive, self.epsilon)

    def gradients(self, loss_fn, variables, hooks, batchnorm_variables=()):
        """This regulariser's two-pass step: the gradient for the optimizer, from the loss at `w + eps`.

        Runs `keras_ssl_lt.rwsam.step.two_pass_gradients` with this regulariser's perturbation; the ascent
        pass differentiates the example-weighted objective for rwSAM (`weighted`), the plain loss otherwise.
        With `bn_update="first"` the values of `batchnorm_variables` after the ascent pass are restored after
        the second one (their statistics are updated once per step); with `"both"` they are left as the
        second pass made them.

        Args:
            loss_fn: `loss_fn(weighted) -> fn`, `fn() -> (scalar, aux)` (see `two_pass_gradients`).
            variables: the trainable variables.
            hooks: a `keras_ssl_lt.rwsam.step.StepHooks` (the backend's gradient mechanics).
            batchnorm_variables: the model's BatchNorm moving statistics (needed with `bn_update="first"`).

        Returns:
            a `keras_ssl_lt.rwsam.step.SharpnessStep`.
        """
        keep = batchnorm_variables if self.bn_update == "first" else ()
        return two_pass_gradients(
            loss_fn, variables, hooks, self.perturbation, weighted_ascent=self.weighted, keep=keep
        )

    def get_config(self):
        return {
            "rho": self.rho,
            "adaptive": self.adaptive,
            "bn_update": self.bn_update,
            "epsilon": self.epsilon,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class RWSAM(SAM):
    """Re-weighted SAM (Liu et al., 2022): the ascent gradient comes from a per-example weighted loss.

    The loss used for the ascent step is `(1/B) * sum_i w[index_i] * l_i`, with `w` the pre-trainer's
    example-weight table (one weight per example of the *source* dataset, looked up on the device by
    each batch's `index`); the descent gradient is the plain, unweighted loss at `w + eps`. Larger
    weights for rare examples make the flatness constraint focus on them.

    Args:
        rho, adaptive, bn_update, epsilon: as for `SAM`. The authors used `adaptive=True, rho=7.0`
            (CIFAR) and `rho=2.0` (ImageNet).
        weights: optional 1-D array with one weight per source example; at `compile` it is written
            into the model's table (created with this length if the model has none). Weights must be
            finite and >= 0 and not all zero. Leave it `None` to keep the model's current table (for
            instance one maintained by `keras_ssl_lt.rwsam.KDEReweighting`, or restored from a
            `.keras` file). The array is not part of `get_config`: the table is a model variable
            and is saved with the weights.

    Example:

    >>> import numpy as np, keras, keras_ssl_lt as ksl
    >>> labels = np.repeat(np.arange(3), [50, 10, 2])
    >>> w = ksl.rwsam.class_rank_weights(labels, base=1.2)
    >>> model = ksl.SimSiam(ksl.backbones.small_resnet(), augmenter=ksl.augment.simsiam_cifar())
    >>> model.compile(optimizer=keras.optimizers.SGD(0.06, momentum=0.9),
    ...               sharpness=RWSAM(rho=7.0, adaptive=True, weights=w))
    """

    weighted = True

    def __init__(self, rho=0.05, adaptive=False, weights=None, bn_update="first", epsilon=1e-12):
        super().__init__(rho=rho, adaptive=adaptive, bn_update=bn_update, epsilon=epsilon)
        if weights is not None:
            weights = validate_weights(weights, "weights")
        self.weights = weights

    @property
    def name(self):
        return "rwasam" if self.adaptive else "rwsam"


def perturbation(gradients, weights, rho, adaptive=False, epsilon=1e-12):
    """The SAM / ASAM ascent step for a list of variables, computed in float32.

    `eps_k = rho * s_k**2 * g_k / (||s * g|| + epsilon)`, with `s = |w|` for ASAM and `s = 1` for SAM,
    and the norm taken over all variables together. A zero gradient gives a zero step.

    Example:

    >>> from keras import ops
    >>> [e] = perturbation([ops.array([3.0, 4.0])], [ops.array([1.0, 1.0])], rho=1.0)
    >>> [round(float(x), 4) for x in e]
    [0.6, 0.8]
    """
    grads = [ops.cast(g, "float32") for g in gradients]
    if adaptive:
        ws = [ops.cast(w, "float32") for w in weights]
        scaled = [ops.abs(w) * g for w, g in zip(ws, grads, strict=True)]
    else:
        scaled = grads
    sq = [ops.sum(ops.square(s)) for s in scaled]
    norm = ops.sqrt(ops.sum(ops.stack(sq))) if sq else ops.convert_to_tensor(0.0)
    scale = rho / (norm + epsilon)
    if adaptive:
        return [ops.square(w) * g * scale for w, g in zip(ws, grads, strict=True)]
    return [g * scale for g in grads]


def get(identifier):
    """Returns a regulariser from `None`, a SAM/RWSAM instance, a name or a config dict.

    Names: `"sam"`, `"asam"`, `"rwsam"`, `"rwasam"` (default `rho` of each class).
    """
    if identifier is None or isinstance(identifier, SAM):
        return identifier
    if isinstance(identifier, str):
        table = {
            "sam": lambda: SAM(),
            "asam": lambda: SAM(adaptive=True),
            "rwsam": lambda: RWSAM(),
            "rwasam": lambda: RWSAM(adaptive=True),
        }
        if identifier.lower() not in table:
            raise ValueError(
                f"`sharpness` must be one of {sorted(table)}, a SAM/RWSAM object or None; got {identifier!r}"
            )
        return table[identifier.lower()]()
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    raise ValueError(f"`sharpness` must be None, a SAM/RWSAM object, a name or a config; got {identifier!r}")
