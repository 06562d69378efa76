"""JAX mechanics: the whole step runs inside a `keras.StatelessScope` over the trainer's state.

Keras' JAX trainer calls `train_step(state, data)` with the values of all trainable, non-trainable,
optimizer and metric variables, and expects the new values back. We map every variable to its value in
one outer scope, run the backend-neutral step (whose `variable.assign` calls are recorded by the scope,
optimizer updates included), and read the new values out. Gradients come from `jax.value_and_grad` over a
function of the trainable values that runs in a nested scope chained to the outer one, so reads of any
other variable see the step's current state, and the updates it makes (BatchNorm statistics) are
returned as auxiliary outputs and re-applied in the outer scope.
"""

import contextlib

import jax
import keras
from keras.src.backend.common.stateless_scope import get_stateless_scope


class _ChainedScope(keras.StatelessScope):
    """A stateless scope that falls back to its parent scope for variables it does not map."""

    def __init__(self, parent, state_mapping):
        super().__init__(state_mapping=state_mapping, initialize_variables=False)
        self._parent = parent

    def get_current_value(self, variable):
        value = self.state_mapping.get(id(variable))
        if value is None and self._parent is not None:
            value = self._parent.get_current_value(variable)
        return value


def _current(scope, variables):
    out = []
    for v in variables:
        value = scope.get_current_value(v)
        out.append(v.value if value is None else value)
    return out


class BackendStep:
    def _ksl_stateless(self, groups, values, step, data):
        mapping = [(v, x) for vs, xs in zip(groups, values) for v, x in zip(vs, xs)]
        with _ChainedScope(None, mapping) as scope:
            logs = step(data)
        return logs, tuple(_current(scope, vs) for vs in groups)

    def train_step(self, state, data):
        groups = (
            self.trainable_variables,
            self.non_trainable_variables,
            self.optimizer.variables,
            self.metrics_variables,
        )
        return self._ksl_stateless(groups, state, self._ksl_train_step, data)

    def test_step(self, state, data):
        groups = (self.trainable_variables, self.non_trainable_variables, self.metrics_variables)
        return self._ksl_stateless(groups, state, self._ksl_test_step, data)

    def _ksl_value_and_grad(self, fn, variables):
        outer = get_stateless_scope()
        watched = [v for v in self.non_trainable_variables]

        def f(trainable_values):
            with _ChainedScope(outer, list(zip(variables, trainable_values))) as scope:
                value, aux = fn()
            updates = [scope.state_mapping.get(id(v)) for v in watched]
            return value, (aux, updates)

        start = [v.value for v in variables]
        (value, (aux, updates)), grads = jax.value_and_grad(f, has_aux=True)(start)
        for v, u in zip(watched, updates):
            if u is not None:
                v.assign(u)
        return value, aux, grads

    def _ksl_no_grad(self):
        return contextlib.nullcontext()
