"""Process-wide settings for long experiment runs, per backend (the only backend-specific knobs recipes need).

`configure_runtime()` is called once by the recipes before any model is built:

- JAX: a persistent compilation cache (`cache_dir`, default `~/.cache/keras_ssl_lt/jax`), so runs of a grid
  with identical shapes, and later invocations, reuse compiled train steps instead of compiling again;
- PyTorch on CPU: oneDNN (mkldnn) off. With scikit-learn imported by Keras, a second OpenMP runtime sits in
  the process and PyTorch's oneDNN convolution backward intermittently hangs (docs/performance.md);
- TensorFlow: nothing.

Example:

>>> configure_runtime()["backend"] in ("tensorflow", "jax", "torch")
True
"""

import os

import keras

__all__ = ["configure_runtime"]


def configure_runtime(cache_dir=None):
    """Apply the settings above for the current Keras backend; returns what was set (for run records)."""
    backend = keras.backend.backend()
    out = {"backend": backend}
    if backend == "jax":
        import jax

        cache_dir = cache_dir or os.environ.get(
            "KSL_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "keras_ssl_lt", "jax")
        )
        jax.config.update("jax_compilation_cache_dir", str(cache_dir))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
        out["jax_compilation_cache_dir"] = str(cache_dir)
    elif backend == "torch":
        import torch

        if not torch.cuda.is_available():
            torch.backends.mkldnn.enabled = False
        out["torch_mkldnn"] = bool(torch.backends.mkldnn.enabled)
    return out
