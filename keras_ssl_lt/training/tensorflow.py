"""TensorFlow mechanics: `tf.GradientTape`; Keras compiles `train_step` with tf.function (and XLA)."""

import contextlib

import tensorflow as tf

from keras_ssl_lt.training.common import checked_batches


class BackendStep:
    def train_step(self, data):
        return self._ksl_train_step(data)

    def test_step(self, data):
        return self._ksl_test_step(data)

    def _ksl_value_and_grad(self, fn, variables):
        with tf.GradientTape() as tape:
            value, aux = fn()
        grads = tape.gradient(value, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return value, aux, grads

    def _ksl_no_grad(self):
        return contextlib.nullcontext()

    def _ksl_guard_train_function(self, function):
        """Checks each batch on the host before Keras' `train_function(iterator)` runs the step on it.

        An assertion inside the step would be dropped by XLA, so the batches are taken from the tf.data
        iterator here (eagerly) and handed on as a Python iterator: Keras then runs the same compiled
        one-step function on each. Only used when a check is needed (rwSAM).
        """

        def guarded(iterator):
            if not self._ksl_checks_batches():
                return function(iterator)
            return function(checked_batches(iterator, self.steps_per_execution, self._ksl_check_batch))

        return guarded

    def _ksl_to_numpy(self, x):
        """Host values of a batch entry, gathered over replicas under a distribution strategy."""
        parts = self.distribute_strategy.experimental_local_results(x)
        return tf.concat([tf.reshape(p, [-1]) for p in parts], axis=0).numpy()
