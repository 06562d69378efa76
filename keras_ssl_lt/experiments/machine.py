"""What ran a record: versions and hardware of this process (`environment()`), stored in every run record.

Example:

>>> env = environment()
>>> env["cpu_count"] >= 1 and isinstance(env["accelerators"], list)
True
"""

import os
import platform
import sys

import numpy as np

__all__ = ["environment"]


def _library_version(name):
    module = sys.modules.get(name)
    if module is None:
        try:
            module = __import__(name)
        except Exception:
            return None
    return getattr(module, "__version__", None)


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def _accelerators(backend):
    """Names of the accelerator devices the backend library sees (never imports another backend)."""
    names = []
    try:
        if backend == "jax":
            import jax

            names = [f"{d.platform}:{getattr(d, 'device_kind', str(d))}" for d in jax.devices() if d.platform != "cpu"]
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                names = [f"cuda:{torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
            elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
                names = ["mps"]
        elif backend == "tensorflow":
            import tensorflow as tf

            for d in tf.config.list_physical_devices():
                if d.device_type in ("GPU", "TPU"):
                    details = tf.config.experimental.get_device_details(d)
                    names.append(f"{d.device_type.lower()}:{details.get('device_name', d.name)}")
    except Exception as e:
        names = [f"unknown ({type(e).__name__}: {e})"]
    return names


def environment():
    """Versions and hardware of this process: package, Keras, backend library, Python, CPU, accelerators, and
    the thread settings a CPU figure depends on (the `OMP_NUM_THREADS` / `MKL_NUM_THREADS` variables as set, and
    under PyTorch its intra-op thread count and whether oneDNN is on: docs/performance.md, *Known issues*).

    Only the active backend's library is imported (TensorFlow is not imported under JAX or PyTorch).

    >>> env = environment()
    >>> {"keras_ssl_lt", "keras", "backend", "backend_version", "cpu_model", "accelerators"} <= set(env)
    True
    """
    import keras

    from keras_ssl_lt import __version__

    backend = keras.backend.backend()
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "keras_ssl_lt": __version__,
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": _library_version(backend),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "accelerators": _accelerators(backend),
        "threads": _threads(backend),
    }


def _threads(backend):
    out = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if backend == "torch":
        import torch

        out["torch_threads"] = torch.get_num_threads()
        out["torch_mkldnn"] = bool(torch.backends.mkldnn.enabled)
    return out
