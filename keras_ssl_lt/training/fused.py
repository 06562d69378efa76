"""Backend fast paths for evaluation-side kernels that `keras.ops` runs as several full passes.

`device_is_cpu()`: whether the Keras backend computes on the CPU (no GPU / TPU in use), so that evaluation
code can choose a host (numpy) path where that is faster.

`exp_row_sums(a, b_t, own)`: the row sums of `exp(a @ b_t)`, and optionally each row's term at column
`own[i]`, without keeping the (rows, columns) exponentials around. With plain eager `keras.ops` that is a matrix
product, an `exp` that writes a second (rows, columns) array, and a sum; here

- JAX: one jitted function, so XLA fuses `exp` into the row reduction (no second array is written);
- PyTorch: `exp_` in place on the product, under `no_grad`;
- TensorFlow (and anything else): the eager `keras.ops` sequence.

The values are those of the `keras.ops` sequence up to float32 rounding (summation order, fused `exp`).
Used by `keras_ssl_lt.rwsam.weights` (the KDE weight refresh). Backend-specific code lives in this
package by project rule; the backend's library is imported on first use only.
"""

import keras
from keras import ops

__all__ = ["device_is_cpu", "exp_row_sums"]

_JAX_FNS = {}


def device_is_cpu():
    """True when the current Keras backend runs its computations on the CPU.

    JAX: the default device platform; PyTorch: no CUDA (or MPS) device in use; TensorFlow: no visible GPU.

    Example:

    >>> isinstance(device_is_cpu(), bool)
    True
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() == "cpu"
    if backend == "torch":
        import torch

        # Keras' torch backend places tensors on CUDA, else MPS, when one is available
        mps = getattr(torch.backends, "mps", None)
        return not torch.cuda.is_available() and not (mps is not None and mps.is_available())
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.config.list_logical_devices("GPU") and not tf.config.list_logical_devices("TPU")
    return True


def _keras_ops(a, b_t, own):
    terms = ops.exp(ops.matmul(a, b_t))
    total = ops.sum(terms, axis=1)
    own_terms = None if own is None else ops.take_along_axis(terms, own, axis=1)[:, 0]
    return total, own_terms


def _jax(a, b_t, own):
    import jax
    import jax.numpy as jnp

    fn = _JAX_FNS.get(own is None)
    if fn is None:
        if own is None:

            def f(a, b_t):
                return jnp.sum(jnp.exp(a @ b_t), axis=1), None

        else:

            def f(a, b_t, own):
                logits = a @ b_t
                return jnp.sum(jnp.exp(logits), axis=1), jnp.exp(jnp.take_along_axis(logits, own, axis=1)[:, 0])

        fn = _JAX_FNS[own is None] = jax.jit(f)
    return fn(a, b_t) if own is None else fn(a, b_t, own)


def _torch(a, b_t, own):
    import torch

    with torch.no_grad():
        terms = torch.matmul(a, b_t)
        terms.exp_()
        own_terms = None if own is None else torch.gather(terms, 1, own.long())[:, 0]
        return terms.sum(dim=1), own_terms


def exp_row_sums(a, b_t, own=None):
    """`(sum_j exp(a @ b_t)[i, j], exp(a @ b_t)[i, own[i]])` as numpy float32 arrays (second: None without `own`).

    `a` (rows, K) and `b_t` (K, columns) float32, numpy or backend tensors; `own` None or an int32 (rows, 1)
    array of column indices.
    """
    backend = keras.backend.backend()
    a = ops.convert_to_tensor(a, dtype="float32")
    b_t = ops.convert_to_tensor(b_t, dtype="float32")
    own = None if own is None else ops.convert_to_tensor(own, dtype="int32")
    impl = {"jax": _jax, "torch": _torch}.get(backend, _keras_ops)
    total, own_terms = impl(a, b_t, own)
    return ops.convert_to_numpy(total), None if own_terms is None else ops.convert_to_numpy(own_terms)
