"""The two-pass sharpness-aware step (SAM / ASAM / rwSAM), owned by the regulariser.

`SAM.gradients` (and so `RWSAM.gradients`) runs this algorithm inside a pre-trainer's train step; the
pre-trainer only supplies the loss and its backend's gradient mechanics (as optax's SAM owns its two
passes and the caller only supplies the gradient function):

1. the gradient `g` of the *ascent* objective at the current weights `w` (rwSAM: the per-example loss
   weighted by the example-weight table; SAM / ASAM: the plain mean loss);
2. the perturbation `eps` of the regulariser (`SAM.perturbation`), from the global-batch gradient;
3. the gradient of the plain, unweighted loss at `w + eps`;
4. `w` is restored, and so are the statistics listed in `keep` (BatchNorm's moving statistics with
   `bn_update="first"`); the caller's optimizer applies the returned gradient.

The model's backend enters through `StepHooks`, a small explicit interface (three callables), so this
module is written once with `keras.ops` and never imports a backend.
"""

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from keras import ops

__all__ = ["SharpnessStep", "StepHooks", "two_pass_gradients"]


class StepHooks(NamedTuple):
    """What the two-pass step needs from a model's backend (`keras_ssl_lt.training`).

    Attributes:
        value_and_grad: `(fn, variables) -> (value, aux, gradients)`: runs `fn() -> (scalar, aux)` and
            returns the scalar, `aux` and the gradients of the scalar w.r.t. `variables`, keeping any
            variable updates `fn` made (BatchNorm statistics).
        no_grad: `() -> context manager` under which variables are assigned directly.
        global_gradients: `(gradients) -> gradients` of the global-batch loss (an all-reduce under
            data parallelism, else the identity), so the ascent step's norm is global.

    A pre-trainer builds its hooks from its backend mixin (`Pretrainer._ksl_step_hooks`). The example below
    uses an analytic gradient instead (for `f(w) = 0.5 ||w||^2` the gradient is `w` itself), so it runs on
    any backend without a model.

    Example:

    >>> import contextlib, keras
    >>> from keras import ops
    >>> def value_and_grad(fn, variables):  # f(w) = 0.5 * ||w||^2: its gradient is w
    ...     value, aux = fn()
    ...     return value, aux, [ops.copy(v.value) for v in variables]
    >>> hooks = StepHooks(value_and_grad, contextlib.nullcontext, lambda grads: grads)
    >>> hooks.global_gradients([1.0])
    [1.0]
    """

    value_and_grad: Callable[..., Any]
    no_grad: Callable[[], contextlib.AbstractContextManager]
    global_gradients: Callable[[Sequence[Any]], Sequence[Any]]


class SharpnessStep(NamedTuple):
    """The outcome of one two-pass step.

    Attributes:
        ascent_value: the ascent objective at `w` (rwSAM: the weighted loss; else the plain mean loss).
        ascent_aux: the `aux` output of the ascent pass (the loss function's second output at `w`).
        perturbed_value: the plain loss at `w + eps`.
        gradients: the gradient of the plain loss at `w + eps`, one per variable, for the optimizer.
    """

    ascent_value: Any
    ascent_aux: Any
    perturbed_value: Any
    gradients: list


def two_pass_gradients(loss_fn, variables, hooks, perturbation, weighted_ascent=False, keep=()):
    """One sharpness-aware step's gradients: ascend to `w + eps`, differentiate there, restore `w`.

    Args:
        loss_fn: `loss_fn(weighted) -> fn`, with `fn() -> (scalar, aux)` the objective: the example-weighted
            loss when `weighted` is True, the plain mean loss when False.
        variables: the trainable variables `w` (perturbed, then restored).
        hooks: a `StepHooks` (the backend's gradient mechanics).
        perturbation: `(gradients, weights) -> eps`, e.g. `SAM.perturbation`.
        weighted_ascent: differentiate the weighted objective in the ascent pass (rwSAM).
        keep: further variables whose values after the ascent pass are restored after the second pass
            (BatchNorm's moving statistics, so that they are updated once per step).

    Returns:
        a `SharpnessStep`. The variables hold `w` again; the optimizer has not been applied.

    Example (the analytic hooks of `StepHooks`: `f(w) = 0.5 ||w||^2`, so the gradient at `w + eps` is
    `w + eps`):

    >>> import contextlib, keras
    >>> from keras import ops
    >>> from keras_ssl_lt.rwsam import SAM
    >>> def value_and_grad(fn, variables):
    ...     value, aux = fn()
    ...     return value, aux, [ops.copy(v.value) for v in variables]
    >>> hooks = StepHooks(value_and_grad, contextlib.nullcontext, lambda grads: grads)
    >>> w = keras.Variable([3.0, 4.0])
    >>> loss_fn = lambda weighted: lambda: (0.5 * ops.sum(ops.square(w.value)), None)
    >>> step = two_pass_gradients(loss_fn, [w], hooks, SAM(rho=5.0).perturbation)
    >>> [float(x) for x in step.gradients[0]], float(step.perturbed_value)  # eps = 5 * g / ||g|| = (3, 4)
    ([6.0, 8.0], 50.0)
    >>> [float(x) for x in w.value]  # restored
    [3.0, 4.0]
    """
    variables = list(variables)
    keep = list(keep)
    ascent_value, ascent_aux, grads = hooks.value_and_grad(loss_fn(weighted_ascent), variables)
    with hooks.no_grad():
        saved_keep = [ops.copy(v.value) for v in keep]
        saved_w = [ops.copy(v.value) for v in variables]
        # Under data parallelism the ascent step uses the global-batch gradient (its norm is global).
        eps = perturbation(hooks.global_gradients(grads), saved_w)
        for v, w, e in zip(variables, saved_w, eps, strict=True):
            v.assign(w + ops.cast(e, w.dtype))
    perturbed_value, _, grads = hooks.value_and_grad(loss_fn(False), variables)
    with hooks.no_grad():
        for v, w in zip(variables, saved_w, strict=True):
            v.assign(w)
        for v, s in zip(keep, saved_keep, strict=True):
            v.assign(s)
    return SharpnessStep(ascent_value, ascent_aux, perturbed_value, grads)
