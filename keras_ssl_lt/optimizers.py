"""SGD with PyTorch's semantics: coupled (L2) or decoupled weight decay, momentum outside the learning rate.

The paper's hyper-parameters (weight decay 5e-4, the ASAM radius) were tuned with `torch.optim.SGD`, whose
weight decay is *coupled*: it is added to the gradient (`g + wd * w`) and so goes through the momentum
buffer. `keras.optimizers.SGD(weight_decay=wd)` is *decoupled*: it shrinks the weights by `lr * wd` once per
step, beside the momentum. With momentum 0.9 the coupled decay removes about ten times more weight per step
(`1 / (1 - momentum)`), so the same number means a different regulariser (docs/fidelity.md measures the
effect on learning).

`SGD` here is `torch.optim.SGD` (without dampening) written with `keras.ops`, for every backend:

    g = grad + wd * w                  (decoupled_weight_decay=False, the default: PyTorch's convention)
    b = momentum * b + g               (the buffer starts at zero, so the first step's b is g)
    d = g + momentum * b  if nesterov else  b
    w = w - lr * d

With `decoupled_weight_decay=True` the decay is Keras' instead: `w = w - lr * wd * w` before the update, and
`g = grad`. In both conventions the learning rate multiplies the update, not the buffer (PyTorch's form;
Keras' SGD keeps `-lr * g` in its buffer, which differs from this only while the learning rate changes).

Weight decay applies to every trainable variable unless excluded with Keras'
`exclude_from_weight_decay(var_names=[...])` (before `build`), as for any Keras optimizer. Under the
sharpness-aware step (`keras_ssl_lt.rwsam`) the decay is applied once per step, at the descent, on the
unperturbed weights.

Example:

>>> import numpy as np, keras
>>> opt = SGD(0.1, momentum=0.9, weight_decay=0.5)
>>> w = keras.Variable(np.array([1.0, -2.0], "float32"))
>>> opt.apply([keras.ops.zeros((2,))], [w])  # zero gradient: only the coupled decay moves w
>>> [round(float(x), 4) for x in keras.ops.convert_to_numpy(w)]
[0.95, -1.9]
"""

import keras
from keras import ops

from keras_ssl_lt._checks import check_bool, check_choice, check_number

__all__ = ["CONVENTIONS", "SGD", "get_sgd"]


@keras.saving.register_keras_serializable(package="keras_ssl_lt")
class SGD(keras.optimizers.Optimizer):
    """Stochastic gradient descent as `torch.optim.SGD`: momentum, Nesterov, coupled or decoupled weight decay.

    Args:
        learning_rate: a float or a `keras.optimizers.schedules.LearningRateSchedule` (called with the
            optimizer's iteration count, as for any Keras optimizer).
        momentum: float in [0, 1]; 0 disables the buffer.
        nesterov: Nesterov momentum (PyTorch's form: `d = g + momentum * b`); needs `momentum > 0`.
        weight_decay: None or a float >= 0.
        decoupled_weight_decay: False (default) adds `weight_decay * w` to the gradient, as PyTorch's SGD
            and the paper do; True shrinks the weights by `learning_rate * weight_decay` per step, as
            `keras.optimizers.SGD` does.
        **kwargs: Keras' optimizer arguments (`name`, `clipnorm`, `global_clipnorm`, `use_ema`,
            `gradient_accumulation_steps`, ...).

    Example:

    >>> import numpy as np, keras, keras_ssl_lt as ksl
    >>> model = ksl.SimSiam(ksl.backbones.small_resnet((16, 16, 3), width=0.25), projection_dim=16,
    ...                     projection_hidden_dim=16, prediction_hidden_dim=8)
    >>> model.compile(optimizer=ksl.optimizers.SGD(0.06, momentum=0.9, weight_decay=5e-4))
    >>> history = model.fit(np.zeros((8, 16, 16, 3), "uint8"), batch_size=4, epochs=1, verbose=0)
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        weight_decay=None,
        decoupled_weight_decay=False,
        name="ksl_sgd",
        **kwargs,
    ):
        momentum = check_number(momentum, "momentum", low=0.0, high=1.0)
        nesterov = check_bool(nesterov, "nesterov")
        decoupled_weight_decay = check_bool(decoupled_weight_decay, "decoupled_weight_decay")
        if weight_decay is not None:
            weight_decay = check_number(weight_decay, "weight_decay", low=0.0)
        if nesterov and momentum == 0:
            raise ValueError("`nesterov=True` needs `momentum` > 0; got momentum=0")
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.momentum = float(momentum)
        self.nesterov = nesterov
        self.decoupled_weight_decay = decoupled_weight_decay

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = []
        if self.momentum != 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")
        # Which variables decay, decided once on the Keras variables (inside a backend's update loop a
        # variable may arrive as its native tensor, e.g. a tf.Variable under tf.distribute).
        self._decays = [self.weight_decay is not None and self._use_weight_decay(v) for v in variables]

    def _apply_weight_decay(self, variables):
        if self.decoupled_weight_decay:
            super()._apply_weight_decay(variables)  # Keras' decoupled form (w -= lr * wd * w)
        # Coupled decay is added to the gradient in update_step.

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        if not self.decoupled_weight_decay and self._decays[index]:
            g = ops.add(g, ops.multiply(ops.cast(self.weight_decay, variable.dtype), variable))
        if self.momentum != 0:
            b = self.momentums[index]
            m = ops.cast(self.momentum, variable.dtype)
            new_b = ops.add(ops.multiply(b, m), g)
            self.assign(b, new_b)
            g = ops.add(g, ops.multiply(new_b, m)) if self.nesterov else new_b
        self.assign_sub(variable, ops.multiply(g, lr))

    def get_config(self):
        config = super().get_config()
        config.update(
            momentum=self.momentum,
            nesterov=self.nesterov,
            decoupled_weight_decay=self.decoupled_weight_decay,
        )
        return config


# The weight-decay conventions `get_sgd` knows (the presets' `optimizer.weight_decay_convention`).
CONVENTIONS = ("coupled", "decoupled", "keras")


def get_sgd(learning_rate, momentum=0.9, weight_decay=5e-4, convention="coupled", nesterov=False):
    """The SGD of a weight-decay convention, as the presets name it.

    - `"coupled"`: `SGD(decoupled_weight_decay=False)` here (PyTorch's `torch.optim.SGD`; the paper's);
    - `"decoupled"`: `SGD(decoupled_weight_decay=True)` here (Keras' decay, PyTorch's momentum form);
    - `"keras"`: `keras.optimizers.SGD` (decoupled decay, `-lr * g` kept in the momentum buffer), what the
      presets ran before the convention was a setting.

    Example:

    >>> type(get_sgd(0.1, convention="keras")).__name__, get_sgd(0.1).decoupled_weight_decay
    ('SGD', False)
    """
    check_choice(convention, "convention", CONVENTIONS)
    if convention == "keras":
        return keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    return SGD(
        learning_rate,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
        decoupled_weight_decay=convention == "decoupled",
    )
