"""TensorFlow mechanics: `tf.GradientTape`; Keras compiles `train_step` with tf.function (and XLA).

Under a `tf.distribute` strategy Keras runs `train_step` once per replica on its slice of the global batch,
and the optimizer all-reduces (sums) the gradients it is given. So, as Keras' own `compute_loss` does, the
loss a replica differentiates is its mean loss divided by the number of replicas: the sum over replicas is
then the gradient of the global-batch mean. The SAM / ASAM / rwSAM perturbation needs that global gradient
before the optimizer sees any: `_ksl_global_gradients` all-reduces it in the replica context, so every
replica takes the same ascent step. `_ksl_all_gather` concatenates a tensor over replicas (differentiable:
TensorFlow's gradient of an all-gather all-reduces and slices), for MoCo's keys and SimCLR's negatives.
Variable assignments made in the replica context with the same value on every replica (perturbed weights,
EMA and momentum encoders, MoCo's queue, synchronised BatchNorm statistics) keep the mirrored copies equal.
"""

import contextlib

import tensorflow as tf

from keras_ssl_lt.training.common import checked_batches


def _replica_context():
    """The replica context of a step running under a strategy with several replicas, else None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


class BackendStep:
    def train_step(self, data):
        return self._ksl_train_step(data)

    def test_step(self, data):
        return self._ksl_test_step(data)

    def _ksl_value_and_grad(self, fn, variables):
        context = _replica_context()
        with tf.GradientTape() as tape:
            value, aux = fn()
            scaled = value if context is None else value / tf.cast(context.num_replicas_in_sync, value.dtype)
        grads = tape.gradient(scaled, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return value, aux, grads

    def _ksl_sync_state(self):
        """Nothing to do: variables hold their current values during `fit` on this backend."""

    @contextlib.contextmanager
    def _ksl_replica_random(self, seed_states):
        """Distinct random draws per replica inside the block (for the views), equal generator states after.

        Under a strategy every replica holds the same seed-generator state, so each would draw the same
        augmentation parameters for its own slice of the batch. The seed part of each state is offset by the
        replica id for the block, and the offset is taken off again afterwards: all replicas then hold the
        same state, advanced as one draw would advance it.
        """
        context = _replica_context()
        if context is None or not seed_states:
            yield
            return
        replica = tf.cast(context.replica_id_in_sync_group, "int64")
        offsets = []
        for v in seed_states:
            offset = tf.cast(tf.stack([replica * 1000003, tf.zeros_like(replica)]), v.dtype)
            offsets.append(offset)
            v.assign(v.value + offset)
        yield
        for v, offset in zip(seed_states, offsets, strict=True):
            v.assign(v.value - offset)

    def _ksl_global_gradients(self, grads):
        """The gradient of the global-batch loss, the same on every replica (sum of the replicas' parts)."""
        context = _replica_context()
        if context is None:
            return grads
        return context.all_reduce(tf.distribute.ReduceOp.SUM, list(grads))

    def _ksl_all_gather(self, x):
        """`(x of all replicas concatenated along axis 0 in replica order, row offset of this replica's x)`.

        `x` is a tensor or a list of tensors with the same number of rows.
        """
        context = _replica_context()
        if context is None:
            return x, 0
        gathered = context.all_gather(x, axis=0)
        # The gather loses the static shape; the trailing dimensions are those of `x`.
        gathered = tf.nest.map_structure(lambda g, v: tf.reshape(g, [-1, *v.shape[1:]]), gathered, x)
        offset = tf.cast(context.replica_id_in_sync_group, "int32") * tf.shape(tf.nest.flatten(x)[0])[0]
        return gathered, offset

    def _ksl_no_grad(self):
        return contextlib.nullcontext()

    def _ksl_guard_train_function(self, function):
        """Wraps Keras' `train_function(iterator)`: host-side batch checks before, the loss check after.

        An assertion inside the step would be dropped by XLA, so when batches must be checked (rwSAM) they
        are taken from the tf.data iterator here (eagerly) and handed on as a Python iterator: Keras then
        runs the same compiled one-step function on each. The logs go to `_ksl_after_train_call` (the
        non-finite loss check, see `keras_ssl_lt.training.common.LossWatch`).
        """

        def guarded(iterator):
            if self._ksl_checks_batches():
                iterator = checked_batches(iterator, self.steps_per_execution, self._ksl_check_batch)
            logs = function(iterator)
            self._ksl_after_train_call(logs)
            return logs

        return guarded

    def _ksl_to_numpy(self, x):
        """Host values of a batch entry, gathered over replicas under a distribution strategy."""
        parts = self.distribute_strategy.experimental_local_results(x)
        return tf.concat([tf.reshape(p, [-1]) for p in parts], axis=0).numpy()
