"""Per-backend training mechanics.

Keras 3 has no backend-neutral "gradient of this function" call, and the JAX trainer is stateless. Each
module here provides the same small surface, as a mixin placed before `keras.Model` in a pre-trainer's
bases:

- `train_step` / `test_step` in the form the backend's Keras trainer calls them (JAX: stateless, on a
  `(trainable, non_trainable, optimizer, metrics)` state tuple), delegating to the backend-neutral
  `_ksl_train_step(data)` / `_ksl_test_step(data)` of `keras_ssl_lt.methods.base.Pretrainer`;
- `_ksl_value_and_grad(fn, variables)`: runs `fn() -> (scalar, aux)` and returns
  `(scalar, aux, gradients w.r.t. variables)`, keeping any variable updates `fn` made (BatchNorm statistics);
- `_ksl_no_grad()`: a context for direct variable assignments;
- `_ksl_sync_state()`: before a host-side read or write of a variable during `fit` (JAX: Keras'
  `jax_state_sync`; elsewhere nothing);
- `_ksl_global_gradients(grads)`: the gradient of the global-batch loss from `_ksl_value_and_grad`'s
  (an all-reduce over `tf.distribute` replicas; the identity on JAX, whose distributed step is one global
  program, and on PyTorch); `_ksl_all_gather(x)`: `x` concatenated over replicas and this replica's row
  offset in it (see `keras_ssl_lt.training.distributed` and docs/scaling.md);
- `_ksl_guard_train_function(function)`: wraps Keras' `train_function` so that every batch is checked on
  the host (`Pretrainer._ksl_check_batch`: rwSAM's `index` against the example-weight table) before the
  step runs on it, and the logs it returns go to `Pretrainer._ksl_after_train_call` (the non-finite loss
  check, `keras_ssl_lt.training.common.LossWatch`); `_ksl_to_numpy(x)`: the host values of a batch entry.

Everything else (views, losses, the two-pass SAM step, EMA and queue updates, metrics) is written once
with `keras.ops` in `keras_ssl_lt.methods.base` and `keras_ssl_lt.rwsam` (`sharpness`, `step`); the
regulariser's step takes these mechanics through `keras_ssl_lt.rwsam.step.StepHooks`.
"""

import keras

_BACKEND = keras.backend.backend()

if _BACKEND == "tensorflow":
    from keras_ssl_lt.training.tensorflow import BackendStep
elif _BACKEND == "jax":
    from keras_ssl_lt.training.jax import BackendStep
elif _BACKEND == "torch":
    from keras_ssl_lt.training.torch import BackendStep
else:  # pragma: no cover - keras refuses unknown backends earlier
    raise ImportError(
        f"keras_ssl_lt supports the Keras backends 'tensorflow', 'jax' and 'torch'; KERAS_BACKEND is {_BACKEND!r}"
    )

__all__ = ["BackendStep"]
