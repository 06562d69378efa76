"""TensorFlow mechanics: `tf.GradientTape`; Keras compiles `train_step` with tf.function (and XLA)."""

import contextlib

import tensorflow as tf


class BackendStep:
    def train_step(self, data):
        return self._ksl_train_step(data)

    def test_step(self, data):
        return self._ksl_test_step(data)

    def _ksl_value_and_grad(self, fn, variables):
        with tf.GradientTape() as tape:
            value, aux = fn()
        grads = tape.gradient(
            value, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        return value, aux, grads

    def _ksl_no_grad(self):
        return contextlib.nullcontext()
