"""JAX mechanics: the whole step runs inside a `keras.StatelessScope` over the trainer's state.

Keras' JAX trainer calls `train_step(state, data)` with the values of all trainable, non-trainable,
optimizer and metric variables, and expects the new values back. We map every variable to its value in
one outer scope, which we keep a reference to while the step runs, run the backend-neutral step (whose
`variable.assign` calls are recorded by the scope, optimizer updates included), and read the new values
out with the scope's public `get_current_value`. Gradients come from `jax.value_and_grad` over a function
of the trainable values that runs in a nested scope chained to the outer one, so reads of any other
variable see the step's current state; the non-trainable values at its end (BatchNorm statistics) are
returned as auxiliary outputs and assigned in the outer scope.

Only public Keras API is used: `keras.StatelessScope(state_mapping=...)`, whose `get_current_value` is
what a variable read consults inside a scope, and `Variable.assign`, which records into the scope.
"""

import contextlib

import jax
import keras
import numpy as np

from keras_ssl_lt.training.common import checked_batches


class _ChainedScope(keras.StatelessScope):
    """A stateless scope that falls back to its parent scope for variables it does not map."""

    def __init__(self, parent, state_mapping):
        super().__init__(state_mapping=state_mapping, initialize_variables=False)
        self._parent = parent

    def get_current_value(self, variable):
        value = super().get_current_value(variable)
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
    _ksl_scope = None  # the outer scope of the step being traced

    def _ksl_state_groups(self, train=True):
        if train:
            return (
                self.trainable_variables,
                self.non_trainable_variables,
                self.optimizer.variables,
                self.metrics_variables,
            )
        return (self.trainable_variables, self.non_trainable_variables, self.metrics_variables)

    def _ksl_stateless(self, groups, values, step, data):
        mapping = [(v, x) for vs, xs in zip(groups, values, strict=True) for v, x in zip(vs, xs, strict=True)]
        previous = self._ksl_scope
        with _ChainedScope(None, mapping) as scope:
            self._ksl_scope = scope
            try:
                logs = step(data)
            finally:
                self._ksl_scope = previous
        return logs, tuple(_current(scope, vs) for vs in groups)

    def train_step(self, state, data):
        return self._ksl_stateless(self._ksl_state_groups(True), state, self._ksl_train_step, data)

    def test_step(self, state, data):
        return self._ksl_stateless(self._ksl_state_groups(False), state, self._ksl_test_step, data)

    def _ksl_value_and_grad(self, fn, variables):
        outer = self._ksl_scope
        if outer is None:
            raise RuntimeError("`_ksl_value_and_grad` must run inside the JAX train step")
        watched = list(self.non_trainable_variables)

        def f(trainable_values):
            with _ChainedScope(outer, list(zip(variables, trainable_values, strict=True))) as scope:
                value, aux = fn()
            # The values at the end of `fn`: those it assigned, else the outer scope's (unchanged).
            return value, (aux, [scope.get_current_value(v) for v in watched])

        start = [v.value for v in variables]
        (value, (aux, updates)), grads = jax.value_and_grad(f, has_aux=True)(start)
        for v, u in zip(watched, updates, strict=True):
            if u is not None:
                v.assign(u)
        return value, aux, grads

    def _ksl_no_grad(self):
        return contextlib.nullcontext()

    def _ksl_sync_state(self):
        """Before a host-side read or write of a variable during `fit` (a callback between steps).

        Mid-epoch, Keras' JAX `fit` keeps the variables' values in its own state and writes them back at
        the epoch's end, over any assignment made meanwhile. `jax_state_sync` (Keras' hook for callbacks)
        writes them back now and makes the next step read the variables again, assignments included.
        """
        self.jax_state_sync()

    def _ksl_replica_random(self, seed_states):
        """Nothing to do (the distributed step is one program: its draws for the global batch already differ per row)."""
        return contextlib.nullcontext()

    def _ksl_global_gradients(self, grads):
        """The gradient of the global-batch loss: `grads` already is one.

        Under `keras.distribution` the jitted step is one global program over the sharded batch.
        """
        return grads

    def _ksl_all_gather(self, x):
        """`(x, 0)`: the step already sees the global batch."""
        return x, 0

    def _ksl_guard_train_function(self, function):
        """Checks each batch on the host before Keras' (jitted) `train_function(state, iterator)` sees it.

        During `fit` Keras hands the variables' values to the step as `state` and leaves the variables
        themselves empty until the epoch ends; on a rejected batch the values of `state` (the model as it
        was before this step) are written back, so the model stays usable and unchanged. The returned logs
        go to `_ksl_after_train_call` (the non-finite loss check, see `keras_ssl_lt.training.common.LossWatch`).
        """

        def guarded(state, iterator):
            if self._ksl_checks_batches():
                try:
                    iterator = checked_batches(iterator, self.steps_per_execution, self._ksl_check_batch)
                except ValueError:
                    for variables, values in zip(self._ksl_state_groups(True), state, strict=True):
                        for v, x in zip(variables, values, strict=True):
                            v.assign(x)
                    raise
            logs, new_state = function(state, iterator)
            self._ksl_after_train_call(logs)
            return logs, new_state

        return guarded

    def _ksl_to_numpy(self, x):
        """Host values of a batch entry: this process's part of it when the batch spans several hosts."""
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            # Multi-host `keras.distribution`: each process checks the rows it feeds.
            return np.concatenate([np.asarray(s.data).reshape(-1) for s in x.addressable_shards])
        return keras.ops.convert_to_numpy(x)
