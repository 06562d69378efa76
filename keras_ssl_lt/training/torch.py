"""PyTorch mechanics: autograd with `.grad` cleared before each backward, assignments under `no_grad`."""

import contextlib

import keras
import torch
from keras import tree


def _detach(x):
    return x.detach() if isinstance(x, torch.Tensor) else x


class BackendStep:
    def train_step(self, data):
        return self._ksl_train_step(data)

    def test_step(self, data):
        with torch.no_grad():
            return self._ksl_test_step(data)

    def _ksl_value_and_grad(self, fn, variables):
        for v in variables:
            v.value.grad = None
        value, aux = fn()
        value.backward()
        grads = []
        for v in variables:
            g = v.value.grad
            grads.append(torch.zeros_like(v.value) if g is None else g)
            v.value.grad = None
        return value.detach(), tree.map_structure(_detach, aux), grads

    def _ksl_no_grad(self):
        return torch.no_grad()

    def _ksl_sync_state(self):
        """Nothing to do: variables hold their current values during `fit` on this backend."""

    def _ksl_replica_random(self, seed_states):
        """Nothing to do (one device)."""
        return contextlib.nullcontext()

    def _ksl_global_gradients(self, grads):
        """The gradient of the global-batch loss: one device, `grads` already is."""
        return grads

    def _ksl_all_gather(self, x):
        """`(x, 0)`: one device holds the whole batch."""
        return x, 0

    def _ksl_guard_train_function(self, function):
        """Checks the batch on the host before Keras' `train_function([batch])` runs the step, the loss after."""

        def guarded(data):
            if self._ksl_checks_batches():
                self._ksl_check_batch(data[0])
            logs = function(data)
            self._ksl_after_train_call(logs)
            return logs

        return guarded

    def _ksl_to_numpy(self, x):
        """Host values of a batch entry."""
        return keras.ops.convert_to_numpy(x)
