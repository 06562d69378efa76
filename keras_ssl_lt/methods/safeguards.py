"""The pre-trainers' training safeguards: batch sizes a loss cannot use, and a loss that stops being finite.

A mixin of `Pretrainer` (one concept per file): `fit` refuses arrays whose batches would fall below the method's
`min_batch_size`, the step refuses (or, where the size is only known as it runs, marks NaN) such a batch, and a
non-finite logged loss stops `fit` with a `FloatingPointError` that names the step and the likely causes.
"""

import math

from keras import ops

from keras_ssl_lt.training.common import LossWatch

__all__ = ["TrainingSafeguards"]


class TrainingSafeguards:
    """Mixin of `keras_ssl_lt.methods.Pretrainer`: batch-size checks and the non-finite loss check of `fit`."""

    # ------------------------------------------------------------------ batch size
    def _too_small(self, where):
        return ValueError(
            f"{type(self).__name__} needs training batches of at least {self.min_batch_size} examples (per "
            f"replica): {self.min_batch_reason}; {where}"
        )

    def _check_batch_size(self, images):
        """Refuses a training batch below `min_batch_size` where its size is known when the step is built.

        JAX and PyTorch always know it; TensorFlow does unless the dataset leaves the batch dimension open
        (a last partial batch), which `_guard_small_batch` covers inside the step.
        """
        size = images.shape[0]
        if self.min_batch_size > 1 and size is not None and int(size) < self.min_batch_size:
            raise self._too_small(f"got a batch of {int(size)}")

    def _guard_small_batch(self, per_example):
        """Per-example losses, made NaN when the batch (of a size unknown until it runs) is below `min_batch_size`.

        Only on TensorFlow with an open batch dimension: an assertion inside an XLA-compiled step is dropped,
        so the step instead yields a NaN loss, which `fit`'s non-finite loss check reports (its message names
        this cause).
        """
        if self.min_batch_size <= 1 or per_example.shape[0] is not None:
            return per_example
        size = ops.shape(per_example)[0]
        return ops.where(size >= self.min_batch_size, per_example, ops.cast(float("nan"), per_example.dtype))

    def _check_fit_batches(self, x, batch_size, validation_split):
        """Before `fit` trains on arrays: refuses a batch size that leaves a last batch below `min_batch_size`."""
        if self.min_batch_size <= 1:
            return
        if isinstance(x, (tuple, list)) and x:
            x = x[0]
        if isinstance(x, dict):
            x = x.get("images", x.get("views"))
        shape = getattr(x, "shape", None)
        if shape is None or len(shape) == 0 or shape[0] is None or not isinstance(batch_size, (int, type(None))):
            return  # a dataset or generator: the step checks each batch
        n = int(shape[0])
        if isinstance(validation_split, (int, float)) and 0 < validation_split < 1:
            n = math.floor(n * (1.0 - validation_split))  # Keras trains on the first part
        size = int(batch_size or 32)  # Keras' default batch size for arrays
        last = n if n < size else n % size
        if 0 < last < self.min_batch_size:
            raise self._too_small(
                f"`fit` on {n} examples with batch_size={size} would end each epoch on a batch of {last}. "
                "Choose a batch size that leaves no such batch, or drop those examples",
            )

    # ------------------------------------------------------------------ fit and its non-finite loss check
    def fit(self, x=None, y=None, batch_size=None, *args, **kwargs):
        """`keras.Model.fit`, checked: batches of arrays against `min_batch_size` first, the losses as it runs.

        If a logged loss (`loss`, `perturbed_loss`, `weighted_loss`) becomes NaN or infinite, `fit` stops with
        a `FloatingPointError` naming the step; the check reads the logs one call of the train function late
        so that it adds no device synchronisation (`keras_ssl_lt.training.common.LossWatch`).
        """
        self._check_fit_batches(x, batch_size, kwargs.get("validation_split", 0.0))
        own = list(self.fit_callbacks())
        if own:  # the method's own callbacks, after the user's (`callbacks` is fit's 6th argument)
            if len(args) > 2:
                args = (*args[:2], [*(args[2] or []), *own], *args[3:])
            else:
                kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), *own]
        watch = LossWatch(self.steps_per_execution or 1, self._nonfinite_error, self._ksl_to_numpy)
        self._ksl_loss_watch = watch
        try:
            history = super().fit(x, y, batch_size, *args, **kwargs)
        finally:
            self._ksl_loss_watch = None
        watch.flush()
        return history

    def _ksl_after_train_call(self, logs):
        """Called by the backend's guarded train function with each call's logs (see `LossWatch`)."""
        if self._ksl_loss_watch is not None:
            self._ksl_loss_watch.push(logs)
            return
        # `train_on_batch` and other single calls: Keras brings these logs to the host right away anyway.
        watch = LossWatch(1, lambda first, last, bad: self._nonfinite_error(None, None, bad), self._ksl_to_numpy)
        watch.push(logs)
        watch.flush()

    def _nonfinite_error(self, first, last, bad):
        if first is None:
            where = "in this train_on_batch step"
        else:
            where = f"at training step {first}" if first == last else f"in training steps {first}-{last}"
            where += " of this fit"
        values = ", ".join(f"{k}={v}" for k, v in bad.items())
        causes = ["NaN or Inf in the input images (or pre-made views)", "a learning rate too large for this model"]
        if self._sharpness is not None:
            causes.append(f"a SAM radius too large for this model (rho={self._sharpness.rho:g})")
        if self.min_batch_size > 1:
            causes.append(f"a batch smaller than {self.min_batch_size} examples (a last partial batch)")
        return FloatingPointError(
            f"{type(self).__name__}: non-finite training loss {where} ({values}); the weights are no longer "
            f"usable. Likely causes: {'; '.join(causes)}."
        )
